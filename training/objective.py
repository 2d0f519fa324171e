"""The training objective of DESIGN §2.4, as a module (DDP synchronises gradients through forward).

Windows are encoded at alpha 0 (frozen frame-wise CLIP, without gradients) and alpha 1 (tuned);
labels through the soft-attribute path and the zero-shot anchor e0 (`labels.anchor`). Then
    loss = BCE(logits(tuned windows, tuned labels), targets)           (or asymmetric loss)
         [+ soft_weight * BCE(logits(tuned windows, e_soft), targets)]
         + lambda * [mean(1 - cos(tuned, frozen)) over windows + mean(1 - cos(tuned, e0)) over labels]
The distillation keeps the tuned embeddings near the zero-shot ones, which is what keeps
novel labels (never trained on) working. `loss.label_weights` weights each label's BCE terms.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ovmlv.model import OVMLVModel, combine_label_embeddings
from training.config import LossSection
from training.losses import asymmetric_loss, bce_loss, distillation_loss

LOSS_NAMES = ("loss", "classification", "distill_video", "distill_label")


class TrainStep(nn.Module):
    """The training objective as a module, so DDP sees a forward (and synchronises gradients)."""

    def __init__(
        self, model: OVMLVModel, cfg: LossSection, reference_dtype: torch.dtype | None = None
    ) -> None:
        """`reference_dtype`: run the alpha-0 pass on a frozen copy of the vision tower in this dtype
        (the trainer's CPU bf16: bf16 weights encode 2.4x faster than autocast, and the pass is a
        distillation target without gradients); None: the model's own tower at alpha 0."""
        super().__init__()
        self.model = model
        self.cfg = cfg
        # label -> e0 row: the frozen text tower (and, for an "attributes" anchor, phrases written
        # once by the frozen LLM) make it constant, so it is computed once per label, not per step
        self.anchors: dict[str, torch.Tensor] = {}
        # A frozen copy of the vision tower for the alpha-0 pass: with a trainable tower that pass is
        # no longer zero-shot CLIP; with reference_dtype it is the same tower in a faster dtype.
        self.reference_visual = None
        if model.config.train_vision_tower or reference_dtype is not None:
            self.reference_visual = copy.deepcopy(model.clip.visual).requires_grad_(False).eval()
            self.reference_dtype = reference_dtype or model.dtype
            self.reference_visual.to(self.reference_dtype)

    def label_anchors(self, labels: Sequence[str]) -> torch.Tensor:
        """e0 [L, D] of `labels` (`labels.anchor`), from the cache or computed once."""
        missing = [label for label in labels if label not in self.anchors]
        if missing:
            with torch.no_grad():
                self.anchors.update(zip(missing, self.model.anchor_label_embeddings(missing), strict=True))
        return torch.stack([self.anchors[label] for label in labels])

    def label_weights(self, labels: Sequence[str], device: torch.device) -> torch.Tensor | None:
        """[L] weights of `labels` in the classification losses (`loss.label_weights`; others 1),
        scaled to a mean of 1, so that only their ratios change the loss; None when unweighted."""
        if not self.cfg.label_weights:
            return None
        weights = [float(self.cfg.label_weights.get(label, 1.0)) for label in labels]
        weights = torch.tensor(weights, device=device)
        return weights / weights.mean()

    def classification_loss(
        self, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.cfg.kind == "asymmetric":
            return asymmetric_loss(
                logits, targets, self.cfg.asl_gamma_neg, self.cfg.asl_gamma_pos, self.cfg.asl_clip, weights
            )
        return bce_loss(logits, targets, weights)

    def frozen_windows(self, pixels: torch.Tensor) -> torch.Tensor:
        """Zero-shot window embeddings [B, D] from the frozen reference tower."""
        b, t = pixels.shape[:2]
        # autocast off: the copy already has its dtype, and autocast's casts would cost the time it saves
        with torch.no_grad(), torch.autocast(pixels.device.type, enabled=False):
            frames = pixels.reshape(b * t, *pixels.shape[2:]).to(self.reference_dtype)  # [B*T, 3, S, S]
            features = self.reference_visual(frames).float().reshape(b, t, -1).mean(dim=1)
        return F.normalize(features, dim=-1)

    def forward(
        self, pixels: torch.Tensor, labels: Sequence[str], label_targets: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Losses for clips [B, T, 3, S, S] scored against `labels` with targets [B, L]."""
        model = self.model
        if self.reference_visual is None:
            with torch.no_grad():  # alpha 0 is frame-wise CLIP: no branch runs, nothing to backpropagate
                frozen = model.encode_video(pixels, 0.0)
        else:
            frozen = self.frozen_windows(pixels)
        # without temporal branches or a trained tower, alpha 1 is the same frame-wise CLIP: encode once
        trained = len(model.temporal.branches) or model.config.train_vision_tower
        tuned = model.encode_video(pixels, 1.0) if trained else frozen
        label_frozen = self.label_anchors(labels)  # [L, D]
        e_soft = model.soft_embedding(labels)  # [L, D]
        label_tuned = combine_label_embeddings(label_frozen, e_soft, model.label_gate(1.0))
        weights = self.label_weights(labels, tuned.device)  # once a step, for both losses
        classification = self.classification_loss(model.logits(tuned, label_tuned), label_targets, weights)
        if self.cfg.soft_weight:  # the soft path on its own, as if the gate were fully open
            soft = self.classification_loss(model.logits(tuned, e_soft), label_targets, weights)
            classification = classification + self.cfg.soft_weight * soft
        distill_video = distillation_loss(tuned, frozen)
        distill_label = distillation_loss(label_tuned, label_frozen)
        if self.cfg.label_distill_weight is None:
            loss = classification + self.cfg.distill_weight * (distill_video + distill_label)
        else:  # the labels' own weight: how far label embeddings may leave their anchors
            distill = self.cfg.distill_weight * distill_video + self.cfg.label_distill_weight * distill_label
            loss = classification + distill
        return dict(zip(LOSS_NAMES, (loss, classification, distill_video, distill_label), strict=True))
