"""Pretraining the toy CLIP: a small open_clip ViT + text tower, on single toy-world frames.

Captions name only attributes, places and sizes (captions.py), never nouns or motions. The
loss is a SigLIP-style sigmoid loss whose targets are the exact truth of every (frame,
caption) pair in the batch (a partial caption like "something red" is true of many frames),
with perturbed hard-negative captions per frame ("a blue circle" for a red circle, "... on the
right" for one on the left, two objects' colours swapped).

The result is saved as an open_clip `local-dir:` folder (open_clip_config.json +
open_clip_model.safetensors) that `open_clip.create_model("local-dir:DIR")` and
`ovmlv.clip_loader.load_clip(ClipConfig(arch="toy", local_dir=DIR), ...)` load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ovmlv.toyworld import COLOURS, SHAPES, ToyScene, object_mask, object_state, render_frame, sample_scene
from ovmlv.toyworld.render import RADIUS_RANGE, SCALE_RANGE
from ovmlv.toyworld.vocabulary import STILL
from training.precision import check_precision, compute_precision

from . import optimiser_step
from .captions import (
    FACTS,
    CachedTokenizer,
    Caption,
    Seen,
    captions_for_frame,
    named_facts,
    truth_matrix,
    visible_objects,
)

logger = logging.getLogger(__name__)

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
LAYOUT_GRID = 4  # the layout probe predicts object coverage of a 4x4 grid (where things are, how big)
MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's, so defaults elsewhere agree
STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ToyClipConfig:
    """Architecture and training schedule of the toy CLIP."""

    image_size: int = 48  # the model's input size; pretraining frames are rendered at it (the renderer
    # scales with the size), and the classifier resizes the 64x64 clips to it. 6x6 patches of 8 px: 36
    # tokens + class token, where 64 px had 64: a step 0.75-1.0 s instead of 1.0-1.2 on this AMD EPYC's 2
    # cores, and the CLIP checks as good or better (binding 80.4%, places 100%, R^2 x .94; session 28)
    patch_size: int = 8  # 8x8 patches
    vision_width: int = 192  # ViT width (head width 32); with embed_dim 192: see embed_dim
    vision_layers: int = 6  # ViT blocks (the temporal branch later goes into the last ones)
    text_width: int = 64  # small: the 49,408-token embedding table dominates the file size
    text_layers: int = 4
    text_heads: int = 4
    context_length: int = 32  # captions and "a video of <label>" + soft tokens fit easily
    embed_dim: int = 192  # shared embedding width. At 128/128 one embedding did not hold where things are,
    # how big, and which colour goes with which shape; 192/192 with size_jitter_p 0.6 and bf16 (sessions
    # 13-18): places and sizes 100%, binding 72-74%, 81-83% with single_object_p 0.25
    steps: int = 2000  # optimisation steps. Binding is learned last: 1700 at width 128 gave multi-object mAP
    # 0.75 instead of 0.79; 1800 at width 192 bound colour to shape in 59% of two-object frames, not 72%
    batch_size: int = 128  # frames per step (and twice as many captions)
    lr: float = 1e-3  # peak AdamW learning rate
    weight_decay: float = 0.05
    warmup_steps: int = 100
    seed: int = 0  # model init and data
    noise_max: float = 0.05  # per-frame Gaussian noise std drawn from [0, noise_max]
    chroma_subsample_p: float = 0.5  # fraction of frames seen through yuv420p-like chroma blur
    negatives: int = 2  # perturbed hard-negative captions per frame
    shape_steps: int = 500  # first steps (a quarter): captions name shapes only (see captions_for_frame)
    probe_weight: float = 1.0  # weight of the auxiliary attribute-presence probe on image embeddings
    softmax_weight: float = 0.0  # weight of the multi-positive InfoNCE term
    probe_only_steps: int = 0  # first steps train the image tower with the probe alone
    single_object_p: float = 0.25  # frames from one-object scenes (the rest: 1-3 objects). At width 192,
    # 0.25 bound colour to shape in 81-83% of two-object frames (multi-object mAP 87.5-88.3) instead of 72-74%
    # (80-83) at 0.5, places and sizes still 99.6-100% (session 18, two CLIPs; checkpoints/toy/README.md)
    size_jitter_p: float = 0.6  # one-object frames whose object is redrawn at a radius from the whole
    # growing/shrinking range (so "big" and "small" are clear in more than the ends of those clips);
    # at width 128, 0.6 taught the size words (100% right instead of 61%) but cost binding and novel nouns
    # (78.9); at width 192 the embedding holds both (size words 100%, binding 72%; session 13)
    layout_weight: float = 100.0  # weight of the layout probe (object coverage of a 4x4 grid); at 1.0 it
    # was lost next to the contrastive sum: the embedding did not say where things are (R^2 x ~0)
    text_probe_weight: float = 0.0  # weight of a linear probe on caption embeddings that must say which
    # places and sizes the caption states (BCE), so the text tower learns those words early; 0: no probe
    pool_type: str = "tok"  # open_clip's image pooling: "tok" (class token, as CLIP) or "avg" (patch mean)
    precision: str = "bf16"  # or "fp32"; bf16 is torch.autocast with float32 master weights and the
    # math attention kernel (CPU flash attention's bf16 backward is 7x slower than its fp32 one);
    # a step of the width-128 model takes 0.49 s against 0.67 s in fp32 on 2 cores; width 192 0.66 s (session 13)
    compile: bool = True  # torch.compile the loss (inductor; without a C++ compiler: a warning, then eager).
    # Width 192 in bf16: a step 0.72-0.78 s instead of 0.84 on 2 cores after ~1 min compiling, 25.5-26.2 min
    # for 2000 steps instead of 29.3 (sessions 17-18). Training then runs under deterministic algorithms
    # (compiled reruns differed by up to 2.7e-3 without them). Not bit-identical to eager

    def __post_init__(self) -> None:
        check_precision(self.precision)

    def model_cfg(self) -> dict[str, Any]:
        """The open_clip model config (the "model_cfg" of open_clip_config.json)."""
        return {
            "embed_dim": self.embed_dim,
            "init_logit_scale": math.log(10.0),
            "init_logit_bias": -10.0,
            "vision_cfg": {
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "width": self.vision_width,
                "layers": self.vision_layers,
                "head_width": 32,
                "pool_type": self.pool_type,
            },
            "text_cfg": {
                "context_length": self.context_length,
                "vocab_size": 49408,
                "width": self.text_width,
                "heads": self.text_heads,
                "layers": self.text_layers,
            },
        }


def build_model(cfg: ToyClipConfig) -> torch.nn.Module:
    """A randomly initialised open_clip CLIP with the toy architecture."""
    from open_clip.model import CLIP

    torch.manual_seed(cfg.seed)
    return CLIP(**cfg.model_cfg())


def chroma_subsample(frames: np.ndarray) -> np.ndarray:
    """Average the chroma of each 2x2 block (what yuv420p does to colours), float [N, S, S, 3]."""
    rgb_to_yuv = np.array(
        [[0.299, 0.587, 0.114], [-0.169, -0.331, 0.5], [0.5, -0.419, -0.081]], dtype=np.float32
    )
    yuv = frames @ rgb_to_yuv.T
    n, h, w, _ = yuv.shape
    chroma = yuv[..., 1:].reshape(n, h // 2, 2, w // 2, 2, 2).mean(axis=(2, 4))
    yuv[..., 1:] = np.repeat(np.repeat(chroma, 2, axis=1), 2, axis=2)
    return yuv @ np.linalg.inv(rgb_to_yuv).T


def layout(scene, t: int, num_frames: int, grid: int = LAYOUT_GRID) -> np.ndarray:
    """float32 [grid * grid]: the fraction of each grid cell that the scene's objects cover at frame t."""
    size = scene.size
    covered = np.zeros((size, size), dtype=bool)
    for obj in scene.objects:
        covered |= object_mask(obj, t, num_frames, size)
    cell = size // grid
    return covered.reshape(grid, cell, grid, cell).mean(axis=(1, 3)).astype(np.float32).ravel()


