"""training.metrics and training.losses against hand-computed values and definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.losses import asymmetric_loss, bce_loss, distillation_loss
from training.metrics import average_precision, expected_calibration_error, harmonic_mean, mean_ap

from training_fixtures import reference_average_precision, reference_ece


def test_average_precision_hand_computed():
    scores = torch.tensor([0.9, 0.8, 0.3, 0.1])[:, None]
    targets = torch.tensor([1, 0, 1, 0])[:, None]
    # Positives at ranks 1 and 3: precisions 1/1 and 2/3.
    assert average_precision(scores, targets).item() == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_average_precision_depends_on_ranking_only():
    """Logits (outside [0, 1]) give the same AP as their probabilities."""
    logits = torch.tensor([[4.0, -3.0], [2.5, 1.0], [-1.0, 7.0], [-6.0, 0.5]])
    targets = torch.tensor([[0, 1], [1, 0], [1, 1], [0, 0]])
    assert torch.allclose(
        average_precision(logits, targets), average_precision(torch.sigmoid(logits), targets)
    )
    # class 0: positives at ranks 2 and 3 -> (1/2 + 2/3) / 2; class 1: ranks 1 and 4 -> (1 + 2/4) / 2
    expected = torch.tensor([(1 / 2 + 2 / 3) / 2, (1 + 2 / 4) / 2], dtype=torch.float64)
    assert torch.allclose(average_precision(logits, targets), expected)


def test_mean_ap_ignores_a_class_without_positives():
    scores = torch.tensor([[0.9, 0.2, 0.7], [0.8, 0.9, 0.1], [0.3, 0.4, 0.5], [0.1, 0.6, 0.2]])
    targets = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    ap = average_precision(scores, targets)
    assert ap[0].item() == pytest.approx(5 / 6)
    assert ap[1].item() == pytest.approx(1.0)
    assert math.isnan(ap[2].item())  # no positive clip: no AP
    assert mean_ap(scores, targets) == pytest.approx((5 / 6 + 1.0) / 2)
    assert math.isnan(mean_ap(scores, torch.zeros_like(targets)))


def test_average_precision_matches_the_definition_on_random_data():
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(200, 12, generator=generator, dtype=torch.float64)
    targets = (torch.rand(200, 12, generator=generator) < 0.2).long()
    expected = torch.tensor([reference_average_precision(scores[:, c], targets[:, c]) for c in range(12)])
    assert torch.allclose(average_precision(scores, targets), expected.double(), atol=1e-6)


def test_harmonic_mean():
    assert harmonic_mean(0.5, 0.5) == pytest.approx(0.5)
    assert harmonic_mean(0.6, 0.3) == pytest.approx(2 * 0.6 * 0.3 / 0.9)
    assert harmonic_mean(0.8, 0.0) == 0.0
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert math.isnan(harmonic_mean(float("nan"), 0.4))


def test_expected_calibration_error_hand_computed():
    # Two bins: [0, 0.5] holds 0.1, 0.2 (mean 0.15, positives 1/2); (0.5, 1] holds 0.75, 0.9
    # (mean 0.825, positives 2/2). ECE = 2/4 * 0.35 + 2/4 * 0.175.
    probs = torch.tensor([[0.1, 0.2], [0.75, 0.9]])
    targets = torch.tensor([[0, 1], [1, 1]])
    assert expected_calibration_error(probs, targets, bins=2) == pytest.approx(0.5 * 0.35 + 0.5 * 0.175)
    perfectly_sure = torch.tensor([[1.0, 0.0]])
    assert expected_calibration_error(perfectly_sure, torch.tensor([[1, 0]]), bins=15) == pytest.approx(0.0)


def test_expected_calibration_error_matches_the_definition_on_random_data():
    generator = torch.Generator().manual_seed(1)
    probs = torch.rand(300, generator=generator)
    targets = (torch.rand(300, generator=generator) < probs**2).long()
    expected = reference_ece(probs.tolist(), targets.tolist(), bins=15)
    assert expected_calibration_error(probs[:, None], targets[:, None], bins=15) == pytest.approx(
        expected, abs=1e-5
    )


def test_expected_calibration_error_rejects_logits():
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error(torch.tensor([[2.0]]), torch.tensor([[1]]))


def test_bce_loss_matches_the_formula():
    logits, targets = torch.tensor([[2.0, -1.0], [0.5, 3.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.sigmoid(logits)
    expected = -(targets * p.log() + (1 - targets) * (1 - p).log()).mean()
    assert bce_loss(logits, targets).item() == pytest.approx(expected.item(), rel=1e-6)


def test_asymmetric_loss_reduces_to_bce_and_ignores_easy_negatives():
    generator = torch.Generator().manual_seed(2)
    logits = 3 * torch.randn(6, 5, generator=generator)
    targets = (torch.rand(6, 5, generator=generator) < 0.4).float()
    plain = asymmetric_loss(logits, targets, gamma_neg=0, gamma_pos=0, clip=0)
    assert plain.item() == pytest.approx(bce_loss(logits, targets).item(), rel=1e-5)
    easy_negative = torch.tensor([[-5.0]])  # p = 0.0067 < clip: costs nothing
    assert asymmetric_loss(easy_negative, torch.zeros(1, 1)).item() == 0.0
    # A confident positive with gamma_pos = 0 costs exactly -log p.
    positive = torch.tensor([[1.5]])
    assert asymmetric_loss(positive, torch.ones(1, 1)).item() == pytest.approx(-F.logsigmoid(positive).item())
    # A hard negative is down-weighted by p_m^4 with p_m = p - 0.05.
    p = torch.sigmoid(torch.tensor(2.0)).item()
    expected = -((p - 0.05) ** 4) * math.log(1 - (p - 0.05))
    assert asymmetric_loss(torch.tensor([[2.0]]), torch.zeros(1, 1)).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_distillation_loss():
    a = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(3)), dim=-1)
    assert distillation_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    x, y = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 2.0], [-3.0, 0.0]])
    assert distillation_loss(x, y).item() == pytest.approx((1.0 + 2.0) / 2)  # cos 0 and cos -1
    tuned = a.clone().requires_grad_(True)
    frozen = torch.randn(4, 8, requires_grad=True)
    distillation_loss(tuned, frozen).backward()
    assert tuned.grad is not None and frozen.grad is None


def test_best_f1_threshold_hand_computed():
    from training.metrics import best_f1_threshold, micro_f1

    # Three pairs positive (0.9, 0.6, 0.3), three negative (0.5, 0.2, 0.1).
    probs = torch.tensor([[0.9, 0.5], [0.6, 0.2], [0.3, 0.1]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    # F1 by threshold: (0.5, 0.6] -> 2 TP of 2 predicted: 2*2/(2+3) = 0.8; (0.3, 0.5] -> 2 TP of
    # 3 predicted: 4/6; (0.2, 0.3] -> 3 TP of 4 predicted: 6/7 = 0.857, the best; it holds on
    # (0.2, 0.3], so the grid point nearest 0.5 is 0.30 (a pair at exactly p = t is in).
    threshold, f1 = best_f1_threshold(probs, targets)
    assert threshold == pytest.approx(0.30) and f1 == pytest.approx(6 / 7)
    assert micro_f1(probs, targets, 0.3) == pytest.approx(6 / 7)
    assert micro_f1(probs, targets, 0.55) == pytest.approx(0.8) and micro_f1(probs, targets, 0.95) == 0.0


def test_best_f1_threshold_matches_a_brute_force_search():
    from training.metrics import best_f1_threshold

    generator = torch.Generator().manual_seed(3)
    targets = (torch.rand(40, 6, generator=generator) < 0.3).float()
    probs = (0.35 * targets + 0.65 * torch.rand(40, 6, generator=generator)).clamp(0, 1)
    threshold, f1 = best_f1_threshold(probs, targets)
    best = None
    for step in range(1, 100):
        t = step / 100
        predicted = probs.numpy().astype("float32") >= np.float32(t)
        tp = (predicted & (targets.numpy() > 0.5)).sum()
        score = 2 * tp / (predicted.sum() + targets.sum().item())
        if (
            best is None
            or score > best[1] + 1e-12
            or (abs(score - best[1]) <= 1e-12 and abs(t - 0.5) < abs(best[0] - 0.5))
        ):
            best = (t, score)
    assert threshold == pytest.approx(best[0]) and f1 == pytest.approx(best[1])
    assert threshold != 0.5  # the data were drawn so that 0.5 is not the best


def test_best_f1_threshold_rejects_targets_without_a_positive():
    from training.metrics import best_f1_threshold

    with pytest.raises(ValueError, match="no positive"):
        best_f1_threshold(torch.rand(4, 2), torch.zeros(4, 2))
