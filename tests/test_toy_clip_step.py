"""One training step of the toy CLIP: its loss under bf16 and under torch.compile, and the
caption tokenizer's cache (training/toyworld/toy_clip.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import open_clip
import pytest
import torch

from training.toyworld.toy_clip import LAYOUT_GRID, ToyClipConfig, build_model


def _tiny_model_and_batch(vision_layers: int):
    """A toy CLIP with `vision_layers` blocks (one text block), its probe, and a batch of 3
    random frames scored against "a red circle" (frame 0) and "a blue square" (frame 1):
    (cfg, model, probe, tokens, pixels, truth, presence)."""
    cfg = replace(ToyClipConfig(), vision_layers=vision_layers, text_layers=1)
    model = build_model(cfg)
    torch.manual_seed(0)
    probe = torch.nn.Linear(cfg.embed_dim, 41 + LAYOUT_GRID**2)
    tokens = open_clip.SimpleTokenizer(context_length=cfg.context_length)(["a red circle", "a blue square"])
    size = cfg.image_size
    pixels, truth, presence = torch.randn(3, 3, size, size), torch.zeros(3, 2), torch.zeros(3, 41)
    truth[0, 0] = truth[1, 1] = 1.0
    presence[:, [0, 6, 11]] = 1.0
    return cfg, model, probe, tokens, pixels, truth, presence


def test_bf16_precision_computes_the_toy_clip_loss_in_bf16_close_to_fp32_with_float_master_weights():
    from training.toyworld.toy_clip import batch_loss, compute_precision
    from training.toyworld.toy_llm import ToyLLMConfig

    for config in (ToyClipConfig, ToyLLMConfig):
        with pytest.raises(ValueError, match="precision"):
            config(precision="fp16")
    _, model, probe, tokens, pixels, truth, presence = _tiny_model_and_batch(vision_layers=2)

    def loss_and_grads(precision: str) -> tuple[torch.Tensor, list[torch.Tensor], torch.dtype]:
        model.zero_grad()
        with compute_precision(precision):
            features = model.encode_image(pixels)
            contrastive, probe_loss = batch_loss(model, probe, pixels, tokens, truth, presence, 1.0)
        (contrastive + probe_loss).backward()
        grads = [p.grad.clone() for p in model.visual.parameters() if p.grad is not None]
        return contrastive.detach().float(), grads, features.dtype

    reference, reference_grads, fp32_dtype = loss_and_grads("fp32")
    half, half_grads, bf16_dtype = loss_and_grads("bf16")
    assert (fp32_dtype, bf16_dtype) == (torch.float32, torch.bfloat16)  # bf16 really ran
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float
    assert not torch.equal(half, reference)
    torch.testing.assert_close(half, reference, rtol=0.02, atol=0.0)
    flat = torch.cat([g.flatten() for g in reference_grads]).double()
    flat_half = torch.cat([g.flatten() for g in half_grads]).double()
    assert torch.nn.functional.cosine_similarity(flat, flat_half, dim=0) > 0.98


def test_cached_tokenizer_gives_open_clip_tokens_and_tokenises_each_word_once():
    from training.toyworld.captions import CachedTokenizer, captions_for_frame, seen_object

    real = open_clip.SimpleTokenizer(context_length=32)
    asked: list[str] = []

    class Counting:  # open_clip's tokenizer, counting what it is asked to encode
        sot_token_id, eot_token_id, context_length = real.sot_token_id, real.eot_token_id, 32

        def encode(self, text: str) -> list[int]:
            asked.append(text)
            return real.encode(text)

    cached = CachedTokenizer(Counting())
    rng = np.random.default_rng(0)
    objects = [seen_object("red", "circle", 10, 50, 10, 64), seen_object("blue", "cross", 50, 12, 5, 64)]
    captions = [c.text for _ in range(300) for c in captions_for_frame(objects, rng, negatives=2)]
    long = " ".join(["a big red circle on the left and a small blue cross up top,"] * 4)  # > 32 tokens
    texts = captions + [long, "a video of kettle, which has red colour", "  a  red\tcircle "]
    tokens = cached(texts)
    assert torch.equal(tokens, real(texts))
    assert (real(long) != 0).sum() == 32 and tokens[-3, -1] == real.eot_token_id  # cut as open_clip cuts
    assert len(asked) == len(set(asked)) == len({w for text in texts for w in text.split()})
    assert len(asked) < len(texts) / 3  # 247 words for 903 captions


@pytest.mark.slow
def test_compiled_toy_clip_loss_matches_the_eager_one_and_falls_back_without_a_compiler(monkeypatch, caplog):
    import shutil

    from training.toyworld.toy_clip import batch_loss, compiled

    _, model, probe, tokens, pixels, truth, presence = _tiny_model_and_batch(vision_layers=1)
    layouts = torch.rand(3, LAYOUT_GRID**2)

    def loss_and_grads(fn) -> tuple[torch.Tensor, torch.Tensor]:
        model.zero_grad()
        contrastive, probe_loss = fn(
            model, probe, pixels, tokens, truth, presence, 1.0, layouts=layouts, layout_weight=100.0
        )
        loss = contrastive + probe_loss
        loss.backward()
        return loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    fast = compiled(batch_loss)
    assert fast is not batch_loss
    reference, reference_grads = loss_and_grads(batch_loss)
    loss, grads = loss_and_grads(fast)
    torch.testing.assert_close(loss, reference, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(grads, reference_grads, rtol=1e-3, atol=1e-4)
    assert reference_grads.abs().max() > 1e-3  # the gradients compared are not all zero

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with caplog.at_level("WARNING", logger="training.toyworld.toy_clip"):
        assert compiled(batch_loss) is batch_loss
    assert "not compiling" in caplog.text


@pytest.mark.slow
def test_compiled_pretraining_runs_under_deterministic_algorithms_and_reruns_bit_identically():
    """Compiled toy-CLIP training reran with different weights (session 18); under
    torch.use_deterministic_algorithms it reruns bit-identically. Eager training keeps the
    caller's setting (its bits are those of the shipped base), and the setting is restored."""
    from training.toyworld.toy_clip import train_toy_clip

    tiny = dict(vision_layers=1, text_layers=1, steps=2, batch_size=4, warmup_steps=1, shape_steps=1)
    assert not torch.are_deterministic_algorithms_enabled()
    compiled_runs = []
    for compile_loss in (True, True, False):
        seen: list[bool] = []
        cfg = replace(ToyClipConfig(), compile=compile_loss, **tiny)
        model, _ = train_toy_clip(
            cfg,
            log_every=1,
            on_log=lambda m, s, seen=seen: seen.append(torch.are_deterministic_algorithms_enabled()),
        )
        assert seen == [compile_loss, compile_loss]
        assert not torch.are_deterministic_algorithms_enabled()  # restored
        if compile_loss:
            compiled_runs.append(model.state_dict())
    first, second = compiled_runs
    assert all(torch.equal(first[name], second[name]) for name in first)