def resized_still(scene: ToyScene, t: int, num_frames: int, rng: np.random.Generator) -> ToyScene:
    """The one-object `scene` with its object still where it is at frame `t`, redrawn at a radius
    anywhere from the smallest shrinking to the largest growing size (kept inside the frame)."""
    (obj,) = scene.objects
    x, y, _, _ = object_state(obj, t, num_frames)
    low, high = RADIUS_RANGE[0] * SCALE_RANGE[0], RADIUS_RANGE[1] * SCALE_RANGE[1]
    radius = float(rng.uniform(low, high)) * scene.size / 64.0
    x, y = (float(np.clip(v, radius + 1.0, scene.size - radius - 1.0)) for v in (x, y))
    still = dataclasses.replace(obj, motion=STILL, x=x, y=y, radius=radius, travel=0.0)
    return dataclasses.replace(scene, objects=(still,))


def sample_frames(
    rng: np.random.Generator, count: int, cfg: ToyClipConfig, num_frames: int = 16
) -> tuple[np.ndarray, list[list[Seen]], np.ndarray]:
    """`count` random frames (float32 [N, S, S, 3], 0..255), their visible objects, their layouts."""
    images, visible, layouts = [], [], []
    while len(images) < count:
        objects_range = (1, 1) if rng.random() < cfg.single_object_p else (1, 3)
        scene = sample_scene(
            int(rng.integers(2**31)), num_frames, cfg.image_size, objects_range, rng.random() < 0.9
        )
        t = int(rng.integers(num_frames))
        if cfg.size_jitter_p and len(scene.objects) == 1 and rng.random() < cfg.size_jitter_p:
            scene = resized_still(scene, t, num_frames, rng)
        objects = visible_objects(scene, t)
        if not objects:
            continue  # every object is blinked off: nothing to describe
        image = render_frame(scene, t)
        image += rng.normal(0.0, rng.uniform(0, cfg.noise_max) * 255.0, size=image.shape).astype(np.float32)
        images.append(image)
        visible.append(objects)
        layouts.append(layout(scene, t, num_frames))
    frames = np.clip(np.stack(images), 0, 255)
    subsample = rng.random(count) < cfg.chroma_subsample_p
    if subsample.any():
        frames[subsample] = np.clip(chroma_subsample(frames[subsample]), 0, 255)
    return np.rint(frames).astype(np.float32), visible, np.stack(layouts)


