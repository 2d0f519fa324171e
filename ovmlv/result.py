"""The result of classifying one video: per-label probabilities over time.

A :class:`Result` holds, for W windows and L labels, the window times ``times`` [W, 2] (start
and end in seconds) and the probabilities ``timeline`` [W, L]. Every label is scored
independently, so a row does not sum to one. Video-level scores, segments, JSON and CSV are
derived from these two arrays.

JSON schema (:meth:`Result.to_dict` / :meth:`Result.to_json`). ``scores`` follows the
Hugging Face video-classification pipeline convention (a list of ``{label, score}``, best
first); the rest adds the timeline::

    {
      "video": str | null,          # path or name of the video
      "model": str | null,          # preset or checkpoint name
      "alpha": float,               # interpolation between zero-shot (0) and tuned (1)
      "threshold": float,           # the threshold used for "segments" (default: the model's own)
      "scores": [                   # one entry per label, sorted by score, highest first
        {"label": str, "score": float, "mean_score": float}, ...
      ],                            # score = max over windows, mean_score = mean over windows
      "labels": [str, ...],         # the labels in input order (the timeline's column order)
      "attributes": {label: [str, ...]},   # LLM-written phrases, only labels that have some
      "times": [[start, end], ...], # one row per window, seconds
      "timeline": [[p, ...], ...],  # one row per window, one p per label in "labels" order
      "segments": [                 # runs of consecutive windows with p >= threshold
        {"label": str, "start": float, "end": float, "peak": float}, ...
      ]                             # sorted by start, then label
    }

Probabilities and scores are rounded to 4 decimals, times to 3. :meth:`Result.from_dict`
reads this back (``threshold`` becomes the Result's default threshold); ``scores`` and
``segments`` are derived values and are ignored there.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Result", "Segment"]

_SCORE_DECIMALS = 4
_TIME_DECIMALS = 3


@dataclass(frozen=True)
class Segment:
    """A run of consecutive windows where one label's probability reaches the threshold."""

    label: str
    start: float  # start of the first window, seconds
    end: float  # end of the last window, seconds
    peak: float  # highest probability inside the run


