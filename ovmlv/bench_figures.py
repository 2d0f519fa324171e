"""The figures of `ovmlv bench` (see ovmlv/bench.py): options, model set-up and the timings.

Weights are random (`pretrained=False`): speed and memory do not depend on their values. The
temporal gates are set non-zero so the temporal branch really runs, as in a trained model.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

SIZES = {  # size -> (preset, overrides, X-CLIP config name)
    "tiny": ("tiny-clip", {}, "tiny"),
    "b16": ("clip-b16", {"llm": {"name": "builtin:tiny-llama", "quantization": "none"}}, "b16"),
}
LLM_NOTE = (
    "clip-b16 runs with the builtin tiny random Llama instead of Qwen/Qwen2.5-1.5B-Instruct "
    "(its weights cannot be downloaded here): label (LLM) costs are NOT those of the real preset"
)
LABELS_10 = [
    "dribbling", "basketball", "crowd cheering", "a red square", "a person running",
    "cooking", "a dog", "ocean waves", "playing guitar", "traffic at night",
]  # fmt: skip
_ADJECTIVES = ["small", "blue", "fast", "old", "wooden", "shiny", "noisy", "wet", "bright", "tall"]
_NOUNS = ["car", "bird", "kitchen", "river", "guitar", "horse", "tree", "crowd", "boat", "ball", "chair"]


@dataclass
class BenchOptions:
    """What to measure and how (JSON-serialisable: the memory subprocesses receive it)."""

    size: str = "b16"  # tiny | b16
    device: str = "cpu"  # cpu | cuda
    dtype: str = "bf16"  # bf16 | fp32: dtype of the WEIGHTS (never autocast)
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    seconds: float = 60.0  # length of the end-to-end clip
    long_seconds: float = 600.0  # length of the long clip of the memory test
    skip_xclip: bool = False
    skip_memory: bool = False
    repeats: int | None = None  # repeats of the expensive figures (None: 1-2 for b16, 3 for tiny)
    gate: float = 0.5  # value written into every temporal gate so the branch really runs
    batch_size: int = 8  # windows per encoder batch (ovmlv and X-CLIP alike)
    throughput_batch: int | None = None  # windows per throughput batch (None: 2 for b16, 8 for tiny)
    fps: float = 24.0  # frame rate of the generated clips

    @property
    def torch_dtype(self) -> torch.dtype:
        return {"bf16": torch.bfloat16, "fp32": torch.float32}[self.dtype]

    @property
    def expensive_repeats(self) -> int:
        """Repeats of X-CLIP runs and uncached relabels (the slowest figures)."""
        return self.repeats or (1 if self.size == "b16" else 3)

    @property
    def end_to_end_repeats(self) -> int:
        return self.repeats or (2 if self.size == "b16" else 3)


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def build_model(options: BenchOptions) -> torch.nn.Module:
    """The model of `options.size` with random weights and every temporal gate = `options.gate`."""
    from .factory import create_model

    preset, overrides, _ = SIZES[options.size]
    model = create_model(
        preset, pretrained=False, device=options.device, dtype=options.torch_dtype, overrides=overrides
    )
    set_gates(model, options.gate)
    return model


def make_classifier(model: torch.nn.Module, options: BenchOptions):  # -> VideoClassifier
    """A classifier with a fresh in-memory label database (never the user's cache file)."""
    from .classifier import VideoClassifier
    from .label_db import LabelDB

    return VideoClassifier(model, LabelDB(None), batch_size=options.batch_size, max_duration_s=None)


def set_gates(model: torch.nn.Module, value: float) -> None:
    with torch.no_grad():
        for branch in model.temporal.branches.values():
            branch.gate.fill_(value)


@contextlib.contextmanager
def gates_set_to(model: torch.nn.Module, value: float) -> Iterator[None]:
    """Temporarily set every temporal gate (e.g. 0: the untrained preset as shipped)."""
    saved = [branch.gate.detach().clone() for branch in model.temporal.branches.values()]
    set_gates(model, value)
    try:
        yield
    finally:
        with torch.no_grad():
            for branch, gate in zip(model.temporal.branches.values(), saved):
                branch.gate.copy_(gate)


def timed(fn: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds, result) of fn(), synchronising CUDA around it.

    CPU seconds count every thread of this process (torch, decoders): on a shared machine
    they move much less than wall time, so both are reported.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def fresh_labels(count: int, offset: int) -> list[str]:
    """`count` distinct labels, different for every `offset` block (never in LABELS_10)."""
    pairs = [(a, n) for n in _NOUNS for a in _ADJECTIVES]
    return [f"a {a} {n}" for a, n in pairs[offset * count : (offset + 1) * count]]


# ---- figures -----------------------------------------------------------------------------
@torch.no_grad()
def bench_temporal_throughput(model: torch.nn.Module, batch: int, repeats: int) -> dict[str, Any]:
    """Frames/s of model.encode_video (gates on) vs model.clip.encode_image on the same frames.

    Also times both interpolation ends at once (alpha 0 and 1: what `encode_video` keeps by
    default when the gates are non-zero). Runs are interleaved so machine noise hits all alike.
    """
    t, size = model.num_frames, model.image_size
    generator = torch.Generator().manual_seed(0)
    frames = torch.randn(batch, t, 3, size, size, generator=generator)
    frames = frames.to(device=model.device, dtype=model.dtype)  # [B, T, 3, S, S]
    flat = frames.reshape(batch * t, 3, size, size)  # [B, T, 3, S, S] -> [B*T, 3, S, S]
    jobs = {
        "video": lambda: model.encode_video(frames),
        "image": lambda: model.clip.encode_image(flat),
        "video_two_alphas": lambda: model.encode_video_alphas(frames, (0.0, 1.0)),
    }
    times = interleave(jobs, repeats, model.device)
    wall, cpu = times["wall"], times["cpu"]
    frames_per_batch = batch * t
    fps = {name: frames_per_batch / median(values) for name, values in wall.items()}
    out: dict[str, Any] = {
        "batch_shape": [batch, t, 3, size, size],
        "frames_per_batch": frames_per_batch,
        "repeats": repeats,
        "temporal_active": model.has_temporal_effect(),
    }
    for name in jobs:
        out[f"{name}_s"], out[f"{name}_cpu_s"], out[f"{name}_fps"] = wall[name], cpu[name], fps[name]
    out["ratio"] = fps["video"] / fps["image"]  # video_fps / image_fps (wall clock)
    out["ratio_two_alphas"] = fps["video_two_alphas"] / fps["image"]
    out["ratio_cpu"] = median(cpu["image"]) / median(cpu["video"])  # the same ratio from CPU seconds
    return out


def bench_end_to_end(model, options: BenchOptions, video: str, labels: Sequence[str]) -> dict[str, Any]:
    """`classify` (decode + encode + label + score) seconds; fresh label database per run."""
    wall, cpu, windows = [], [], None
    for _ in range(options.end_to_end_repeats):
        classifier = make_classifier(model, options)
        seconds, cpu_seconds, result = timed(lambda c=classifier: c.classify(video, labels), model.device)
        wall.append(seconds)
        cpu.append(cpu_seconds)
        windows = int(result.timeline.shape[0])
    with gates_set_to(model, 0.0):  # the untrained preset as shipped: the branch is skipped
        classifier = make_classifier(model, options)
        zero_s, zero_cpu_s, _ = timed(lambda: classifier.classify(video, labels), model.device)
    threads = torch.get_num_threads()
    return {
        "labels": len(labels),
        "windows": windows,
        "classify_s": wall,
        "classify_s_median": median(wall),
        "classify_cpu_s": cpu,
        "classify_cpu_s_median": median(cpu),
        # What an idle machine would give if all `threads` cores were ours (CPU seconds / threads).
        "classify_idle_estimate_s": median(cpu) / threads,
        "cpu_share": median(cpu) / median(wall) / threads,  # 1.0: we had every core we asked for
        "classify_zero_gates_s": zero_s,
        "classify_zero_gates_cpu_s": zero_cpu_s,
    }


def bench_relabel(model, options: BenchOptions, video: str, cached_repeats: int = 5) -> dict[str, Any]:
    """Scoring 20 labels on an encoded video (cached and uncached) vs that video's encoding time."""
    classifier = make_classifier(model, options)
    _, encode_cpu_s, state = timed(lambda: classifier.encode_video(video), model.device)
    uncached = []
    for block in range(max(1, options.expensive_repeats)):
        labels = fresh_labels(20, block)
        uncached.append(timed(lambda ls=labels: classifier.score(state, ls), model.device)[0])
    labels = fresh_labels(20, 0)  # in the database since the first uncached call
    cached = [timed(lambda: classifier.score(state, labels), model.device)[0] for _ in range(cached_repeats)]
    return {
        "labels": 20,
        "windows": state.num_windows,
        "encode_seconds": state.encode_seconds,
        "encode_cpu_s": encode_cpu_s,
        "encode_alphas": list(state.alphas),  # encode_video's default: both ends (the app's slider)
        "encode_timings": dict(state.timings),  # decode_s / encode_s of that encoding
        "cached_s": cached,
        "cached_s_median": median(cached),
        "uncached_s": uncached,
        "uncached_s_median": median(uncached),
        "ratio_cached": median(cached) / state.encode_seconds,  # cached_s_median / encode_seconds
        "ratio_uncached": median(uncached) / state.encode_seconds,
    }


def bench_decode_only(model, video: str) -> dict[str, float]:
    """Seconds to decode the windows alone, per backend (where the end-to-end time goes)."""
    from .decode import iter_windows

    out = {}
    for backend in ("decord", "pyav"):
        try:
            seconds, _, _ = timed(
                lambda b=backend: sum(
                    1
                    for _ in iter_windows(
                        video,
                        frames_per_window=model.num_frames,
                        short_side=model.image_size,
                        max_duration_s=None,
                        backend=b,
                    )
                )
            )
        except Exception as exc:  # decord may be missing: report, do not fail the benchmark
            logger.warning("decode-only timing with %s failed: %s", backend, exc)
            continue
        out[f"{backend}_s"] = seconds
    return out


@torch.no_grad()
def interleave(jobs: dict[str, Callable[[], Any]], repeats: int, device) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU seconds of each job, run in turn `repeats` times after one warm-up each."""
    for job in jobs.values():
        job()
    wall: dict[str, list[float]] = {name: [] for name in jobs}
    cpu: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            seconds, cpu_seconds, _ = timed(job, device)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    return {"wall": wall, "cpu": cpu}


def per_window_interleaved(model, xclip_models: dict, num_labels: int, batch: int, repeats: int):
    """ovmlv's encoder vs X-CLIP's forward on the same window batch, timed back to back.

    ovmlv: `encode_video` with the gates on (what `classify` runs: one pass at alpha 1), with
    zero gates (the preset as shipped), and both alpha ends (what `encode_video` keeps by
    default, for the app's slider); X-CLIP: the full forward with `num_labels` labels.
    Ratios: X-CLIP seconds / ovmlv seconds (medians).
    """
    from .bench_xclip import tokenize_labels

    generator = torch.Generator().manual_seed(0)
    shape = (batch, model.num_frames, 3, model.image_size, model.image_size)
    frames = torch.randn(*shape, generator=generator).to(device=model.device)  # [B, T, 3, S, S]
    input_ids, attention_mask = (
        t.to(model.device) for t in tokenize_labels([f"label {i}" for i in range(num_labels)])
    )

    def zero_gates():
        with gates_set_to(model, 0.0):
            return model.encode_video(frames)

    jobs = {
        "ovmlv": lambda: model.encode_video(frames),  # what classify() runs: one pass at alpha 1
        "ovmlv_zero_gates": zero_gates,
        "ovmlv_two_alphas": lambda: model.encode_video_alphas(frames, (0.0, 1.0)),
    }
    for name, xclip in xclip_models.items():
        pixels = frames.to(next(xclip.parameters()).dtype)
        jobs[f"xclip_{name}"] = lambda x=xclip, p=pixels: x(
            input_ids=input_ids, pixel_values=p, attention_mask=attention_mask
        )
    times = interleave(jobs, repeats, model.device)
    out: dict[str, Any] = {"batch_shape": list(shape), "repeats": repeats, **times}
    for xclip_name in (f"xclip_{name}" for name in xclip_models):
        for ovmlv_name in ("ovmlv", "ovmlv_zero_gates", "ovmlv_two_alphas"):
            ratio = median(times["wall"][xclip_name]) / median(times["wall"][ovmlv_name])
            out[f"speedup_{xclip_name}_vs_{ovmlv_name}"] = ratio
    return out


def run_xclip(
    model,
    options: BenchOptions,
    video: str,
    labels: Sequence[str],
    ovmlv_s: dict[str, float],
    ovmlv_cpu_s: dict[str, float],
) -> dict[str, Any]:
    """X-CLIP doing the same timeline job; speedups = X-CLIP seconds / ovmlv seconds.

    The job timings run minutes apart, so a busy machine can skew them; `per_window` times
    the models on the same windows back to back (interleaved), which noise hits alike.
    """
    from .bench_xclip import XCLIP_B16, XCLIP_TINY, bench_xclip

    config = {"b16": XCLIP_B16, "tiny": XCLIP_TINY}[SIZES[options.size][2]]
    preprocess = make_classifier(model, options).preprocess
    runs, xclip_models = bench_xclip(
        config, video, labels, preprocess, model.device, options.batch_size, options.expensive_repeats
    )
    out: dict[str, Any] = {"config": config, **runs}
    for name, seconds in ovmlv_s.items():  # X-CLIP seconds / ovmlv seconds, wall clock
        out[f"speedup_vs_fp32_{name}"] = runs["fp32"]["total_s_median"] / seconds
        out[f"speedup_vs_bf16_{name}"] = runs["bf16"]["total_s_median"] / seconds
    for name, seconds in ovmlv_cpu_s.items():  # the same from CPU seconds
        out[f"speedup_vs_fp32_{name}_cpu"] = runs["fp32"]["total_cpu_s_median"] / seconds
        out[f"speedup_vs_bf16_{name}_cpu"] = runs["bf16"]["total_cpu_s_median"] / seconds
    batch = options.throughput_batch or (2 if options.size == "b16" else 8)
    repeats = 3 if options.size == "b16" else 10
    out["per_window"] = per_window_interleaved(model, xclip_models, len(labels), batch, repeats)
    out["note"] = (
        "XCLIPModel(XCLIPConfig(...)) with random weights; per batch of windows the model's "
        "forward(input_ids, pixel_values, attention_mask) (the video-conditioned text path, as "
        "transformers runs it; the 10 labels are re-encoded on each call), logits_per_video "
        "softmaxed over labels. Frames from ovmlv's iter_windows + VideoClassifier.preprocess "
        "(same windows, resize, crop, CLIP mean/std), timed from file to [W, L]. Labels tokenised "
        "with open_clip's CLIP BPE (same 49,408-token vocabulary as CLIPTokenizer, whose files "
        "are on the Hub), padded to 77 with an attention mask."
    )
    return out
