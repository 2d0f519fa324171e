"""The Gradio app (app.py) served on 127.0.0.1 with the tiny-clip model, driven by gradio_client.

Every answer is compared with the classifier called directly (a second, independent
instance), so a wrong threshold, label order, window or state mix-up shows as a failure.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from video_fixtures import (
    moving_square_frames,
    truncate_file,
    write_audio_only,
    write_clip,
    write_empty,
    write_long_clip,
    write_text_as_mp4,
)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # app.py lives at the repository root, outside the package
    sys.path.insert(0, str(ROOT))

gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("gradio")

MAX_DURATION_S = 30.0  # the served classifier refuses longer videos
RESULT_KEYS = {
    "video",
    "model",
    "alpha",
    "threshold",
    "scores",
    "labels",
    "attributes",
    "times",
    "timeline",
    "segments",
}


@dataclass
class Served:
    """A running app and what the tests need to check it."""

    url: str
    classifier: object  # the VideoClassifier the app uses (encode_video is wrapped by a counter)
    encodes: list[str]  # one entry per encode_video call
    clip: Path  # a good 6 s clip: 3 windows of 2 s
    folder: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_app(folder: Path, model: str = "tiny-clip") -> Iterator[Served]:
    """Launch app.build_demo with `model` on a free local port; close it afterwards."""
    import app
    import ovmlv

    classifier = ovmlv.VideoClassifier.from_pretrained(
        model, device="cpu", label_db_path=None, max_duration_s=MAX_DURATION_S
    )
    encodes: list[str] = []
    encode_video = classifier.encode_video

    def counting_encode(path, *args, **kwargs):
        encodes.append(str(path))
        return encode_video(path, *args, **kwargs)

    classifier.encode_video = counting_encode
    clip = write_clip(folder / "clip.mp4", moving_square_frames(60, 64, 96), fps=10)
    demo = app.build_demo(
        classifier,
        examples_dir=folder / "examples",
        examples_cache=folder / "examples-cache",
        queue_size=16,
        concurrency=2,
    )
    _, url, _ = demo.launch(
        prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True, share=False
    )
    try:
        yield Served(url, classifier, encodes, clip, folder)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    with serve_app(tmp_path_factory.mktemp("app")) as running:
        yield running


@pytest.fixture(scope="module")
def reference():
    """An independent classifier: what the app must reproduce."""
    import ovmlv

    return ovmlv.VideoClassifier.from_pretrained("tiny-clip", device="cpu", label_db_path=None)


def client(served: Served):
    return gradio_client.Client(served.url, verbose=False)


def classify(client_, clip: Path, labels: str, threshold: float = 0.5, api_name: str = "/classify") -> dict:
    return client_.predict(
        video=gradio_client.handle_file(str(clip)),
        labels=labels,
        threshold=threshold,
        alpha=1.0,
        api_name=api_name,
    )


def assert_matches(answer: dict, expected, threshold: float) -> None:
    """The app's JSON equals the directly computed Result (to the JSON's rounding)."""
    reference_json = expected.to_dict(threshold)
    assert set(answer) == RESULT_KEYS
    assert answer["labels"] == reference_json["labels"]
    assert answer["times"] == reference_json["times"]
    assert answer["attributes"] == reference_json["attributes"]
    np.testing.assert_allclose(answer["timeline"], reference_json["timeline"], atol=2e-4)
    assert [s["label"] for s in answer["scores"]] == [s["label"] for s in reference_json["scores"]]
    assert [(s["label"], s["start"], s["end"]) for s in answer["segments"]] == [
        (s["label"], s["start"], s["end"]) for s in reference_json["segments"]
    ]
    assert answer["threshold"] == threshold and answer["model"] == "tiny-clip"


def test_classify_endpoint_returns_the_documented_json(served, reference):
    labels, threshold = "red square, green ball, moving right", 0.2
    answer = classify(client(served), served.clip, labels, threshold)
    expected = reference.classify(served.clip, labels)
    assert len(answer["times"]) == len(answer["timeline"]) == 3  # one row per 2 s window of the 6 s clip
    assert all(len(row) == 3 for row in answer["timeline"])
    assert answer["video"] == "clip.mp4"
    assert_matches(answer, expected, threshold)


def test_rescore_reuses_the_sessions_encoding(served, reference):
    session = client(served)
    classify(session, served.clip, "dog, cat")
    before = len(served.encodes)
    answer = classify(session, served.clip, "cat, bird, running", 0.1, api_name="/rescore")
    assert len(served.encodes) == before  # labels changed: scored again, not encoded again
    assert_matches(answer, reference.classify(served.clip, "cat, bird, running"), 0.1)


def test_discover_ranks_a_vocabulary_without_encoding_again(served, reference):
    from ovmlv.vocabularies import load_vocabulary

    session = client(served)
    classify(session, served.clip, "dog")
    before = len(served.encodes)
    table, status = session.predict(
        video=gradio_client.handle_file(str(served.clip)), vocabulary="coco", alpha=1.0, api_name="/discover"
    )
    assert len(served.encodes) == before and "not re-encoded" in status
    coco = load_vocabulary("coco")
    expected = reference.score(reference.encode_video(served.clip), coco)
    assert [row[0] for row in table["data"]] == [label for label, _ in expected.top(10)]


def expect_error(served: Served, video: Path, labels: str, *words: str) -> str:
    with pytest.raises(gradio_client.exceptions.AppError) as caught:
        classify(client(served), video, labels)
    message = str(caught.value)
    assert "\n" not in message.strip() and "Traceback" not in message
    for word in words:
        assert word in message
    return message


def test_a_bad_file_is_a_one_line_error_and_the_next_request_works(served, reference):
    bad = write_text_as_mp4(served.folder / "notes.mp4")
    expect_error(served, bad, "dog", "notes.mp4", "not a video file")
    answer = classify(client(served), served.clip, "dog, cat", 0.3)
    assert_matches(answer, reference.classify(served.clip, "dog, cat"), 0.3)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda folder, clip: write_empty(folder / "empty.mp4"), ["empty"]),
        (lambda folder, clip: write_audio_only(folder / "tone.mp4"), ["audio only"]),
        (lambda folder, clip: truncate_file(clip, folder / "cut.mp4", 0.3), ["cut.mp4"]),
        (lambda folder, clip: write_long_clip(folder / "long.mp4", 40, 64, 64), ["0:40", "limit is 0:30"]),
    ],
    ids=["empty", "audio-only", "truncated", "too-long"],
)
def test_bad_videos_give_one_clear_line(served, make, words):
    expect_error(served, make(served.folder, served.clip), "dog", *words)


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        (" , \n ", ["no labels"]),
        (", ".join(f"label {i}" for i in range(101)), ["too many labels", "100"]),
        ("x" * 201, ["201 characters"]),
    ],
    ids=["empty", "too-many", "too-long"],
)
def test_bad_labels_are_refused_before_decoding(served, labels, words):
    before = len(served.encodes)
    expect_error(served, served.clip, labels, *words)
    assert len(served.encodes) == before


def test_concurrent_requests_are_independent_and_identical(served, reference):
    jobs = ["dog, cat", "ball, square, moving"] * 4

    def run(labels: str) -> dict:
        return classify(client(served), served.clip, labels, 0.2)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        answers = list(pool.map(run, jobs))
    for labels in set(jobs):
        same = [answer for answer, asked in zip(answers, jobs) if asked == labels]
        assert all(answer == same[0] for answer in same)
        assert_matches(same[0], reference.classify(served.clip, labels), 0.2)


def test_arguments_and_environment(monkeypatch):
    import app

    for name in ("SPACE_ID", "OVMLV_MODEL", "OVMLV_HOST", "OVMLV_PORT"):
        monkeypatch.delenv(name, raising=False)
    args = app._parse_args([])
    assert (args.model, args.host, args.port) == ("siglip2-b16", "127.0.0.1", 7860)
    monkeypatch.setenv("SPACE_ID", "someone/ovmlv")
    assert app._parse_args([]).host == "0.0.0.0"
    monkeypatch.setenv("OVMLV_MODEL", "tiny-clip")
    monkeypatch.setenv("OVMLV_PORT", "7999")
    args = app._parse_args(["--host", "localhost"])
    assert (args.model, args.host, args.port) == ("tiny-clip", "localhost", 7999)


def test_missing_weights_fall_back_to_the_toy_model_with_a_banner(monkeypatch):
    import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    classifier, banner = app.load_classifier("siglip2-b16", device="cpu")
    assert app.FALLBACK_MODEL == "toy" and classifier.name == "toy"
    assert classifier.model.config.adapter_trained  # the trained toy model, not a random one
    assert "siglip2-b16" in banner and "toy" in banner and "internet" in banner


def test_the_models_threshold_is_the_apps_default(tmp_path):
    """A checkpoint's own threshold (ModelConfig.threshold) starts the slider and fills in an
    API call or a cached example that gives none."""
    import app
    import ovmlv
    from app_handlers import AppHandlers

    classifier = ovmlv.VideoClassifier.from_pretrained("tiny-clip", device="cpu", label_db_path=None)
    classifier.model.config.threshold = 0.27
    demo = app.build_demo(classifier, examples_dir=tmp_path / "examples", examples_cache=tmp_path / "cache")
    sliders = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "threshold"]
    assert len(sliders) == 1 and sliders[0].value == 0.27
    clip = write_clip(tmp_path / "clip.mp4", moving_square_frames(30, 64, 96), fps=10)
    handlers = AppHandlers(classifier)
    answer, session = handlers.classify(str(clip), "red square, green", progress=lambda *a, **k: None)
    assert answer["threshold"] == 0.27
    assert answer["segments"] == session.result.to_dict(0.27)["segments"]
    shown = handlers.run_example(str(clip), "red square, green")
    assert shown[0]["threshold"] == 0.27 and shown[-1].endswith("segment(s) at threshold 0.27.")


def test_cached_examples_are_keyed_by_the_whole_model():
    """Example outputs are cached per model: a new threshold or new temporal weights (which the
    label-cache key ignores) must not show another model's cached outputs."""
    import torch

    import app
    import ovmlv

    def load():
        return ovmlv.VideoClassifier.from_pretrained("tiny-clip", device="cpu", label_db_path=None)

    first, second = load(), load()
    key = app.examples_cache_key(first)
    assert app.examples_cache_key(second) == key  # the same model, loaded twice
    second.model.config.threshold = 0.3
    assert app.examples_cache_key(second) != key
    third = load()
    with torch.no_grad():
        next(iter(third.model.temporal.branches.values())).gate.fill_(0.5)
    assert third.labels.fingerprint == first.labels.fingerprint  # the label side is the same...
    assert app.examples_cache_key(third) != key  # ...the outputs are not
