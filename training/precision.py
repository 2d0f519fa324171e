"""bf16 compute on the CPU with float32 master weights (toy-world pretraining, fine-tuning).

`torch.autocast` runs the matrix products in bf16 (on CPUs with AMX, 3-6x faster than float32
at these sizes). Attention uses the math kernel: the CPU flash attention kernel's bf16
backward is far slower than its float32 one (0.89 s against 0.13 s in one toy CLIP step), which
made plain bf16 slower than float32 in all. Measured on 2 cores (session 13): a toy CLIP step
(width 128) 0.49 s against 0.67 s in float32; width 192, 0.66 s; a toy LLM step 0.17 s against 0.21 s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> None:
    """ValueError unless `precision` is one of PRECISIONS (for config validation)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


@contextlib.contextmanager
def compute_precision(precision: str) -> Iterator[None]:
    """Run the enclosed forward (and the backward it records) in `precision`: "fp32" as is,
    "bf16" under CPU autocast with the math attention kernel."""
    check_precision(precision)
    if precision == "fp32":
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with torch.autocast("cpu", dtype=torch.bfloat16), sdpa_kernel(SDPBackend.MATH):
        yield
