"""ovmlv web app: upload a video, type any labels, see each label's probability over time.

UI only: every model computation goes through ``ovmlv.VideoClassifier``. Decoding and encoding
a video (the expensive part) runs once per video; its ``VideoState`` is kept per browser
session in a ``gr.State``, so new labels, another threshold or alpha only re-score.

Run it::

    python app.py                          # siglip2-b16; offline: the toy model plus a banner
    python app.py --model toy              # the toy world's model (ships in checkpoints/toy)
    python app.py --model tiny-clip --port 7861
    OVMLV_MODEL=hf-hub:org/repo python app.py

API (gradio_client; parameters are named as below)::

    /classify (video, labels, threshold, alpha) -> dict   # the Result JSON, see ovmlv/result.py
    /rescore  (video, labels, threshold, alpha) -> dict   # same, re-using this client's encoding
    /discover (video, vocabulary, alpha) -> top labels of a built-in vocabulary
"""

from __future__ import annotations

try:  # ZeroGPU wants `spaces` imported before torch; elsewhere its decorator changes nothing
    import spaces
except ImportError:
    spaces = None

import argparse
import html
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from examples.clips import ensure_example_clips
from ovmlv import plots
from ovmlv.classifier import VideoClassifier, VideoState, default_cache_path
from ovmlv.decode import format_duration, probe_video
from ovmlv.errors import OvmlvError, WeightsUnavailableError
from ovmlv.labels import parse_labels, read_label_file
from ovmlv.presets import DEFAULT_PRESET
from ovmlv.result import Result
from ovmlv.vocabularies import list_vocabularies, load_vocabulary, vocabulary_title

logger = logging.getLogger("ovmlv.app")

FALLBACK_MODEL = "toy"  # offline stand-in: the toy world's model, shipped in checkpoints/toy
DEFAULT_MAX_FILE_SIZE = "200mb"
DEFAULT_MAX_DURATION_S = 600.0
TOP_K = 10  # labels suggested by Discover
DEFAULT_VOCABULARY = "kinetics400"
DOWNLOADS_MAX_AGE_S = 3600  # result files older than this are deleted
GPU_BASE_S, GPU_PER_VIDEO_S, GPU_MAX_S = 20, 0.25, 240  # ZeroGPU time requested for encoding


def default_examples_dir() -> Path:
    """Where the example clips are rendered: next to the label database ($OVMLV_CACHE)."""
    return default_cache_path().parent / "examples"


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


class _Handlers:
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
        self, video: str, labels: str, threshold: float = 0.5, alpha: float = 1.0, progress=gr.Progress()
    ) -> tuple[dict, Session]:
        """Classify a video: each label's probability in every time window.

        Args:
            video: the video file (mp4, webm, mov, ...).
            labels: labels separated by commas or new lines, e.g. "dog, running, ball".
            threshold: probability from which a window counts as containing a label (segments).
            alpha: 0 = zero-shot model, 1 = fine-tuned adapter (no effect without a trained adapter).

        Returns:
            The result as JSON: scores, labels, attributes, times, timeline, segments.
        """
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
        threshold: float = 0.5,
        alpha: float = 1.0,
        session: Session | None = None,
        progress=gr.Progress(),
    ) -> tuple[dict, Session]:
        """Score new labels on the video this session already encoded (encodes it if not).

        Args:
            video: the same video as in /classify.
            labels: labels separated by commas or new lines.
            threshold: probability from which a window counts as containing a label.
            alpha: 0 = zero-shot model, 1 = fine-tuned adapter.

        Returns:
            The result as JSON, like /classify.
        """
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
        """For cached examples: classify at the default settings and render."""
        _, session = self.classify(video, labels, 0.5, 1.0, gr.Progress())
        session.message += " (cached example)"
        return self.render(session, 0.5)

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


# ---- the UI ------------------------------------------------------------------------------
def _join_suggestions(chosen: list[str]) -> str:
    if not chosen:
        raise gr.Error("press Discover first: it suggests the labels to use", print_exception=False)
    return ", ".join(chosen)


def _banner_html(text: str) -> str:
    return (
        '<div style="background:#fff4ce;border:1px solid #e0b000;border-radius:6px;padding:.6rem .9rem;'
        f'color:#3d2f00">⚠️ {html.escape(text)}</div>'
    )


@contextmanager
def _examples_cache(folder: str | os.PathLike | None, key: str) -> Iterator[None]:
    """Cache example outputs in ``folder/key`` (one folder per model: gradio itself names the
    folder by component id only, so another model would be shown stale outputs)."""
    previous = os.environ.get("GRADIO_EXAMPLES_CACHE")
    root = folder or previous or ".gradio/cached_examples"
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(Path(root) / key)  # read by gr.Examples.__init__
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("GRADIO_EXAMPLES_CACHE", None)
        else:
            os.environ["GRADIO_EXAMPLES_CACHE"] = previous