def to_pixels(frames: np.ndarray) -> torch.Tensor:
    """Normalised pixels [N, 3, S, S] from float or uint8 frames [N, S, S, 3] in 0..255."""
    x = torch.as_tensor(np.asarray(frames, dtype=np.float32) / 255.0).permute(0, 3, 1, 2)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def caption_batch(
    visible: list[list[Seen]], rng: np.random.Generator, negatives: int = 2, shapes_only: bool = False
) -> tuple[list[Caption], np.ndarray]:
    """Per frame a true caption and `negatives` perturbed ones; the [frames, captions] truth matrix."""
    captions: list[Caption] = []
    for objects in visible:
        captions.extend(captions_for_frame(objects, rng, negatives, shapes_only))
    return captions, truth_matrix(captions, visible)


def multi_positive_nce(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where every true (frame, caption) pair counts as a positive.

    Frame -> captions: -log of the softmax mass on the frame's true captions; caption ->
    frames likewise (captions true of no frame are skipped). A frame's true caption then
    competes directly with its hard negative ("a red square" for a red circle): the
    comparison that makes shapes learnable.
    """
    positive = truth > 0
    image_to_text = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1) - torch.logsumexp(
        logits, dim=1
    )
    has_image = positive.any(dim=0)
    text_logits = logits.T[has_image]
    text_to_image = torch.logsumexp(
        text_logits.masked_fill(~positive.T[has_image], float("-inf")), dim=1
    ) - torch.logsumexp(text_logits, dim=1)
    return -(image_to_text.mean() + text_to_image.mean()) / 2


def multi_positive_softmax(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -log(softmax mass on the positive columns); rows without one are skipped."""
    positive = targets > 0
    rows = positive.any(dim=1)
    logits, positive = logits[rows], positive[rows]
    mass = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1) - torch.logsumexp(
        logits, dim=1
    )
    return -mass.mean()


def attribute_presence(visible: list[list[Seen]]) -> np.ndarray:
    """float32 [N, 41]: which colours (6), shapes (5) and colour+shape pairs (30) each frame shows."""
    colours, shapes = list(COLOURS), list(SHAPES)
    presence = np.zeros((len(visible), len(colours) + len(shapes) + len(colours) * len(shapes)), np.float32)
    for i, objects in enumerate(visible):
        for obj in objects:
            c, s = colours.index(obj.colour), shapes.index(obj.shape)
            presence[i, [c, len(colours) + s, len(colours) + len(shapes) + c * len(shapes) + s]] = 1.0
    return presence


