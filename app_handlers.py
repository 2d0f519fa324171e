"""The app's request handlers: encode once per video, re-score cheaply, render the results.

UI-free logic of app.py (which builds the Blocks and wires these handlers to its components):
the ZeroGPU-decorated encode and score steps, the per-session state, one-line user errors, and
the HTML/table renderings of a Result. Every model computation goes through VideoClassifier.
"""

from __future__ import annotations

try:  # ZeroGPU wants `spaces` imported before torch; elsewhere its decorator changes nothing
    import spaces
except ImportError:
    spaces = None

import html
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from ovmlv import plots
from ovmlv.classifier import VideoClassifier, VideoState
from ovmlv.decode import format_duration, probe_video
from ovmlv.errors import OvmlvError
from ovmlv.labels import parse_labels, read_label_file
from ovmlv.result import Result
from ovmlv.vocabularies import load_vocabulary, vocabulary_title

logger = logging.getLogger("ovmlv.app")

TOP_K = 10  # labels suggested by Discover
DOWNLOADS_MAX_AGE_S = 3600  # result files older than this are deleted
GPU_BASE_S, GPU_PER_VIDEO_S, GPU_MAX_S = 20, 0.25, 240  # ZeroGPU time requested for encoding


# ---- GPU steps (ZeroGPU: only these run on the GPU) ----------------------------------------
def _on_gpu(duration: Callable[..., int]) -> Callable[[Callable], Callable]:
    """``spaces.GPU(duration=...)`` on ZeroGPU; off Spaces (or without `spaces`) nothing changes."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def _encode_gpu_seconds(video: str, progress: gr.Progress | None = None) -> int:
    """GPU time to ask ZeroGPU for when encoding ``video``: proportional to its length."""
    try:
        seconds = probe_video(video, max_duration_s=None).duration_s
    except OvmlvError:
        return GPU_BASE_S  # the encode step itself raises the clear error
    return int(min(GPU_MAX_S, GPU_BASE_S + GPU_PER_VIDEO_S * seconds))


def _score_gpu_seconds(state: VideoState, labels: list[str], alpha: float) -> int:
    """GPU time for scoring: new labels run through the LLM, so it grows with their number."""
    return int(min(GPU_MAX_S, 10 + 0.5 * len(labels)))


# ---- session state and rendering -----------------------------------------------------------
@dataclass
class Session:
    """What one browser session keeps between requests."""

    video: str  # the uploaded file the encoding belongs to
    state: VideoState  # window embeddings: re-used by every re-scoring
    result: Result | None  # the latest labels' scores (None: only Discover ran so far)
    message: str  # what the last step did, shown under the buttons


def _one_line(error: BaseException) -> str:
    return html.escape(" ".join(str(error).split()) or type(error).__name__, quote=False)


@contextmanager
def _user_errors(action: str) -> Iterator[None]:
    """Turn library errors into one-line gr.Error messages; never show a stack trace."""
    try:
        yield
    except gr.Error:
        raise
    except OvmlvError as exc:
        raise gr.Error(_one_line(exc), print_exception=False) from None
    except Exception:
        logger.exception("unexpected error while %s", action)
        raise gr.Error(
            f"internal error while {action}; the server log has the details", print_exception=False
        ) from None


def _elapsed(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _segments_frame(result: Result, threshold: float) -> pd.DataFrame:
    rows = [
        [segment.label, round(segment.start, 2), round(segment.end, 2), round(segment.peak, 3)]
        for segment in result.segments(threshold)
    ]
    return pd.DataFrame(rows, columns=["label", "start (s)", "end (s)", "peak p"])


def _attributes_html(result: Result, threshold: float) -> str:
    """Each label, best first, with the attribute phrases the LLM wrote for it."""
    items = []
    for label, score in result.top(len(result.labels)):
        phrases = result.attributes.get(label, [])
        text = " · ".join(html.escape(phrase) for phrase in phrases) or "<i>no attribute phrases</i>"
        colour = "#d62728" if score >= threshold else "inherit"
        items.append(
            f'<li class="ovmlv-label"><b style="color:{colour}">{html.escape(label)}</b> '
            f'<span style="opacity:.7">max p {score:.3f}</span><br>'
            f'<span class="ovmlv-phrases">{text}</span></li>'
        )
    return (
        '<div id="attributes-list"><p>What the LLM wrote about each label '
        "(averaged into the label's text embedding):</p>"
        f'<ul style="margin-top:.3rem">{"".join(items)}</ul></div>'
    )


class AppHandlers:
    """The event handlers of one app: a classifier, and a folder for downloadable results."""

    def __init__(self, classifier: VideoClassifier) -> None:
        self.clf = classifier
        self.downloads = Path(tempfile.mkdtemp(prefix="ovmlv-app-"))
        # ZeroGPU sends a GPU function's arguments to a worker process: the classifier must
        # not be one of them, so the GPU steps are bound methods that reach it through self.
        self._encode_on_gpu = _on_gpu(_encode_gpu_seconds)(self._encode_video)
        self._score = _on_gpu(_score_gpu_seconds)(self._score_labels)

    def _encode_video(self, video: str, progress: gr.Progress | None = None) -> VideoState:
        report = (lambda fraction, text: progress(fraction, desc=text)) if progress is not None else None
        return self.clf.encode_video(video, progress=report)

    def _score_labels(self, state: VideoState, labels: list[str], alpha: float) -> Result:
        return self.clf.score(state, labels, alpha=alpha)

    # -- helpers
    def _labels(self, text: str | None) -> list[str]:
        return parse_labels(text or "", self.clf.label_limits)

    def _label_note(self, llm_calls_before: int) -> str:
        """Whether the last scoring needed the LLM (new labels) or only the label cache."""
        return (
            "new labels embedded by the LLM"
            if self.clf.labels.llm_calls > llm_calls_before
            else "all labels cached"
        )

    @staticmethod
    def _check_inputs(video: str | None, threshold: float, alpha: float) -> str:
        if not video:
            raise gr.Error("upload a video first", print_exception=False)
        if not (0.0 <= float(threshold) <= 1.0 and 0.0 <= float(alpha) <= 1.0):
            raise gr.Error("threshold and alpha must be between 0 and 1", print_exception=False)
        return str(video)

    def _encode(self, video: str, progress: gr.Progress) -> VideoState:
        progress(0.0, desc="decoding and encoding the video")
        return self._encode_on_gpu(video, progress)

    def _write_downloads(self, result: Result, threshold: float) -> tuple[str, str]:
        for old in self.downloads.iterdir():
            if time.time() - old.stat().st_mtime > DOWNLOADS_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(prefix="result-", dir=self.downloads))
        stem = re.sub(r"[^\w.-]+", "_", Path(result.video or "video").stem)[:60] or "video"
        json_path, csv_path = folder / f"{stem}.ovmlv.json", folder / f"{stem}.ovmlv.csv"
        json_path.write_text(result.to_json(threshold, indent=2), encoding="utf-8")
        csv_path.write_text(result.to_csv(), encoding="utf-8")
        return str(json_path), str(csv_path)

    # -- events
    def classify(
        self,
        video: str,
        labels: str,
        threshold: float | None = None,
        alpha: float = 1.0,
        progress=gr.Progress(),
    ) -> tuple[dict, Session]:
        """Classify a video: each label's probability in every time window.

        Args:
            video: the video file (mp4, webm, mov, ...).
            labels: labels separated by commas or new lines, e.g. "dog, running, ball".
            threshold: probability from which a window counts as containing a label (segments;
                default: the model's own).
            alpha: 0 = zero-shot model, 1 = fine-tuned adapter (no effect without a trained adapter).

        Returns:
            The result as JSON: scores, labels, attributes, times, timeline, segments.
        """
        threshold = self.clf.threshold if threshold is None else threshold
        with _user_errors("classifying the video"):
            video = self._check_inputs(video, threshold, alpha)
            label_list = self._labels(labels)  # checked before the expensive part
            state = self._encode(video, progress)
            progress(0.95, desc="embedding the labels")
            start = time.perf_counter()
            result = self._score(state, label_list, float(alpha))
            score_s = time.perf_counter() - start
            info = state.info
            decoded_s = float(state.times[-1, 1])
            if decoded_s < info.duration_s - 2.0:  # the decoder stopped early: truncated or damaged
                gr.Warning(
                    f"only {format_duration(decoded_s)} of the {format_duration(info.duration_s)} the file "
                    "announces could be decoded (truncated or damaged?)"
                )
            message = (
                f"Encoded {state.num_windows} windows of {format_duration(info.duration_s)} video "
                f"({info.width}x{info.height}, {info.codec}) in {state.encode_seconds:.2f} s; "
                f"scored {len(label_list)} labels in {_elapsed(score_s)}."
            )
            return result.to_dict(threshold), Session(video, state, result, message)

    def rescore(
        self,
        video: str,
        labels: str,
        threshold: float | None = None,
        alpha: float = 1.0,
        session: Session | None = None,
        progress=gr.Progress(),
    ) -> tuple[dict, Session]:
        """Score new labels on the video this session already encoded (encodes it if not).

        Args:
            video: the same video as in /classify.
            labels: labels separated by commas or new lines.
            threshold: probability from which a window counts as containing a label (default:
                the model's own).
            alpha: 0 = zero-shot model, 1 = fine-tuned adapter.

        Returns:
            The result as JSON, like /classify.
        """
        threshold = self.clf.threshold if threshold is None else threshold
        if session is None or session.video != str(video):
            return self.classify(video, labels, threshold, alpha, progress)
        with _user_errors("re-scoring the labels"):
            self._check_inputs(video, threshold, alpha)
            label_list = self._labels(labels)
            calls, start = self.clf.labels.llm_calls, time.perf_counter()
            result = self._score(session.state, label_list, float(alpha))
            elapsed = time.perf_counter() - start
            new = self._label_note(calls)
            message = (
                f"Re-scored {len(label_list)} labels in {_elapsed(elapsed)} ({new}), video not re-encoded."
            )
            return result.to_dict(threshold), Session(session.video, session.state, result, message)

    def change_alpha(self, alpha: float, session: Session | None) -> Session:
        if session is None or session.result is None:
            return gr.skip()
        with _user_errors("re-scoring at the new alpha"):
            start = time.perf_counter()
            result = self._score(session.state, session.result.labels, float(alpha))
            message = (
                f"Re-scored at alpha {alpha:.2f} in {_elapsed(time.perf_counter() - start)}, "
                "video not re-encoded."
            )
            return Session(session.video, session.state, result, message)

    def render(self, session: Session | None, threshold: float) -> tuple:
        """Everything shown for the session's latest result, at ``threshold``."""
        if session is None or session.result is None:
            return tuple(gr.skip() for _ in range(9))
        result = session.result
        num_segments = len(result.segments(threshold))
        json_path, csv_path = self._write_downloads(result, threshold)
        status = f"{session.message} {num_segments} segment(s) at threshold {threshold:.2f}."
        return (
            result.to_dict(threshold),
            plots.timeline_figure(result, threshold),
            plots.heatmap_figure(result),
            plots.scores_figure(result, threshold),
            _segments_frame(result, threshold),
            _attributes_html(result, threshold),
            json_path,
            csv_path,
            status,
        )

    def run_example(self, video: str, labels: str) -> tuple:
        """For cached examples: classify at the default settings (the model's threshold) and render."""
        _, session = self.classify(video, labels, self.clf.threshold, 1.0, gr.Progress())
        session.message += " (cached example)"
        return self.render(session, self.clf.threshold)

    def discover(
        self,
        video: str,
        vocabulary: str,
        alpha: float = 1.0,
        session: Session | None = None,
        progress=gr.Progress(),
    ) -> tuple[pd.DataFrame, list[str], Session, str]:
        """The labels of a built-in vocabulary that score highest in the video.

        Args:
            video: the video file.
            vocabulary: one of the built-in vocabularies (kinetics400, charades, coco).
            alpha: 0 = zero-shot model, 1 = fine-tuned adapter.

        Returns:
            The top labels and their video-level scores.
        """
        with _user_errors("discovering labels"):
            video = self._check_inputs(video, 0.5, alpha)
            names = load_vocabulary(vocabulary)
            if session is None or session.video != video:
                session = Session(video, self._encode(video, progress), None, "")
            start, calls = time.perf_counter(), self.clf.labels.llm_calls
            chunk = self.clf.label_limits.max_labels
            scored: list[tuple[str, float]] = []
            for first in range(0, len(names), chunk):
                progress(first / len(names), desc=f"scoring {vocabulary_title(vocabulary)}")
                result = self._score(session.state, names[first : first + chunk], float(alpha))
                scored += zip(result.labels, result.video_scores.tolist())
            top = sorted(scored, key=lambda item: -item[1])[:TOP_K]
            elapsed = time.perf_counter() - start
            new = self._label_note(calls)
            status = (
                f"Scored {len(names)} labels of {vocabulary_title(vocabulary)} in {_elapsed(elapsed)} ({new}), "
                "video not re-encoded."
            )
            frame = pd.DataFrame(
                [[label, round(score, 3)] for label, score in top], columns=["label", "max p"]
            )
            return frame, [label for label, _ in top], session, status

    def load_label_file(self, path: str | None) -> str:
        if not path:
            return gr.skip()
        with _user_errors("reading the label file"):
            return "\n".join(read_label_file(path, self.clf.label_limits))
