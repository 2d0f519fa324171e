"""The frozen LLM loaded in 4-bit on the CPU: gradients into the prefix match a float reference.

bitsandbytes on AVX512-BF16 CPUs repacks 4-bit weights during a no-grad eval forward such as
generate(); afterwards backprop silently yields zero gradients. The loader guards against it.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

bnb = pytest.importorskip("bitsandbytes")
pytest.importorskip("accelerate")

from ovmlv.config import LabelConfig, LLMConfig  # noqa: E402
from ovmlv.llm import disable_cpu_repacking, load_llm  # noqa: E402
from ovmlv.soft_attributes import SoftAttributeEncoder  # noqa: E402

LABELS = ["dog", "crowd cheering"]


def dequantised_reference(quantised: torch.nn.Module, float_model: torch.nn.Module) -> torch.nn.Module:
    """The float model with every quantised Linear replaced by its dequantised weights."""
    reference = copy.deepcopy(float_model)
    q_modules = dict(quantised.named_modules())
    with torch.no_grad():
        for name, module in reference.named_modules():
            source = q_modules.get(name)
            if isinstance(source, bnb.nn.Linear4bit):
                weight = bnb.functional.dequantize_4bit(source.weight.data, source.weight.quant_state)
                module.weight.copy_(weight.to(module.weight.dtype))
    return reference


def prefix_gradient(encoder: SoftAttributeEncoder, llm) -> torch.Tensor:
    encoder.zero_grad()
    states = encoder.llm_states(llm, LABELS)
    target = torch.linspace(-1, 1, states.numel()).reshape(states.shape)
    (states * target).sum().backward()
    return encoder.prefix.grad.detach().clone()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


@pytest.fixture(scope="module")
def models(tiny_llm_dir):
    quantised = load_llm(LLMConfig(name=str(tiny_llm_dir), quantization="4bit"), "test", device="cpu")
    float_bundle = load_llm(LLMConfig(name=str(tiny_llm_dir), quantization="none"), "test", device="cpu")
    assert quantised.quantization == "4bit"
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in quantised.model.modules())
    float_bundle.model = dequantised_reference(quantised.model, float_bundle.model)
    encoder = SoftAttributeEncoder(
        LabelConfig(num_prefix=2, num_queries=3, prompting_heads=2), 64, 64, token_norm=1.0
    )
    encoder.init_from_llm_embeddings(float_bundle.model.get_input_embeddings().weight, seed=0)
    return quantised, float_bundle, encoder


def test_prefix_gradient_matches_dequantised_reference(models):
    quantised, reference, encoder = models
    grad_q = prefix_gradient(encoder, quantised)
    grad_f = prefix_gradient(encoder, reference)
    assert grad_q.abs().sum() > 0
    assert cosine(grad_q, grad_f) >= 0.999


def test_prefix_gradient_survives_generate(models):
    quantised, reference, encoder = models
    ids = quantised.tokenizer("describe a dog", return_tensors="pt").input_ids
    quantised.model.generate(input_ids=ids, max_new_tokens=4, do_sample=False)
    with torch.no_grad():  # an eval pass, as a validation loop would do
        quantised.model(input_ids=ids)
    grad_q = prefix_gradient(encoder, quantised)
    grad_f = prefix_gradient(encoder, reference)
    assert grad_q.abs().sum() > 0
    assert cosine(grad_q, grad_f) >= 0.999


@pytest.mark.filterwarnings("ignore:.*an autograd kernel was not registered")  # the trap itself
def test_trap_exists_without_the_guard_and_the_guard_repairs_it(tiny_llm_dir):
    """Negative control: shows the test above can fail on this CPU (skips where the trap cannot occur)."""
    if not bnb.functional.has_avx512bf16():
        pytest.skip("this CPU has no AVX512-BF16: the repacking trap cannot occur")
    llm = load_llm(LLMConfig(name=str(tiny_llm_dir), quantization="4bit"), "test", device="cpu")
    for module in llm.model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = True  # undo the guard
    encoder = SoftAttributeEncoder(
        LabelConfig(num_prefix=2, num_queries=3, prompting_heads=2), 64, 64, token_norm=1.0
    )
    ids = llm.tokenizer("a dog", return_tensors="pt").input_ids
    with torch.no_grad():
        llm.model(input_ids=ids)  # repacks the weights in place
    try:
        broken = prefix_gradient(encoder, llm).abs().sum()
    except RuntimeError:
        broken = torch.tensor(0.0)  # Qwen2-style failure instead of silent zeros
    assert broken == 0
    assert disable_cpu_repacking(llm.model) > 0  # converts repacked weights back
    assert prefix_gradient(encoder, llm).abs().sum() > 0
