"""Tests for ovmlv.result: segments, scores, JSON/CSV output and validation."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from ovmlv.result import Result, Segment

LABELS = ["run", "jump", "ball"]
# Six touching 2 s windows (stride == window).
TIMES = [[0.0, 2.0], [2.0, 4.0], [4.0, 6.0], [6.0, 8.0], [8.0, 10.0], [10.0, 12.0]]
TIMELINE = [
    # run  jump  ball
    [0.90, 0.10, 0.20],
    [0.80, 0.50, 0.60],  # jump exactly at the 0.5 threshold: a single-window segment
    [0.20, 0.40, 0.10],
    [0.60, 0.30, 0.70],
    [0.70, 0.20, 0.80],
    [0.10, 0.90, 0.95],  # segments that end with the last window
]


@pytest.fixture
def result() -> Result:
    return Result(
        labels=list(LABELS),
        times=np.array(TIMES),
        timeline=np.array(TIMELINE),
        attributes={"ball": ["round", "bouncing"], "run": ["legs moving fast"]},
        video="clips/game.mp4",
        model="tiny-clip",
        alpha=0.75,
    )


def _as_tuples(segments: list[Segment]) -> list[tuple[str, float, float, float]]:
    return [(s.label, s.start, s.end, round(s.peak, 6)) for s in segments]


def test_arrays_are_stored_with_the_documented_dtypes(result: Result) -> None:
    assert result.times.dtype == np.float64 and result.times.shape == (6, 2)
    assert result.timeline.dtype == np.float32 and result.timeline.shape == (6, 3)


def test_segments_at_half(result: Result) -> None:
    assert _as_tuples(result.segments(0.5)) == [
        ("run", 0.0, 4.0, 0.9),
        ("ball", 2.0, 4.0, 0.6),
        ("jump", 2.0, 4.0, 0.5),
        ("ball", 6.0, 12.0, 0.95),
        ("run", 6.0, 10.0, 0.7),
        ("jump", 10.0, 12.0, 0.9),
    ]


def test_segments_threshold_edges(result: Result) -> None:
    # 0.7 is stored as float32(0.7); it still reaches a threshold of 0.7.
    assert _as_tuples(result.segments(0.7)) == [
        ("run", 0.0, 4.0, 0.9),
        ("ball", 6.0, 12.0, 0.95),
        ("run", 8.0, 10.0, 0.7),
        ("jump", 10.0, 12.0, 0.9),
    ]
    assert _as_tuples(result.segments(0.95)) == [("ball", 10.0, 12.0, 0.95)]
    assert result.segments(0.951) == []
    assert len(result.segments(0.0)) == 3  # every window of every label: one run per label
    with pytest.raises(ValueError, match="threshold"):
        result.segments(1.5)


def test_segments_with_overlapping_windows() -> None:
    # 2 s windows every 1 s: windows 0 and 1 overlap and merge; window 2 breaks the run.
    overlapping = Result(["x"], [[0, 2], [1, 3], [2, 4], [3, 5]], [[0.6], [0.7], [0.2], [0.8]])
    assert _as_tuples(overlapping.segments(0.5)) == [("x", 0.0, 3.0, 0.7), ("x", 3.0, 5.0, 0.8)]


def test_segments_merge_consecutive_windows_across_a_time_gap() -> None:
    # Stride larger than the window: consecutive indices still form one segment.
    gapped = Result(["x"], [[0, 1], [2, 3], [4, 5]], [[0.9], [0.6], [0.1]])
    assert _as_tuples(gapped.segments(0.5)) == [("x", 0.0, 3.0, 0.9)]


def test_video_scores(result: Result) -> None:
    np.testing.assert_allclose(result.video_scores, [0.9, 0.9, 0.95], rtol=0, atol=1e-7)
    np.testing.assert_allclose(result.video_scores_mean, [3.3 / 6, 2.4 / 6, 3.35 / 6], rtol=0, atol=1e-6)
    assert result.video_scores.shape == result.video_scores_mean.shape == (3,)


def test_top(result: Result) -> None:
    top = result.top(2)
    assert [label for label, _ in top] == ["ball", "run"]  # run and jump tie: input order wins
    assert top[0][1] == pytest.approx(0.95) and top[1][1] == pytest.approx(0.9)
    assert [label for label, _ in result.top(10)] == ["ball", "run", "jump"]
    assert result.top(0) == []


def test_ties_keep_input_order() -> None:
    labels = [f"label {index}" for index in range(40)]
    scores = np.full((1, 40), 0.5)
    scores[0, 20] = 0.9
    tied = Result(labels, [[0, 1]], scores)
    expected = [labels[20]] + labels[:20] + labels[21:]
    assert [label for label, _ in tied.top(40)] == expected
    assert [entry["label"] for entry in tied.to_dict()["scores"]] == expected


def test_to_dict_schema_and_values(result: Result) -> None:
    data = result.to_dict(threshold=0.7)
    assert list(data) == [
        "video", "model", "alpha", "threshold", "scores", "labels",
        "attributes", "times", "timeline", "segments",
    ]  # fmt: skip
    assert data["video"] == "clips/game.mp4" and data["model"] == "tiny-clip"
    assert data["alpha"] == 0.75 and data["threshold"] == 0.7
    assert data["scores"] == [
        {"label": "ball", "score": 0.95, "mean_score": 0.5583},
        {"label": "run", "score": 0.9, "mean_score": 0.55},
        {"label": "jump", "score": 0.9, "mean_score": 0.4},
    ]
    assert data["labels"] == LABELS
    assert data["attributes"] == {"run": ["legs moving fast"], "ball": ["round", "bouncing"]}
    assert list(data["attributes"]) == ["run", "ball"]  # label order
    assert data["times"] == TIMES
    assert data["timeline"] == TIMELINE
    assert data["segments"] == [
        {"label": "run", "start": 0.0, "end": 4.0, "peak": 0.9},
        {"label": "ball", "start": 6.0, "end": 12.0, "peak": 0.95},
        {"label": "run", "start": 8.0, "end": 10.0, "peak": 0.7},
        {"label": "jump", "start": 10.0, "end": 12.0, "peak": 0.9},
    ]


def test_to_dict_rounding() -> None:
    rounded = Result(["a"], [[0.12345, 1.98765]], [[0.123456]], alpha=0.333333).to_dict()
    assert rounded["times"] == [[0.123, 1.988]]
    assert rounded["timeline"] == [[0.1235]]
    assert rounded["scores"] == [{"label": "a", "score": 0.1235, "mean_score": 0.1235}]
    assert rounded["alpha"] == 0.3333


def test_to_json_keeps_non_ascii() -> None:
    labels = ["跳舞", "танцы", "🐶 dog", 'say "hi"']
    text = Result(labels, [[0, 2]], [[0.1, 0.2, 0.3, 0.4]], video="vidéo.mp4").to_json(indent=2)
    assert "跳舞" in text and "танцы" in text and "🐶" in text  # not \u-escaped
    assert "\\u" not in text
    parsed = json.loads(text.encode("utf-8").decode("utf-8"))
    assert parsed["labels"] == labels and parsed["video"] == "vidéo.mp4"
    assert parsed["scores"][0] == {"label": 'say "hi"', "score": 0.4, "mean_score": 0.4}


def test_to_json_with_undecodable_file_name() -> None:
    # A file name with a non-UTF-8 byte arrives in Python as a lone surrogate.
    text = Result(["a"], [[0, 1]], [[0.5]], video="caf\udce9.mp4").to_json()
    assert json.loads(text.encode("utf-8"))["video"] == "caf\ufffd.mp4"


def test_from_dict_round_trip(result: Result) -> None:
    restored = Result.from_dict(json.loads(result.to_json()))
    assert restored.labels == result.labels
    np.testing.assert_array_equal(restored.times, result.times)
    np.testing.assert_array_equal(restored.timeline, result.timeline)
    assert restored.attributes == result.attributes
    assert (restored.video, restored.model, restored.alpha) == ("clips/game.mp4", "tiny-clip", 0.75)
    assert restored.to_dict(0.6) == result.to_dict(0.6)


def test_from_dict_minimal_and_missing_keys() -> None:
    minimal = Result.from_dict({"labels": ["a"], "times": [[0, 1]], "timeline": [[0.25]]})
    assert (minimal.video, minimal.model, minimal.alpha, minimal.attributes) == (None, None, 1.0, {})
    with pytest.raises(ValueError, match="missing times, timeline"):
        Result.from_dict({"labels": ["a"]})


def test_to_csv_parses_back_to_the_timeline(result: Result) -> None:
    rows = list(csv.reader(io.StringIO(result.to_csv())))
    assert rows[0] == ["start", "end", *LABELS]
    assert len(rows) == 1 + len(TIMES)
    values = np.array(rows[1:], dtype=np.float64)
    np.testing.assert_array_equal(values[:, :2], TIMES)
    np.testing.assert_allclose(values[:, 2:], TIMELINE, rtol=0, atol=1e-9)


def test_to_csv_quotes_awkward_labels() -> None:
    labels = ["a, b", 'say "hi"', "two\nlines", "跳舞"]
    text = Result(labels, [[0, 2], [2, 4]], [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]).to_csv()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["start", "end", *labels],
        ["0.000", "2.000", "0.1000", "0.2000", "0.3000", "0.4000"],
        ["2.000", "4.000", "0.5000", "0.6000", "0.7000", "0.8000"],
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"times": [[0, 1, 2]]}, r"times must have shape \[W, 2\]"),
        ({"times": np.zeros((0, 2)), "timeline": np.zeros((0, 2))}, "at least one window"),
        ({"timeline": [[0.1, 0.2, 0.3]]}, r"timeline must have shape \[W, L\] = \[1, 2\]"),
        ({"timeline": [[0.1], [0.2]]}, r"timeline must have shape"),
        ({"timeline": [[0.1, 1.01]]}, r"probabilities in \[0, 1\]"),
        ({"timeline": [[-0.01, 0.5]]}, r"probabilities in \[0, 1\]"),
        ({"timeline": [[np.nan, 0.5]]}, "NaN"),
        ({"times": [[0, np.inf]]}, "NaN or infinite"),
        ({"times": [[2, 1]]}, "end at or after its start"),
        ({"labels": ["a", "a"]}, "distinct"),
        ({"labels": "ab"}, "list of str"),
        ({"labels": ["a", 2]}, "label must be a str"),
        ({"attributes": {"zebra": ["striped"]}}, "not one of the labels"),
        ({"attributes": {"a": "striped"}}, "list of phrases"),
        ({"alpha": float("nan")}, "alpha"),
    ],
)
def test_validation_errors(kwargs: dict, message: str) -> None:
    arguments = {"labels": ["a", "b"], "times": [[0.0, 1.0]], "timeline": [[0.1, 0.2]]}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Result(**arguments)


def test_validation_unsorted_windows() -> None:
    with pytest.raises(ValueError, match="sorted by start"):
        Result(["a"], [[2, 3], [0, 1]], [[0.1], [0.2]])


def test_result_copies_its_inputs() -> None:
    timeline = np.array([[0.1, 0.2]], dtype=np.float32)
    copy = Result(["a", "b"], [[0, 1]], timeline)
    timeline[0, 0] = 0.9
    assert copy.timeline[0, 0] == np.float32(0.1)


def test_the_default_threshold_is_the_results_own(result: Result) -> None:
    """Without an argument, segments / to_dict / to_json use Result.threshold (the model's)."""
    assert result.threshold == 0.5 and result.segments() == result.segments(0.5)
    own = Result(labels=list(LABELS), times=np.array(TIMES), timeline=np.array(TIMELINE), threshold=0.7)
    assert own.segments() == result.segments(0.7) != result.segments(0.5)
    assert own.to_dict()["threshold"] == 0.7
    assert own.to_dict()["segments"] == result.to_dict(0.7)["segments"]
    assert own.to_dict(0.5)["segments"] == result.to_dict()["segments"]  # an argument still wins
    restored = Result.from_dict(json.loads(own.to_json()))
    assert restored.threshold == 0.7 and restored.segments() == own.segments()
    with pytest.raises(ValueError, match="threshold"):
        Result(labels=["a"], times=[[0, 1]], timeline=[[0.2]], threshold=1.2)