def batch_loss(
    model: torch.nn.Module,
    probe: torch.nn.Module,
    pixels: torch.Tensor,
    tokens: torch.Tensor | None,
    truth: torch.Tensor,
    presence: torch.Tensor,
    probe_weight: float,
    softmax_weight: float = 0.0,
    temperature: float = 20.0,
    layouts: torch.Tensor | None = None,
    layout_weight: float = 0.0,
    text_probe: torch.nn.Module | None = None,
    stated_facts: torch.Tensor | None = None,
    text_probe_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(SigLIP-style loss with the exact multi-positive truth, probe losses).

    The contrastive term sums over captions and averages over frames. The probe terms are
    linear heads on the image embedding, discarded after pretraining. Attribute presence
    bootstraps shape features, which the contrastive signal alone does not start learning at
    this data scale. The layout probe (object coverage of a 4x4 grid) keeps where objects are
    in the embedding, as real CLIP embeddings coarsely do (what a temporal branch needs to tell
    "moving left" from "moving right"). Weighted 1, it did not: a mean BCE is tiny next to the
    contrastive sum over ~384 captions, and the embedding said how big an object is (held-out
    R^2 0.6) but not where (R^2 ~0, see clip_eval.position_r2). Weighted 100 (the default),
    R^2 of x and y is 0.85. The text probe (when given, weighted by its own scale) asks the caption
    embedding which places and sizes the caption states (`stated_facts` [C, 6]).
    """
    features = model.encode_image(pixels)
    contrastive = features.new_zeros(())
    if tokens is not None:  # None: the probe-only warm-up phase
        image = F.normalize(features, dim=-1)
        text_features = model.encode_text(tokens)
        text = F.normalize(text_features, dim=-1)
        similarity = image @ text.T
        logits = model.logit_scale.exp() * similarity + model.logit_bias
        contrastive = F.binary_cross_entropy_with_logits(logits, truth, reduction="sum") / pixels.shape[0]
        if softmax_weight:
            contrastive = contrastive + softmax_weight * multi_positive_nce(similarity * temperature, truth)
    scores = probe(features)
    nc, ns, na = len(COLOURS), len(SHAPES), presence.shape[1]
    probe_loss = sum(
        multi_positive_softmax(scores[:, part], presence[:, part])
        for part in (slice(0, nc), slice(nc, nc + ns), slice(nc + ns, na))
    )
    total = probe_weight * probe_loss
    if text_probe is not None and tokens is not None:
        named_loss = F.binary_cross_entropy_with_logits(text_probe(text_features), stated_facts)
        total = total + text_probe_weight * named_loss
    if layouts is not None and layout_weight:
        total = total + layout_weight * F.binary_cross_entropy_with_logits(scores[:, na:], layouts)
    return contrastive, total


@contextlib.contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """torch.use_deterministic_algorithms(True) inside, the caller's setting restored after.

    Eager toy-CLIP training reruns bit-identically without it; compiled (inductor) training did not
    (three 8-step runs differed by up to 2.7e-3), and does with it (session 18)."""
    enabled, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def compiled(fn: Callable) -> Callable:
    """torch.compile(fn), or `fn` itself with a warning where inductor has no C++ compiler to use."""
    import shutil

    from torch._inductor import cpp_builder

    try:
        compiler = cpp_builder.get_cpp_compiler()
    except Exception as exc:  # torch raises its own error types for a missing or unusable compiler
        compiler, reason = None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    else:
        reason = f"{compiler} not found"
    if compiler is None or shutil.which(compiler) is None:
        logger.warning("toy CLIP: not compiling the training step (%s); it runs eagerly, slower", reason)
        return fn
    return torch.compile(fn)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        skip = param.ndim < 2 or "embedding" in name or name in ("logit_scale", "logit_bias")
        (no_decay if skip else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_toy_clip(
    cfg: ToyClipConfig, log_every: int = 100, on_log: Callable[[torch.nn.Module, int], None] | None = None
) -> tuple[torch.nn.Module, dict[str, float]]:
    """Train the toy CLIP from scratch; returns the model (eval mode) and timing stats.

    Args:
        cfg: architecture and schedule.
        log_every: steps between progress lines.
        on_log: called with (model, step) at every progress line (e.g. an evaluation); the model
            is put back in training mode afterwards.
    """
    import open_clip

    model = build_model(cfg).train()
    probe = torch.nn.Linear(cfg.embed_dim, 41 + LAYOUT_GRID**2)  # attributes + layout; discarded after
    tokenizer = CachedTokenizer(open_clip.SimpleTokenizer(context_length=cfg.context_length))
    loss_fn = compiled(batch_loss) if cfg.compile else batch_loss
    groups = _param_groups(model, cfg.weight_decay) + [
        {"params": list(probe.parameters()), "weight_decay": 0.0}
    ]
    text_probe = None
    if cfg.text_probe_weight:  # built only when used: the default run draws the same random numbers
        text_probe = torch.nn.Linear(cfg.embed_dim, len(FACTS))
        groups.append({"params": list(text_probe.parameters()), "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))

    rng = np.random.default_rng(cfg.seed)

    def make_batch(
        step: int,
    ) -> tuple[np.ndarray, list[list[Seen]], np.ndarray, torch.Tensor, np.ndarray, np.ndarray | None]:
        frames, visible, layouts = sample_frames(rng, cfg.batch_size, cfg)
        captions, truth = caption_batch(visible, rng, cfg.negatives, step < cfg.shape_steps)
        facts = named_facts(captions) if text_probe is not None else None  # only the text probe reads them
        return frames, visible, layouts, tokenizer([c.text for c in captions]), truth, facts

    # One batch is rendered ahead on a thread while the model steps; one batch at a time and in
    # step order, so `rng` draws exactly as in a plain loop. On 2 cores this gains nothing
    # (session 17: 0.85 s a step either way, and likewise with a child process rendering): torch's
    # two threads keep both cores busy, so rendering (0.155 s a batch of 128) adds to each step.
    prefetch = ThreadPoolExecutor(max_workers=1)
    upcoming = prefetch.submit(make_batch, 0)
    start, data_time, running = time.perf_counter(), 0.0, 0.0
    with deterministic_algorithms() if cfg.compile else contextlib.nullcontext():  # see its docstring
        for step in range(cfg.steps):
            tic = time.perf_counter()
            frames, visible, layouts, tokens, truth, named = upcoming.result()
            if step + 1 < cfg.steps:
                upcoming = prefetch.submit(make_batch, step + 1)
            data_time += time.perf_counter() - tic  # waiting for data the thread had not finished
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            presence = torch.from_numpy(attribute_presence(visible))
            warm_up = step < cfg.probe_only_steps
            with compute_precision(cfg.precision):
                contrastive, probe_loss = loss_fn(
                    model,
                    probe,
                    to_pixels(frames),
                    None if warm_up else tokens,
                    torch.from_numpy(truth),
                    presence,
                    cfg.probe_weight,
                    cfg.softmax_weight,
                    layouts=torch.from_numpy(layouts),
                    layout_weight=cfg.layout_weight,
                    text_probe=text_probe,
                    stated_facts=None if named is None else torch.from_numpy(named),
                    text_probe_weight=cfg.text_probe_weight,
                )
            loss = contrastive + probe_loss
            running = optimiser_step(model, optimizer, loss, running, step)
            if (step + 1) % log_every == 0 or step + 1 == cfg.steps:
                elapsed = time.perf_counter() - start
                share = 100 * data_time / elapsed
                logger.info(
                    "toy CLIP step %d/%d loss %.3f (%.1f s, %.0f%% data)",
                    step + 1,
                    cfg.steps,
                    running,
                    elapsed,
                    share,
                )
                if on_log is not None:
                    on_log(model.eval(), step + 1)
                    model.train()
    prefetch.shutdown()
    stats = {"train_s": time.perf_counter() - start, "data_s": data_time, "final_loss": running}
    return model.eval(), stats


def save_toy_clip(
    model: torch.nn.Module, cfg: ToyClipConfig, out_dir: str | Path, dtype: torch.dtype = torch.float16
) -> Path:
    """Write open_clip_config.json + open_clip_model.safetensors (weights stored as `dtype`)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "model_cfg": cfg.model_cfg(),
        "preprocess_cfg": {
            "size": cfg.image_size,
            "mean": list(MEAN),
            "std": list(STD),
            "interpolation": "bicubic",
            "resize_mode": "shortest",
        },
        "toyworld": {"trained_with": asdict(cfg)},
    }
    (out_dir / CONFIG_FILE).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / WEIGHTS_FILE), metadata={"format": "pt"})
    return out_dir
