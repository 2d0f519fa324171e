"""Training losses: multi-label BCE, asymmetric loss, and embedding distillation (DESIGN §2.4).

All of them treat every label independently (sigmoid, never a softmax across labels) and
return the mean over elements, so their scale does not depend on how many labels a step scores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy with logits, mean over all [B, L] elements (each label's column times
    `weights` [L] when given)."""
    weight = None if weights is None else weights.float()[None, :]
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), weight=weight)


def asymmetric_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma_neg: float = 4.0,
    gamma_pos: float = 0.0,
    clip: float = 0.05,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Asymmetric loss (Ridnik et al., ICCV 2021), mean over elements.

    Negatives are down-weighted by ``p_m ** gamma_neg`` with the shifted probability
    ``p_m = max(p - clip, 0)`` (easy negatives below ``clip`` cost nothing); positives by
    ``(1 - p) ** gamma_pos``; each label's column by ``weights`` [L] when given. With
    gamma_neg = gamma_pos = clip = 0 it equals ``bce_loss``.
    """
    logits, targets = logits.float(), targets.float()
    probs = torch.sigmoid(logits)
    log_pos = F.logsigmoid(logits)  # log p, stable for large |logits|
    if clip > 0:
        shifted = (probs - clip).clamp(min=0.0)
        log_neg = torch.log((1.0 - shifted).clamp(min=1e-8))
    else:
        shifted, log_neg = probs, F.logsigmoid(-logits)  # log(1 - p)
    loss_pos = targets * log_pos
    loss_neg = (1.0 - targets) * log_neg
    if gamma_pos > 0:
        loss_pos = loss_pos * (1.0 - probs).pow(gamma_pos)
    if gamma_neg > 0:
        loss_neg = loss_neg * shifted.pow(gamma_neg)
    loss = loss_pos + loss_neg
    if weights is not None:
        loss = loss * weights.float()[None, :]
    return -loss.mean()


def distillation_loss(tuned: torch.Tensor, frozen: torch.Tensor) -> torch.Tensor:
    """mean(1 - cos) between tuned and frozen zero-shot embeddings [N, D] (the frozen side gets no gradient)."""
    return (1.0 - F.cosine_similarity(tuned.float(), frozen.detach().float(), dim=-1)).mean()
