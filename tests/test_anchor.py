"""`labels.anchor`: what e0, the zero-shot end of the label gate, is.

"template" is the plain zero-shot template embedding (DESIGN §2.2); "attributes" is the
zero-shot-attribute embedding (DESIGN §2.3), used by the toy preset, whose CLIP knows colours
and shapes but never saw a noun. Every check compares against embeddings built by hand from
the model's own text tower.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ovmlv.classifier import VideoClassifier
from ovmlv.label_db import LabelDB

from conftest import random_frames

PHRASES = {"lime": ["green circle", "green colour"], "moving left": ["an object moving to the left"]}
LABELS = list(PHRASES)


def _attribute_model(fresh_tiny, gate: float):
    model = fresh_tiny("tiny-clip", overrides={"labels": {"anchor": "attributes"}, "adapter_trained": True})
    with torch.no_grad():
        model.label_encoder.gate.fill_(gate)
    return model


def _by_hand(model, labels, phrases):
    """normalise(mean of normalised "a video of X" and "a video of X, which has P" embeddings)."""
    rows = []
    for label in labels:
        texts = [f"a video of {label}"] + [f"a video of {label}, which has {p}" for p in phrases[label]]
        rows.append(F.normalize(model.text_tower.encode(texts).float(), dim=-1).sum(dim=0))
    return F.normalize(torch.stack(rows), dim=-1)


def test_attribute_anchor_is_the_zero_shot_attribute_embedding(fresh_tiny):
    model = _attribute_model(fresh_tiny, gate=0.0)
    with torch.no_grad():
        anchor = model.encode_labels(LABELS, attributes=PHRASES)
        template = model.zero_shot_label_embeddings(LABELS)
        expected = _by_hand(model, LABELS, PHRASES)
    torch.testing.assert_close(anchor, expected, atol=1e-5, rtol=0)
    assert (anchor - template).abs().max() > 1e-2  # a different e0 from the template's


def test_the_gate_moves_from_the_attribute_anchor_toward_e_soft(fresh_tiny):
    model = _attribute_model(fresh_tiny, gate=0.7)
    with torch.no_grad():
        e0 = _by_hand(model, LABELS, PHRASES)
        e_soft = model.soft_embedding(LABELS)
        expected = F.normalize(e0 + math.tanh(0.7) * (e_soft - e0), dim=-1)
        torch.testing.assert_close(
            model.encode_labels(LABELS, attributes=PHRASES), expected, atol=1e-5, rtol=0
        )
        # alpha = 0 is the zero-shot end: exactly the attribute embedding
        torch.testing.assert_close(
            model.encode_labels(LABELS, alpha=0.0, attributes=PHRASES), e0, atol=1e-5, rtol=0
        )


def test_classifier_caches_the_attribute_anchor_and_the_written_phrases(fresh_tiny, monkeypatch):
    model = _attribute_model(fresh_tiny, gate=0.4)
    monkeypatch.setattr(model, "describe_labels", lambda labels: {label: PHRASES[label] for label in labels})
    classifier = VideoClassifier(model, LabelDB(None))
    for alpha in (0.0, 0.5, 1.0):
        embeddings, phrases = classifier.labels.embeddings(LABELS, alpha)
        with torch.no_grad():
            e0 = _by_hand(model, LABELS, PHRASES)
            expected = F.normalize(e0 + alpha * math.tanh(0.4) * (model.soft_embedding(LABELS) - e0), dim=-1)
        torch.testing.assert_close(embeddings.float(), expected, atol=1e-5, rtol=0)
        assert phrases == PHRASES
    assert classifier.labels.llm_calls == 1  # the phrases were written once, then cached


def test_training_distils_toward_the_anchor_and_writes_phrases_once(fresh_tiny, monkeypatch):
    from training.config import LossSection
    from training.objective import TrainStep

    model = _attribute_model(fresh_tiny, gate=0.0)
    calls = []

    def describe(labels):
        calls.append(list(labels))
        return {label: PHRASES[label] for label in labels}

    monkeypatch.setattr(model, "describe_labels", describe)
    step = TrainStep(model, LossSection(distill_weight=1.0))
    pixels = random_frames(2, model.num_frames, model.image_size)
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    losses = step(pixels, LABELS, targets)
    assert abs(losses["distill_label"].item()) < 1e-6  # at gate 0 the tuned labels are the anchor
    with torch.no_grad():
        window = model.encode_video(pixels, 0.0)
        expected = F.binary_cross_entropy_with_logits(
            model.logits(window, _by_hand(model, LABELS, PHRASES)), targets
        )
    torch.testing.assert_close(losses["classification"], expected, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        model.label_encoder.gate.fill_(0.5)
    losses = step(pixels, LABELS, targets)
    assert losses["distill_label"].item() > 1e-4  # now measured against the attribute anchor
    assert calls == [LABELS]  # generated on the first step only


def test_unknown_anchor_is_a_clear_error(fresh_tiny):
    with pytest.raises(ValueError, match="labels.anchor must be one of"):
        fresh_tiny("tiny-clip", overrides={"labels": {"anchor": "wordnet"}})


def test_attribute_anchor_without_phrases_is_a_clear_error(fresh_tiny):
    with pytest.raises(ValueError, match="needs labels.num_attributes > 0"):
        fresh_tiny("tiny-clip", overrides={"labels": {"anchor": "attributes", "num_attributes": 0}})
