"""ovmlv web app: upload a video, type any labels, see each label's probability over time.

UI only: every model computation goes through ``ovmlv.VideoClassifier``. This file builds the
page and wires it; the request handlers (encode, score, render) are in ``app_handlers.py``.
Decoding and encoding a video (the expensive part) runs once per video; its ``VideoState`` is
kept per browser session in a ``gr.State``, so new labels, another threshold or alpha only
re-score.

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
import hashlib
import html
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr

from app_handlers import TOP_K, AppHandlers
from examples.clips import ensure_example_clips
from ovmlv.classifier import VideoClassifier, default_cache_path
from ovmlv.decode import format_duration
from ovmlv.errors import OvmlvError, WeightsUnavailableError
from ovmlv.presets import DEFAULT_PRESET
from ovmlv.vocabularies import list_vocabularies, vocabulary_title

logger = logging.getLogger("ovmlv.app")

FALLBACK_MODEL = "toy"  # offline stand-in: the toy world's model, shipped in checkpoints/toy
DEFAULT_MAX_FILE_SIZE = "200mb"
DEFAULT_MAX_DURATION_S = 600.0
DEFAULT_VOCABULARY = "kinetics400"


def default_examples_dir() -> Path:
    """Where the example clips are rendered: next to the label database ($OVMLV_CACHE)."""
    return default_cache_path().parent / "examples"


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


def examples_cache_key(classifier: VideoClassifier) -> str:
    """What cached example outputs depend on: the whole model (config with its threshold, and every
    trained tensor, temporal branches included), not only its label side (the label-cache key)."""
    model = classifier.model
    digest = hashlib.sha256(model.config.to_json().encode())
    digest.update(classifier.labels.fingerprint.encode())  # covers the frozen towers and the LLM
    for name, tensor in sorted(model.trained_state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:20]


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
    handlers = AppHandlers(classifier)
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
                threshold = gr.Slider(
                    0, 1, classifier.threshold, step=0.01, label="Threshold", elem_id="threshold"
                )
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
        with _examples_cache(examples_cache, examples_cache_key(classifier)):
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
