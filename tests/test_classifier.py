"""VideoClassifier end to end: real clips, encode once / score many, the label database, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ovmlv
from ovmlv.classifier import VideoClassifier
from ovmlv.decode import VideoDecodeError
from ovmlv.label_db import LabelDB
from ovmlv.labels import LabelError

from video_fixtures import moving_square_frames, write_clip, write_text_as_mp4

SAMPLES = ["arm_wrestling.mp4", "basketball_2997fps.mp4", "eye_makeup_mpeg4_mp3.avi", "two_people_1080p.mp4"]


@pytest.fixture(scope="module")
def classifier():
    return VideoClassifier.from_pretrained("tiny-clip", device="cpu", dtype=torch.float32, label_db_path=None)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "squares.mp4"
    return write_clip(path, moving_square_frames(50, 48, 64), fps=10)  # 5 s


@pytest.mark.parametrize("name", SAMPLES)
def test_real_sample_videos_classify_end_to_end(classifier, shared_videos, name):
    from ovmlv.decode import probe_video

    info = probe_video(shared_videos / name)
    result = classifier.classify(shared_videos / name, "people, ball, table, makeup")
    assert result.timeline.shape == (len(result.times), 4)
    assert result.times[0, 0] == 0.0
    assert abs(result.times[-1, 1] - info.duration_s) < 0.05  # windows cover the whole clip
    assert np.all(np.diff(result.times[:, 0]) > 0)
    assert np.all((result.timeline >= 0) & (result.timeline <= 1))
    assert np.allclose(result.video_scores, result.timeline.max(axis=0))


def test_scores_match_the_model_on_the_same_frames(classifier, clip_path):
    """The pipeline's numbers equal model.encode_video on the decoded windows (reference)."""
    from ovmlv.decode import iter_windows

    model = classifier.model
    state = classifier.encode_video(clip_path)
    windows = list(iter_windows(clip_path, frames_per_window=model.num_frames, short_side=model.image_size))
    pixels = classifier.preprocess(np.stack([w.frames for w in windows]))
    with torch.no_grad():
        reference = model.encode_video(pixels)
        labels = model.encode_labels(
            ["red", "green"], attributes=classifier.labels.embeddings(["red", "green"])[1]
        )
        expected = model.probabilities(reference, labels).numpy()
    result = classifier.score(state, ["red", "green"])
    assert np.allclose(result.timeline, expected, atol=1e-5)
    assert np.allclose(result.times, [(w.start_s, w.end_s) for w in windows])


def test_preprocess_is_centre_crop_and_normalise(classifier):
    size = classifier.model.image_size
    frames = np.random.default_rng(0).integers(0, 256, (1, 2, size, size + 10, 3), dtype=np.uint8)
    pixels = classifier.preprocess(frames)
    crop = torch.from_numpy(frames[0, 0, :, 5 : 5 + size]).permute(2, 0, 1).float() / 255
    expected = (crop - torch.tensor(classifier.model.mean).view(3, 1, 1)) / torch.tensor(
        classifier.model.std
    ).view(3, 1, 1)
    assert pixels.shape == (1, 2, 3, size, size)
    assert torch.allclose(pixels[0, 0], expected, atol=1e-6)


def test_score_never_decodes_or_encodes_video_again(classifier, clip_path, monkeypatch):
    import ovmlv.classifier as classifier_module

    state = classifier.encode_video(clip_path)
    calls = {"decode": 0, "vision": 0}

    def no_decode(*args, **kwargs):
        calls["decode"] += 1
        raise AssertionError("decoder called")

    def no_vision(*args, **kwargs):
        calls["vision"] += 1
        raise AssertionError("vision tower called")

    monkeypatch.setattr(classifier_module, "iter_windows", no_decode)
    monkeypatch.setattr(classifier_module, "probe_video", no_decode)
    monkeypatch.setattr(classifier.model, "encode_video_alphas", no_vision)
    monkeypatch.setattr(classifier.model.clip, "encode_image", no_vision)
    first = classifier.score(state, "dog, cat")
    second = classifier.score(state, "dog, cat, running fast, 🐶")
    assert calls == {"decode": 0, "vision": 0}
    assert np.allclose(second.timeline[:, :2], first.timeline)  # independent per-label scores


def test_second_request_for_a_label_does_not_call_the_llm(fresh_tiny, clip_path, tmp_path, monkeypatch):
    model = fresh_tiny("tiny-clip")
    calls = []
    original = model.describe_labels
    monkeypatch.setattr(
        model, "describe_labels", lambda labels: calls.append(list(labels)) or original(labels)
    )
    db_path = tmp_path / "labels.sqlite"
    clf = VideoClassifier(model, LabelDB(db_path))
    state = clf.encode_video(clip_path)
    clf.score(state, "dog, cat")
    clf.score(state, "cat, dog, bird")
    assert calls == [["dog", "cat"], ["bird"]]
    # a new process (a new classifier on the same file) reuses the stored embeddings
    again = VideoClassifier(model, LabelDB(db_path))
    again.score(state, "dog")
    assert len(calls) == 2
    # a changed model (another fingerprint) misses
    with torch.no_grad():
        model.label_encoder.prefix.add_(1.0)
    changed = VideoClassifier(model, LabelDB(db_path))
    assert changed.labels.fingerprint != clf.labels.fingerprint
    changed.score(state, "dog")
    assert calls[-1] == ["dog"] and len(calls) == 3