def build_demo(
    classifier: VideoClassifier,
    banner: str | None = None,
    *,
    examples_dir: str | os.PathLike | None = None,
    examples_cache: str | os.PathLike | None = None,
    max_file_size: str | None = DEFAULT_MAX_FILE_SIZE,
    queue_size: int = 32,
    concurrency: int = 2,
) -> gr.Blocks:
    """The app for one loaded classifier (already queued; call ``.launch()``).

    Args:
        classifier: the model; all requests share it.
        banner: a warning shown on top of the page (e.g. why a fallback model is running).
        examples_dir: where the example clips are rendered (default: ``default_examples_dir()``).
        examples_cache: where their outputs are cached at first use (default: gradio's,
            $GRADIO_EXAMPLES_CACHE or .gradio/cached_examples).
        max_file_size: shown to users; enforce it with ``launch(max_file_size=...)``.
        queue_size: requests waiting beyond this are refused ("queue is full").
        concurrency: model requests (encode, score, discover) running at the same time.
    """
    handlers = _Handlers(classifier)
    limits = classifier.label_limits
    duration = format_duration(classifier.max_duration_s) if classifier.max_duration_s else "any length"
    vocabularies = [(vocabulary_title(name), name) for name in list_vocabularies()]
    model_events = {"concurrency_id": "model", "concurrency_limit": concurrency}

    with gr.Blocks(title="ovmlv: open-vocabulary video classification", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "## ovmlv: open-vocabulary multi-label video classification\n"
            "Upload a video, type **any** labels, and see how likely each one is, second by second. "
            "Every label is scored on its own (no softmax): several can be present at once."
        )
        gr.HTML(_banner_html(banner) if banner else "", visible=bool(banner), elem_id="banner")
        session = gr.State(None, time_to_live=3600)
        suggestions = gr.State([])
        with gr.Row():
            with gr.Column(scale=2):
                video = gr.Video(
                    label="Video", sources=["upload"], include_audio=True, elem_id="video", height=260
                )
                labels = gr.Textbox(
                    label="Labels",
                    lines=3,
                    placeholder="comma or newline separated, e.g. dribbling, basketball, crowd cheering",
                    elem_id="labels",
                )
                label_file = gr.UploadButton(
                    "Load labels from a text file", file_types=[".txt", ".csv", ".lst"], size="sm"
                )
                threshold = gr.Slider(0, 1, 0.5, step=0.01, label="Threshold", elem_id="threshold")
                alpha = gr.Slider(
                    0,
                    1,
                    1.0,
                    step=0.05,
                    label="alpha: 0 = zero-shot, 1 = fine-tuned",
                    visible=bool(classifier.model.config.adapter_trained),
                    elem_id="alpha",
                )
                with gr.Row():
                    classify_button = gr.Button("Classify", variant="primary", elem_id="classify")
                    update_button = gr.Button("Update labels", elem_id="update")
                status = gr.Markdown(elem_id="status")
                gr.Markdown(
                    f"<small>Model `{classifier.name}` · videos up to {duration}"
                    + (f" and {max_file_size.upper()}" if max_file_size else "")
                    + f" · up to {limits.max_labels} labels of {limits.max_chars} characters</small>"
                )
                with gr.Accordion("Discover labels from a vocabulary", open=False):
                    vocabulary = gr.Dropdown(
                        vocabularies,
                        value=DEFAULT_VOCABULARY,
                        label="Vocabulary",
                        elem_id="discover-vocabulary",
                    )
                    discover_button = gr.Button("Discover", size="sm", elem_id="discover")
                    discovered = gr.Dataframe(
                        headers=["label", "max p"],
                        interactive=False,
                        label=f"Top {TOP_K}",
                        elem_id="discovered",
                    )
                    use_button = gr.Button("Use these labels", size="sm", elem_id="use-suggestions")
            with gr.Column(scale=3):
                timeline = gr.Plot(label="Probability over time", show_label=False, elem_id="timeline")
                with gr.Row():
                    heatmap = gr.Plot(label="Labels over time", show_label=False, elem_id="heatmap")
                    scores = gr.Plot(label="Video-level scores", show_label=False, elem_id="scores")
        with gr.Row():
            segments = gr.Dataframe(
                headers=["label", "start (s)", "end (s)", "peak p"],
                interactive=False,
                label="Segments (consecutive windows at or above the threshold)",
                elem_id="segments",
            )
            attributes = gr.HTML(label="Label attributes", elem_id="attributes")
        with gr.Row():
            json_file = gr.File(label="Result (JSON)", height=110, elem_id="json-file")
            csv_file = gr.File(label="Timeline (CSV)", height=110, elem_id="csv-file")
        with gr.Accordion("Result JSON (the /classify API output)", open=False):
            result_json = gr.JSON(label="Result")

        shown = [result_json, timeline, heatmap, scores, segments, attributes, json_file, csv_file, status]
        inputs = [video, labels, threshold, alpha]
        render = {
            "fn": handlers.render,
            "inputs": [session, threshold],
            "outputs": shown,
            "api_visibility": "private",
        }

        classify_button.click(
            handlers.classify, inputs, [result_json, session], api_name="classify", **model_events
        ).success(**render)
        update_button.click(
            handlers.rescore, [*inputs, session], [result_json, session], api_name="rescore", **model_events
        ).success(**render)
        threshold.change(**render)
        alpha.change(
            handlers.change_alpha, [alpha, session], [session], api_visibility="private", **model_events
        ).success(**render)
        label_file.upload(handlers.load_label_file, [label_file], [labels], api_visibility="private")
        discover_button.click(
            handlers.discover,
            [video, vocabulary, alpha, session],
            [discovered, suggestions, session, status],
            api_name="discover",
            **model_events,
        )
        use_button.click(
            _join_suggestions,
            [suggestions],
            [labels],
            api_visibility="private",
        ).success(
            handlers.rescore,
            [*inputs, session],
            [result_json, session],
            api_visibility="private",
            **model_events,
        ).success(**render)

        examples = ensure_example_clips(examples_dir or default_examples_dir())
        with _examples_cache(examples_cache, classifier.labels.fingerprint):
            gr.Examples(
                examples,
                inputs=[video, labels],
                outputs=shown,
                fn=handlers.run_example,
                cache_examples=True,
                cache_mode="lazy",
                label="Examples (synthetic clips rendered by this app)",
            )
    demo.queue(max_size=queue_size, default_concurrency_limit=concurrency)
    return demo


