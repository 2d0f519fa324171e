"""Loading the frozen LLM (Hub id, local directory, or the built-in tiny model) at a precision.

Quantisation modes: none (fp32), bf16, 8bit, 4bit (NF4, double quantisation, bf16 compute)
through transformers' BitsAndBytesConfig. "auto" means 4bit on CUDA and none on CPU.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import LLMConfig
from .errors import ConfigError
from .hub import fetch_snapshot

logger = logging.getLogger(__name__)

QUANTIZATION_MODES = ("auto", "none", "bf16", "8bit", "4bit")
_LLM_FILES = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.jinja"]


@dataclass
class LLMBundle:
    """A frozen causal LM with its tokenizer and the precision it was loaded at."""

    model: Any  # transformers PreTrainedModel (causal LM)
    tokenizer: Any
    quantization: str  # the resolved mode: none | bf16 | 8bit | 4bit

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


def resolve_quantization(mode: str, device: torch.device | str) -> str:
    """The concrete mode for `mode` on `device` ("auto": 4bit on CUDA, none elsewhere)."""
    if mode not in QUANTIZATION_MODES:
        raise ConfigError(f"unknown LLM quantization {mode!r}; use one of {', '.join(QUANTIZATION_MODES)}")
    if mode == "auto":
        return "4bit" if torch.device(device).type == "cuda" else "none"
    return mode


def _bnb_config(mode: str) -> Any:
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError as exc:
        raise ConfigError(
            f"LLM quantization {mode!r} needs bitsandbytes: pip install 'ovmlv[quant]'"
        ) from exc
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    if mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def disable_cpu_repacking(model: torch.nn.Module) -> int:
    """Guard against bitsandbytes' AVX512-BF16 trap (ENVIRONMENT.md); returns modules touched.

    On CPUs with AVX512-BF16, the first no-grad eval forward repacks 4-bit weights in place,
    after which backprop silently gives zero gradients (Llama) or fails (Qwen2). Turning the
    fast path off on every Linear4bit avoids it; weights already repacked are converted back.
    """
    try:
        from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse
        from bitsandbytes.nn import Linear4bit
    except ImportError:
        return 0
    touched = 0
    for module in model.modules():
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False
            state = getattr(module.weight, "quant_state", None)
            if state is not None and getattr(state, "packing_format_for_cpu", False):
                module.weight.data, module.weight.quant_state = _convert_weight_packed_for_cpu_inverse(
                    module.weight.data, state
                )
            touched += 1
    return touched


def _source_dir(cfg: LLMConfig, preset: str, base_dir: Path | None) -> Path:
    path = Path(cfg.name).expanduser()
    if base_dir is not None and not path.is_absolute() and (base_dir / path).is_dir():
        return base_dir / path  # an LLM shipped inside a checkpoint directory
    if path.is_dir():
        return path
    if cfg.name.startswith((".", "/", "~")):
        raise ConfigError(f"LLM directory {cfg.name!r} does not exist")
    return fetch_snapshot(cfg.name, cfg.revision, preset, _LLM_FILES)


def load_llm(
    cfg: LLMConfig,
    preset: str,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    base_dir: Path | None = None,
    seed: int = 0,
) -> LLMBundle:
    """Load the LLM of `cfg` on `device`, frozen, at the configured precision.

    Args:
        cfg: which LLM and at what precision.
        preset: the model's name, for error messages.
        device: where it runs.
        dtype: weight dtype for the unquantised mode "none" (bf16 on CPU is much faster).
        base_dir: a checkpoint directory that relative LLM paths are resolved against.
        seed: seed of the built-in random tiny LLM.
    """
    device = torch.device(device)
    mode = resolve_quantization(cfg.quantization, device)
    plain_dtype = torch.bfloat16 if mode == "bf16" else dtype
    if cfg.name == "builtin:tiny-llama" and mode in ("none", "bf16"):
        from .tiny_llm import build_tiny_llm

        model, tokenizer = build_tiny_llm(seed)
        model = model.to(device=device, dtype=plain_dtype)
        return _frozen(LLMBundle(model, tokenizer, mode))
    if cfg.name == "builtin:tiny-llama":
        raise ConfigError(
            "the built-in tiny LLM is not quantised: save it with save_tiny_llm() and load the folder"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _source_dir(cfg, preset, base_dir)
    kwargs: dict[str, Any] = {"dtype": plain_dtype}
    if mode in ("8bit", "4bit"):
        kwargs["quantization_config"] = _bnb_config(mode)
        kwargs["dtype"] = torch.bfloat16
        kwargs["device_map"] = {"": device}
    local_only = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "")
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local_only, **kwargs)
    if mode not in ("8bit", "4bit"):
        model = model.to(device)
    elif device.type == "cpu":
        disable_cpu_repacking(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return _frozen(LLMBundle(model, tokenizer, mode))


def _frozen(bundle: LLMBundle) -> LLMBundle:
    bundle.model.eval()
    bundle.model.requires_grad_(False)
    return bundle