def test_trained_model_alpha_ends_are_exact(fresh_tiny, clip_path):
    """With non-zero gates the state keeps both ends; alpha 0 is zero-shot CLIP, alpha 1 the tuned model."""
    model = fresh_tiny("tiny-siglip")
    model.config.adapter_trained = True
    with torch.no_grad():
        for branch in model.temporal.branches.values():
            branch.gate.fill_(0.5)
        model.label_encoder.gate.fill_(0.8)
    clf = VideoClassifier(model)
    state = clf.encode_video(clip_path)
    assert state.alphas == (0.0, 1.0)
    labels = ["red square", "green"]
    from ovmlv.decode import iter_windows

    windows = list(iter_windows(clip_path, frames_per_window=model.num_frames, short_side=model.image_size))
    pixels = clf.preprocess(np.stack([w.frames for w in windows]))
    with torch.no_grad():
        for alpha in (0.0, 1.0):
            expected = model.probabilities(
                model.encode_video(pixels, alpha), model.soft_label_embeddings(labels, alpha)
            )
            assert np.allclose(clf.score(state, labels, alpha=alpha).timeline, expected.numpy(), atol=1e-5)
        zero_shot = model.probabilities(
            F.normalize(
                torch.stack([model.clip.encode_image(pixels[:, t]) for t in range(model.num_frames)], 1).mean(
                    1
                ),
                dim=-1,
            ),
            model.zero_shot_label_embeddings(labels),
        )
    assert np.allclose(clf.score(state, labels, alpha=0.0).timeline, zero_shot.numpy(), atol=1e-5)
    middle = clf.score(state, labels, alpha=0.5).timeline
    assert not np.allclose(middle, clf.score(state, labels, alpha=1.0).timeline)


def test_bad_inputs_give_one_line_errors(classifier, tmp_path, clip_path):
    fake = write_text_as_mp4(tmp_path / "notes.mp4")
    with pytest.raises(VideoDecodeError) as info:
        classifier.classify(fake, "dog")
    assert "notes.mp4" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(LabelError):
        classifier.classify(clip_path, " , ,")
    with pytest.raises(LabelError):
        classifier.classify(clip_path, [f"label {i}" for i in range(101)])
    with pytest.raises(ValueError, match="alpha"):
        classifier.score(classifier.encode_video(clip_path), "dog", alpha=1.5)
    assert classifier.classify(clip_path, "dog").labels == ["dog"]  # still works afterwards


def test_duration_cap_is_configurable(tmp_path):
    long_clip = write_clip(tmp_path / "long.mp4", moving_square_frames(40, 32, 32), fps=4)  # 10 s
    clf = VideoClassifier.from_pretrained("tiny-clip", device="cpu", label_db_path=None, max_duration_s=5)
    with pytest.raises(VideoDecodeError, match="limit"):
        clf.encode_video(long_clip)


def test_result_json_has_the_documented_schema(classifier, clip_path):
    import json

    result = classifier.classify(clip_path, "red, green square")
    payload = json.loads(result.to_json(threshold=0.0))
    assert [s["label"] for s in payload["scores"]] == sorted(
        result.labels, key=lambda x: -result.video_scores[result.labels.index(x)]
    )
    assert len(payload["timeline"]) == len(payload["times"]) == len(result.times)
    assert payload["segments"] and payload["model"] == "tiny-clip"
    assert ovmlv.Result.from_dict(payload).labels == result.labels


def test_single_alpha_encoding_is_one_pass_and_exact(fresh_tiny, clip_path, monkeypatch):
    """classify(alpha=a) encodes only at a (cheaper); other alphas then need a full encode."""
    model = fresh_tiny("tiny-clip")
    with torch.no_grad():
        for branch in model.temporal.branches.values():
            branch.gate.fill_(0.5)
    clf = VideoClassifier(model)
    seen = []
    original = model.encode_video_alphas
    monkeypatch.setattr(
        model, "encode_video_alphas", lambda frames, alphas: seen.append(alphas) or original(frames, alphas)
    )
    single = clf.classify(clip_path, "red, green", alpha=0.3)
    assert seen and all(alphas == (0.3,) for alphas in seen)
    both = clf.encode_video(clip_path)
    assert both.alphas == (0.0, 1.0) and not both.alpha_invariant
    state = clf.encode_video(clip_path, alphas=(0.3,))
    with pytest.raises(ValueError, match="alphas=None"):
        clf.score(state, "red", alpha=0.7)
    exact = clf.score(clf.encode_video(clip_path, alphas=(0.3, 0.7)), "red, green", alpha=0.3)
    assert np.allclose(single.timeline, exact.timeline, atol=1e-6)


def test_zero_gate_states_serve_every_alpha(classifier, clip_path):
    state = classifier.encode_video(clip_path)
    assert state.alpha_invariant and state.alphas == (1.0,)
    assert np.allclose(
        classifier.score(state, "red", alpha=0.2).timeline, classifier.score(state, "red").timeline
    )


def test_results_carry_the_models_threshold(fresh_tiny, clip_path):
    model = fresh_tiny("tiny-clip", dtype=torch.float32)
    model.config.threshold = 0.0  # every window of every label counts as present
    classifier = VideoClassifier(model, LabelDB(None))
    result = classifier.classify(clip_path, "red, green square")
    assert classifier.threshold == result.threshold == 0.0
    assert result.segments() == result.segments(0.0) and len(result.segments()) == 2  # one run per label
    assert result.to_dict()["threshold"] == 0.0
