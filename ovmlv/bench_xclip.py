"""The X-CLIP baseline for `ovmlv bench`: transformers' XCLIPModel doing the same timeline job.

Same job as `VideoClassifier.classify`: the same windows (decoded by our `iter_windows`, the
same resize, centre crop and CLIP normalisation), every window scored against the same labels,
giving a timeline [W, L]. X-CLIP conditions its text embeddings on each video (its prompt
generator), so the model's forward(input_ids, pixel_values) over a batch of windows is the job
as transformers runs it; it re-encodes the labels on every call, as that forward does.

Offline by construction: the model is built from a config with random weights (no download),
and the labels are tokenised with open_clip's copy of the CLIP BPE vocabulary (the same 49,408
tokens as X-CLIP's CLIPTokenizer, whose files would come from the Hub), padded to 77.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .decode import iter_windows

# microsoft/xclip-base-patch16: ViT-B/16 vision tower over 8 frames, CLIP text tower (written
# out here, not downloaded; the defaults of XCLIPConfig are the base/32 model).
XCLIP_B16 = {
    "vision_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 224,
        "patch_size": 16,
        "num_frames": 8,
        "mit_hidden_size": 512,
        "mit_intermediate_size": 2048,
        "mit_num_hidden_layers": 1,
        "mit_num_attention_heads": 8,
    },
    "text_config": {
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 8,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
    },
    "projection_dim": 512,
    "prompt_layers": 2,
    "prompt_num_attention_heads": 8,
}

# The tiny size: shaped like the tiny-clip preset (32 px, patch 8, width 64), for tests.
XCLIP_TINY = {
    "vision_config": {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 3,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
        "num_frames": 4,
        "mit_hidden_size": 64,
        "mit_intermediate_size": 256,
        "mit_num_hidden_layers": 1,
        "mit_num_attention_heads": 2,
    },
    "text_config": {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
    },
    "projection_dim": 64,
    "prompt_layers": 2,
    "prompt_num_attention_heads": 2,
}


def build_xclip(
    config_values: dict[str, Any], device: torch.device, dtype: torch.dtype, seed: int = 0
) -> torch.nn.Module:
    """A randomly initialised XCLIPModel from `config_values`, in eval mode on `device`/`dtype`."""
    from transformers import XCLIPConfig, XCLIPModel

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = XCLIPModel(XCLIPConfig(**config_values))
    return model.to(device=device, dtype=dtype).eval()


def tokenize_labels(labels: Sequence[str], context_length: int = 77) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) [L, 77] from open_clip's CLIP BPE tokenizer (same vocabulary)."""
    import open_clip

    tokenizer = open_clip.SimpleTokenizer(context_length=context_length)
    input_ids = tokenizer(list(labels))  # start, tokens, end, then zeros
    end = input_ids.argmax(dim=-1, keepdim=True)  # the end token has the largest id
    positions = torch.arange(context_length).unsqueeze(0)
    attention_mask = (positions <= end).long()
    return input_ids, attention_mask


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def xclip_timeline(
    model: torch.nn.Module,
    video: str,
    labels: Sequence[str],
    preprocess: Callable[[np.ndarray], torch.Tensor],
    window_s: float = 2.0,
    batch_size: int = 8,
    max_duration_s: float | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """The X-CLIP timeline job: scores [W, L] (softmax over labels) and its timings (seconds).

    Args:
        model: an XCLIPModel.
        video: the clip to decode with `iter_windows` (T = the model's num_frames).
        labels: the label texts.
        preprocess: uint8 frames [N, T, H, W, 3] -> normalised pixels [N, T, 3, S, S]
            (`VideoClassifier.preprocess`: same resize, crop and CLIP mean/std).
        batch_size: windows per forward call.
    """
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    vision = model.config.vision_config
    start, start_cpu = time.perf_counter(), time.process_time()
    input_ids, attention_mask = tokenize_labels(labels, model.config.text_config.max_position_embeddings)
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    windows = iter_windows(
        video,
        window_s=window_s,
        frames_per_window=vision.num_frames,
        short_side=vision.image_size,
        max_duration_s=max_duration_s,
    )
    model_s, rows, batch = 0.0, [], []

    def run(frames: list[np.ndarray]) -> None:
        nonlocal model_s
        tick = time.perf_counter()
        pixels = preprocess(np.stack(frames)).to(device=device, dtype=dtype)  # [N, T, 3, S, S]
        output = model(input_ids=input_ids, pixel_values=pixels, attention_mask=attention_mask)
        rows.append(output.logits_per_video.float().softmax(dim=-1).cpu())  # [N, L]
        _sync(device)
        model_s += time.perf_counter() - tick

    for window in windows:
        batch.append(window.frames)
        if len(batch) == batch_size:
            run(batch)
            batch = []
    if batch:
        run(batch)
    total, total_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    scores = torch.cat(rows).numpy()
    return scores, {
        "total_s": total,
        "total_cpu_s": total_cpu,
        "model_s": model_s,
        "decode_s": total - model_s,
    }


@torch.no_grad()
def _warm_up(model: torch.nn.Module, num_labels: int) -> None:
    """One untimed forward on one random window (lazy initialisation, first-call allocations)."""
    parameter = next(model.parameters())
    vision = model.config.vision_config
    size = vision.image_size
    pixels = torch.zeros(1, vision.num_frames, 3, size, size, device=parameter.device, dtype=parameter.dtype)
    input_ids, attention_mask = tokenize_labels(["warm up"] * num_labels)
    model(
        input_ids=input_ids.to(parameter.device),
        pixel_values=pixels,
        attention_mask=attention_mask.to(parameter.device),
    )


def bench_xclip(
    config_values: dict[str, Any],
    video: str,
    labels: Sequence[str],
    preprocess: Callable[[np.ndarray], torch.Tensor],
    device: torch.device,
    batch_size: int = 8,
    repeats: int = 1,
) -> tuple[dict[str, Any], dict[str, torch.nn.Module]]:
    """Time the X-CLIP timeline job with fp32 weights (transformers' default) and bf16 weights.

    Returns the timings per dtype and the two models (for the interleaved per-window figure).
    """
    runs: dict[str, Any] = {}
    models: dict[str, torch.nn.Module] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model = build_xclip(config_values, device, dtype)
        _warm_up(model, len(labels))
        totals, cpu_totals, last = [], [], {}
        for _ in range(repeats):
            scores, last = xclip_timeline(model, video, labels, preprocess, batch_size=batch_size)
            totals.append(last["total_s"])
            cpu_totals.append(last["total_cpu_s"])
        runs[name] = {
            "total_s": totals,
            "total_s_median": float(np.median(totals)),
            "total_cpu_s": cpu_totals,
            "total_cpu_s_median": float(np.median(cpu_totals)),
            "model_s": last["model_s"],
            "decode_s": last["decode_s"],
            "scores_shape": list(scores.shape),
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
        }
        models[name] = model
    return runs, models