# ---- start-up ------------------------------------------------------------------------------
def load_classifier(
    name: str, device: str | None = None, max_duration_s: float | None = DEFAULT_MAX_DURATION_S
) -> tuple[VideoClassifier, str | None]:
    """The classifier for ``name``, or the offline fallback and a banner saying why."""
    try:
        return VideoClassifier.from_pretrained(name, device=device, max_duration_s=max_duration_s), None
    except WeightsUnavailableError as exc:
        logger.warning("%s; starting on %s instead", exc, FALLBACK_MODEL)
        fallback = VideoClassifier.from_pretrained(
            FALLBACK_MODEL, device=device, max_duration_s=max_duration_s
        )
        banner = (
            f"The model {name} could not be loaded, so this app runs on {FALLBACK_MODEL}, a small model trained "
            "in the toy world: it knows coloured shapes that move and 24 named things (tomato, lime, bagel...), "
            f"nothing of real videos; try the examples below. Why: {exc}. "
            "Then restart the app (or start it with --model pointing at a checkpoint directory)."
        )
        return fallback, banner


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    on_spaces = bool(os.environ.get("SPACE_ID"))
    parser = argparse.ArgumentParser(description="ovmlv web app")
    parser.add_argument(
        "--model",
        default=os.environ.get("OVMLV_MODEL", DEFAULT_PRESET),
        help="preset name, checkpoint directory or hf-hub:org/repo (env OVMLV_MODEL)",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("OVMLV_HOST", "0.0.0.0" if on_spaces else "127.0.0.1"),
        help="address to listen on (env OVMLV_HOST; 0.0.0.0 on Spaces)",
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("OVMLV_PORT", "7860")), help="env OVMLV_PORT"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE, help="largest upload, e.g. 200mb")
    parser.add_argument(
        "--max-duration", type=float, default=DEFAULT_MAX_DURATION_S, help="longest video in seconds"
    )
    parser.add_argument("--queue-size", type=int, default=32, help="requests that may wait in the queue")
    parser.add_argument("--concurrency", type=int, default=2, help="model requests running at once")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Load the model once, build the UI and serve it."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        classifier, banner = load_classifier(args.model, args.device, args.max_duration)
    except OvmlvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    examples_dir = default_examples_dir()
    demo = build_demo(
        classifier,
        banner,
        examples_dir=examples_dir,
        max_file_size=args.max_file_size,
        queue_size=args.queue_size,
        concurrency=args.concurrency,
    )
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=args.max_file_size,
        allowed_paths=[str(examples_dir)],
        share=False,
    )


if __name__ == "__main__":
    main()
