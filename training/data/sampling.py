"""Which labels a training step scores: every base positive in the batch plus sampled base negatives.

Scoring the whole vocabulary every step is wasteful for large vocabularies (each label costs an
LLM + text-tower pass); the positives of the batch plus a fixed number of labels absent from
every clip of the batch give a BCE signal at a bounded cost. Novel labels are never chosen:
they must stay unseen for the base/novel evaluation to mean anything.
"""

from __future__ import annotations

import torch


def sample_labels(
    targets: torch.Tensor,
    base_ids: torch.Tensor,
    num_negatives: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick the labels to score for one batch.

    Args:
        targets: multi-hot targets [B, V] over the whole vocabulary.
        base_ids: vocabulary ids [K] of the base labels (the only ones that may be chosen).
        num_negatives: base labels with no positive in the batch to add (fewer if fewer exist;
            a negative number means all of them).
        generator: the random source of the negative sample.

    Returns:
        label_ids: LongTensor [L] of chosen vocabulary ids, increasing.
        label_targets: float [B, L], ``targets[:, label_ids]``.
    """
    if targets.dim() != 2:
        raise ValueError(f"targets must be [B, V], got shape {tuple(targets.shape)}")
    base_ids = torch.unique(base_ids.to(dtype=torch.long, device=targets.device))  # sorted, distinct
    if len(base_ids) and (base_ids.min() < 0 or base_ids.max() >= targets.shape[1]):
        raise ValueError(f"base_ids must be in [0, {targets.shape[1]}), got {base_ids.tolist()}")
    present = targets[:, base_ids].gt(0).any(dim=0)  # [K]
    positives, negatives = base_ids[present], base_ids[~present]
    if 0 <= num_negatives < len(negatives):
        order = torch.randperm(len(negatives), generator=generator, device="cpu")[:num_negatives]
        negatives = negatives[order.to(negatives.device)]
    label_ids, _ = torch.sort(torch.cat([positives, negatives]))
    return label_ids, targets[:, label_ids].float()