def _check_text(value: Any, what: str) -> str:
    """A str that can be written as UTF-8, or a ValueError naming ``what``."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {value!r} is not valid Unicode text") from None
    return value


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return threshold


def _json_text(value: str | None) -> str | None:
    """Text safe to encode as UTF-8 (a file name may carry undecodable bytes as surrogates)."""
    if value is None:
        return None
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass
class Result:
    """Per-label probabilities over time for one video."""

    labels: list[str]  # L labels, the column order of ``timeline``
    times: np.ndarray  # float64 [W, 2] window start and end, seconds
    timeline: np.ndarray  # float32 [W, L] probabilities in [0, 1]
    attributes: dict[str, list[str]] = field(default_factory=dict)  # label -> LLM-written phrases
    video: str | None = None  # path or name of the video
    model: str | None = None  # preset or checkpoint name
    alpha: float = 1.0  # interpolation between zero-shot (0) and tuned (1)
    threshold: float = 0.5  # default threshold of segments / to_dict: the model's (ModelConfig.threshold)

    def __post_init__(self) -> None:
        if isinstance(self.labels, str):
            raise ValueError(f"labels must be a list of str, got the str {self.labels!r}")
        self.labels = [_check_text(label, "label") for label in self.labels]
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be distinct, got {self.labels}")
        self.times = np.array(self.times, dtype=np.float64, copy=True)
        self.timeline = np.array(self.timeline, dtype=np.float32, copy=True)
        self._check_arrays()
        self.attributes = self._checked_attributes(self.attributes)
        self.alpha = float(self.alpha)
        if not math.isfinite(self.alpha):
            raise ValueError(f"alpha must be a finite number, got {self.alpha}")
        self.threshold = _check_threshold(self.threshold)
        if self.video is not None:
            self.video = str(self.video)
        if self.model is not None:
            self.model = str(self.model)

    def _check_arrays(self) -> None:
        num_labels = len(self.labels)
        if self.times.ndim != 2 or self.times.shape[1] != 2:
            raise ValueError(f"times must have shape [W, 2], got {list(self.times.shape)}")
        num_windows = self.times.shape[0]
        if num_windows == 0:
            raise ValueError("a result needs at least one window")
        if self.timeline.shape != (num_windows, num_labels):
            raise ValueError(
                f"timeline must have shape [W, L] = [{num_windows}, {num_labels}] "
                f"(windows, labels), got {list(self.timeline.shape)}"
            )
        if not np.isfinite(self.times).all():
            raise ValueError("times contain NaN or infinite values")
        if (self.times[:, 1] < self.times[:, 0]).any():
            raise ValueError("every window must end at or after its start")
        if (np.diff(self.times[:, 0]) < 0).any():
            raise ValueError("windows must be sorted by start time")
        if np.isnan(self.timeline).any():
            raise ValueError("timeline contains NaN")
        if self.timeline.size and (self.timeline.min() < 0.0 or self.timeline.max() > 1.0):
            raise ValueError(
                "timeline values must be probabilities in [0, 1], got values in "
                f"[{self.timeline.min():.4g}, {self.timeline.max():.4g}]"
            )

    def _checked_attributes(self, attributes: dict[str, list[str]]) -> dict[str, list[str]]:
        known = set(self.labels)
        checked: dict[str, list[str]] = {}
        for label, phrases in dict(attributes).items():
            if label not in known:
                raise ValueError(f"attributes given for {label!r}, which is not one of the labels")
            if isinstance(phrases, str):
                raise ValueError(f"attributes of {label!r} must be a list of phrases, not a str")
            checked[label] = [_check_text(phrase, f"attribute of {label!r}") for phrase in phrases]
        return checked

    @property
    def video_scores(self) -> np.ndarray:
        """float32 [L]: each label's video-level score, the max over windows."""
        return self.timeline.max(axis=0)

    @property
    def video_scores_mean(self) -> np.ndarray:
        """float32 [L]: each label's mean probability over windows."""
        return self.timeline.mean(axis=0, dtype=np.float64).astype(np.float32)

    def segments(self, threshold: float | None = None) -> list[Segment]:
        """Runs of consecutive windows whose probability is at least ``threshold``.

        Windows next to each other in index merge into one segment, whether they overlap,
        touch or leave a gap in time.

        Args:
            threshold: Probability in [0, 1]; a window with p >= threshold is inside
                (default: ``self.threshold``, the model's own).

        Returns:
            Segments sorted by start time, then label.
        """
        # Compare at the timeline's precision, so that p stored as float32(0.7) counts as
        # reaching a threshold of 0.7.
        threshold32 = np.float32(_check_threshold(self.threshold if threshold is None else threshold))
        segments = []
        for column, label in enumerate(self.labels):
            probabilities = self.timeline[:, column]
            inside = np.concatenate([[False], probabilities >= threshold32, [False]])
            edges = np.flatnonzero(np.diff(inside.astype(np.int8)))
            # Edges alternate: a run starts at edges[0::2] and ends before edges[1::2].
            for first, stop in zip(edges[0::2], edges[1::2]):
                segments.append(
                    Segment(
                        label=label,
                        start=float(self.times[first, 0]),
                        end=float(self.times[stop - 1, 1]),
                        peak=float(probabilities[first:stop].max()),
                    )
                )
        return sorted(segments, key=lambda segment: (segment.start, segment.label))

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` labels with the highest video-level score, highest first.

        Args:
            k: How many labels (all of them if there are fewer).

        Returns:
            ``(label, score)`` pairs; ties keep the input order.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        scores = self.video_scores
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self.labels[index], float(scores[index])) for index in order]

    def to_dict(self, threshold: float | None = None) -> dict[str, Any]:
        """The result as plain JSON-ready data (the schema is in the module docstring).

        Args:
            threshold: Probability threshold for the ``segments`` entry (default: ``self.threshold``).

        Returns:
            A dict of str, float, list and dict values only.
        """
        threshold = _check_threshold(self.threshold if threshold is None else threshold)
        maxima, means = self.video_scores, self.video_scores_mean
        order = np.argsort(-maxima, kind="stable")
        return {
            "video": _json_text(self.video),
            "model": _json_text(self.model),
            "alpha": round(self.alpha, _SCORE_DECIMALS),
            "threshold": round(threshold, _SCORE_DECIMALS),
            "scores": [
                {
                    "label": self.labels[index],
                    "score": round(float(maxima[index]), _SCORE_DECIMALS),
                    "mean_score": round(float(means[index]), _SCORE_DECIMALS),
                }
                for index in order
            ],
            "labels": list(self.labels),
            "attributes": {
                label: list(self.attributes[label]) for label in self.labels if label in self.attributes
            },
            "times": np.round(self.times, _TIME_DECIMALS).tolist(),
            "timeline": np.round(self.timeline.astype(np.float64), _SCORE_DECIMALS).tolist(),
            "segments": [
                {
                    "label": segment.label,
                    "start": round(segment.start, _TIME_DECIMALS),
                    "end": round(segment.end, _TIME_DECIMALS),
                    "peak": round(segment.peak, _SCORE_DECIMALS),
                }
                for segment in self.segments(threshold)
            ],
        }

    def to_json(self, threshold: float | None = None, indent: int | None = None) -> str:
        """The result as JSON text (UTF-8 safe, non-ASCII kept as is).

        Args:
            threshold: Probability threshold for the ``segments`` entry (default: ``self.threshold``).
            indent: Passed to ``json.dumps``; None writes one line.

        Returns:
            The JSON document.
        """
        return json.dumps(self.to_dict(threshold), ensure_ascii=False, indent=indent, allow_nan=False)

    def to_csv(self) -> str:
        """The timeline as CSV: a ``start,end,<label>...`` header, then one row per window.

        Returns:
            The CSV text (``\\n`` line endings; labels quoted where needed).
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["start", "end", *self.labels])
        for (start, end), row in zip(self.times, self.timeline):
            writer.writerow(
                [f"{start:.{_TIME_DECIMALS}f}", f"{end:.{_TIME_DECIMALS}f}"]
                + [f"{value:.{_SCORE_DECIMALS}f}" for value in row]
            )
        return buffer.getvalue()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        """Rebuild a Result from :meth:`to_dict` output (or its JSON, parsed).

        Args:
            data: The dict; ``scores`` and ``segments`` are derived and ignored; ``threshold``
                (if present) becomes the default threshold.

        Returns:
            The Result.

        Raises:
            ValueError: A required key is missing or a value is invalid.
        """
        missing = [key for key in ("labels", "times", "timeline") if key not in data]
        if missing:
            raise ValueError(f"result data is missing {', '.join(missing)}")
        return cls(
            labels=list(data["labels"]),
            times=np.asarray(data["times"], dtype=np.float64),
            timeline=np.asarray(data["timeline"], dtype=np.float32),
            attributes={label: list(phrases) for label, phrases in data.get("attributes", {}).items()},
            video=data.get("video"),
            model=data.get("model"),
            alpha=data.get("alpha", 1.0),
            threshold=data.get("threshold", 0.5),
        )
