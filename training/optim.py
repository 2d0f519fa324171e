"""AdamW parameter groups and the warmup + cosine learning-rate schedule.

Weight decay pulls parameters toward 0. That is right for weight matrices, but wrong for
gates (0 means "off"), biases, norms, position tables and the LLM prefix/queries (whose
scale is that of real token embeddings), so those get none. The vision tower, when it is
fine-tuned, gets its own (much lower) learning rate.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from training.config import OptimSection

# Parameters (by last name component) that never get weight decay, whatever their shape.
NO_DECAY_NAMES = frozenset(
    {
        "prefix",
        "queries",
        "context",
        "frame_position",
        "positional_embedding",
        "class_embedding",
        "pos_embed",
        "cls_token",
        "reg_token",
        "gate",
        "logit_scale",
        "logit_bias",
    }
)
VISION_PREFIX = "clip.visual."
# The scalar parameters that optim.scalar_lr may speed up: the zero-initialised gates and the
# score calibration (one number each, so a large step is safe; at the adapters' LR they lag).
SCALAR_NAMES = frozenset({"gate", "logit_scale", "logit_bias"})


def parameter_groups(model: nn.Module, cfg: OptimSection) -> list[dict]:
    """AdamW groups of the trainable parameters: adapters / vision tower x decay / no decay.

    Every group carries a "name" so logs and checkpoints say what it holds; empty groups are left out.
    """
    buckets: dict[str, list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if cfg.scalar_lr is not None and name.rsplit(".", 1)[-1] in SCALAR_NAMES:
            buckets.setdefault("scalars", []).append(param)
            continue
        part = "vision" if name.startswith(VISION_PREFIX) else "adapters"
        no_decay = param.ndim < 2 or name.rsplit(".", 1)[-1] in NO_DECAY_NAMES
        buckets.setdefault(f"{part}/{'no_decay' if no_decay else 'decay'}", []).append(param)
    groups = []
    for key in ("adapters/decay", "adapters/no_decay", "scalars", "vision/decay", "vision/no_decay"):
        if key in buckets:
            lr = cfg.vision_lr if key.startswith("vision") else cfg.lr
            groups.append(
                {
                    "name": key,
                    "params": buckets[key],
                    "lr": cfg.scalar_lr if key == "scalars" else lr,
                    "weight_decay": 0.0 if key.endswith("no_decay") or key == "scalars" else cfg.weight_decay,
                }
            )
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return groups


def build_optimizer(model: nn.Module, cfg: OptimSection) -> torch.optim.AdamW:
    """AdamW over `parameter_groups(model, cfg)`."""
    return torch.optim.AdamW(parameter_groups(model, cfg), betas=tuple(cfg.betas), eps=cfg.eps)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """LR multiplier: linear 0 -> 1 over `warmup_steps`, then cosine 1 -> `min_ratio` at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimSection, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warmup + cosine on every group (each group keeps its own peak LR)."""

    def multiplier(step: int) -> float:
        return warmup_cosine(step, cfg.warmup_steps, total_steps, cfg.min_lr_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
