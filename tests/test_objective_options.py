"""Optional terms of the training objective (training/objective.py), each against a hand computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from training.config import LossSection
from training.losses import asymmetric_loss, bce_loss
from training.objective import TrainStep

from conftest import random_frames

LABELS, TARGETS = ["red circle", "blue square"], torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def _open_model(fresh_tiny):
    model = fresh_tiny("tiny-clip")
    with torch.no_grad():  # open every gate, so that each term is non-zero
        for branch in model.temporal.branches.values():
            branch.gate.fill_(0.5)
        model.label_encoder.gate.fill_(0.3)
    return model


def test_soft_weight_adds_a_classification_loss_scored_with_e_soft_alone(fresh_tiny):
    model = _open_model(fresh_tiny)
    pixels = random_frames(2, model.num_frames, model.image_size)
    with torch.no_grad():
        plain = TrainStep(model, LossSection())(pixels, LABELS, TARGETS)
        both = TrainStep(model, LossSection(soft_weight=0.7))(pixels, LABELS, TARGETS)
        windows = model.encode_video(pixels, 1.0)
        by_hand = bce_loss(model.logits(windows, model.soft_embedding(LABELS)), TARGETS)
    torch.testing.assert_close(both["classification"], plain["classification"] + 0.7 * by_hand)
    torch.testing.assert_close(both["loss"] - plain["loss"], 0.7 * by_hand)


@pytest.mark.parametrize("kind", ["bce", "asymmetric"])
def test_label_weights_weight_each_labels_terms_scaled_to_a_mean_of_one(fresh_tiny, kind):
    """loss.label_weights: each label's column of the classification losses (the main one and the
    e_soft one) times its weight over the mean weight of the step's labels; equal weights change
    nothing, and only the classification terms move."""
    model = _open_model(fresh_tiny)
    pixels = random_frames(2, model.num_frames, model.image_size)
    plain_cfg = LossSection(kind=kind, soft_weight=0.5)
    weighted_cfg = LossSection(kind=kind, soft_weight=0.5, label_weights={"blue square": 3.0})
    with torch.no_grad():
        plain = TrainStep(model, plain_cfg)(pixels, LABELS, TARGETS)
        weighted = TrainStep(model, weighted_cfg)(pixels, LABELS, TARGETS)
        same = TrainStep(model, LossSection(kind=kind, soft_weight=0.5, label_weights={"red circle": 1.0}))
        unchanged = same(pixels, LABELS, TARGETS)
        windows = model.encode_video(pixels, 1.0)
        label_tuned = model.soft_label_embeddings(LABELS, 1.0)
        e_soft = model.soft_embedding(LABELS)
    weights = torch.tensor([1.0, 3.0]) / 2.0  # red circle 1, blue square 3; mean 2

    def by_hand(logits):  # each label's column alone through the loss (a mean over clips), then weighted
        loss = F.binary_cross_entropy_with_logits if kind == "bce" else asymmetric_loss
        means = [loss(logits[:, j : j + 1], TARGETS[:, j : j + 1]) for j in range(len(LABELS))]
        return (torch.stack(means) * weights).mean()

    expected = by_hand(model.logits(windows, label_tuned)) + 0.5 * by_hand(model.logits(windows, e_soft))
    torch.testing.assert_close(weighted["classification"], expected)
    torch.testing.assert_close(weighted["distill_video"], plain["distill_video"])
    torch.testing.assert_close(weighted["distill_label"], plain["distill_label"])
    assert not torch.allclose(weighted["classification"], plain["classification"])
    torch.testing.assert_close(unchanged["classification"], plain["classification"], rtol=0, atol=1e-7)


def test_without_temporal_branches_the_windows_are_encoded_once(fresh_tiny, monkeypatch):
    model = fresh_tiny("tiny-clip", overrides={"temporal": {"blocks": []}})
    pixels = random_frames(2, model.num_frames, model.image_size)
    with torch.no_grad():
        model.label_encoder.gate.fill_(0.3)
        labels = model.soft_label_embeddings(LABELS, 1.0)  # template anchor + gated e_soft
        expected = bce_loss(model.logits(model.encode_video(pixels, 1.0), labels), TARGETS)
    calls = []
    encode = model.encode_video
    monkeypatch.setattr(model, "encode_video", lambda *args: calls.append(args[1:]) or encode(*args))
    losses = TrainStep(model, LossSection())(pixels, LABELS, TARGETS)
    assert calls == [(0.0,)]  # one pass: alpha 1 is the same frame-wise CLIP
    torch.testing.assert_close(losses["classification"], expected)
    assert abs(losses["distill_video"].item()) < 1e-6  # tuned and frozen windows are one tensor
