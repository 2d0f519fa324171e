"""Evaluation metrics: per-class average precision, mAP, the base/novel harmonic mean, calibration.

Average precision is torchmetrics' (area under the precision-recall step curve, ties handled as
in scikit-learn). A class without a positive clip has no AP: it is NaN and left out of means.
"""

from __future__ import annotations

import math

import torch
from torchmetrics.functional.classification import binary_average_precision, binary_calibration_error


def _as_matrix(values: torch.Tensor, name: str) -> torch.Tensor:
    values = torch.as_tensor(values).detach().cpu().double()
    if values.dim() != 2:
        raise ValueError(f"{name} must be [N, C], got shape {tuple(values.shape)}")
    return values


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-class AP [C] for scores and binary targets [N, C]; NaN for a class with no positive."""
    scores, targets = _as_matrix(scores, "scores"), _as_matrix(targets, "targets")
    if scores.shape != targets.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and targets {tuple(targets.shape)} differ in shape")
    result = torch.full((scores.shape[1],), float("nan"), dtype=torch.float64)
    has_positive = targets.gt(0.5).any(dim=0)
    columns = has_positive.nonzero().flatten()
    if len(columns) == 0:
        return result
    chosen = scores[:, columns]
    if chosen.min() < 0 or chosen.max() > 1:
        # AP depends on the ranking only; squash monotonically (in float64, so no new ties) to
        # keep torchmetrics from applying its own float32 sigmoid to scores outside [0, 1].
        chosen = torch.atan(chosen) / math.pi + 0.5
    positives = targets[:, columns].gt(0.5).long()
    for i, column in enumerate(columns.tolist()):
        result[column] = float(binary_average_precision(chosen[:, i], positives[:, i]))
    return result


def mean_ap(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean of the per-class APs over classes with a positive (NaN when none has one)."""
    return nan_mean(average_precision(scores, targets))


def nan_mean(values: torch.Tensor) -> float:
    """Mean ignoring NaN entries (NaN when every entry is NaN)."""
    values = torch.as_tensor(values, dtype=torch.float32)
    finite = values[~torch.isnan(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def harmonic_mean(a: float, b: float) -> float:
    """2ab / (a + b): high only when both are high (0 if either is 0; NaN if either is NaN)."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return float("nan")
    if a <= 0.0 or b <= 0.0:
        return 0.0
    return 2.0 * a * b / (a + b)


def expected_calibration_error(probs: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> float:
    """ECE of per-label probabilities: every (clip, label) pair is one binary prediction.

    Pairs are put in ``bins`` equal-width probability bins; ECE is the pair-weighted mean over
    bins of |mean probability - fraction of positives|.
    """
    probs, targets = torch.as_tensor(probs).detach().float().cpu(), torch.as_tensor(targets).detach().cpu()
    if probs.shape != targets.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and targets {tuple(targets.shape)} differ in shape")
    if probs.numel() == 0:
        return float("nan")
    if probs.min() < 0 or probs.max() > 1:
        raise ValueError("probs must be probabilities in [0, 1]")
    return float(binary_calibration_error(probs.flatten(), targets.flatten().gt(0.5).long(), n_bins=bins))


def micro_f1(probs: torch.Tensor, targets: torch.Tensor, threshold: float) -> float:
    """Micro-F1 when every (clip, label) pair whose probability reaches `threshold` (compared in
    float32, as ``Result.segments`` does) is predicted present: 2 TP / (predicted + actual)."""
    probs, targets = _as_matrix(probs, "probs"), _as_matrix(targets, "targets").gt(0.5)
    if probs.shape != targets.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and targets {tuple(targets.shape)} differ in shape")
    predicted = probs.float() >= torch.tensor(threshold, dtype=torch.float32)
    total = int(predicted.sum()) + int(targets.sum())
    return 2.0 * int((predicted & targets).sum()) / total if total else float("nan")


def best_f1_threshold(probs: torch.Tensor, targets: torch.Tensor, step: float = 0.01) -> tuple[float, float]:
    """The threshold on [step, 1 - step] (a grid of `step`) with the best micro-F1, and that F1.

    Every (clip, label) pair is one binary prediction, positive when its probability reaches the
    threshold; micro-F1 = 2 TP / (predicted positives + actual positives). Among equal F1s the
    threshold nearest 0.5 wins. This is the threshold a fine-tuned checkpoint can ship as its
    default (``ModelConfig.threshold``), chosen on held-out clips of its base labels.
    """
    if not _as_matrix(targets, "targets").gt(0.5).any():
        raise ValueError("targets have no positive: no F1 to maximise")
    count = round(1.0 / step)
    grid = [i / count for i in range(1, count)]
    scores = [micro_f1(probs, targets, threshold) for threshold in grid]
    best = max(scores)
    chosen = min((t for t, f1 in zip(grid, scores) if f1 == best), key=lambda t: abs(t - 0.5))
    return round(chosen, 6), best
