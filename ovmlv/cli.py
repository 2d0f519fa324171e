"""The ``ovmlv`` command line: predict (files or a batch manifest), presets, merge-shards, bench.

``main(argv)`` parses the arguments once, configures logging, runs one command and returns its
exit code: 0 success, 1 a usage or input error (one ``ovmlv: error: ...`` line on stderr, no
traceback unless ``--debug``), 2 a batch in which some videos failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ovmlv import batch
from ovmlv.errors import OvmlvError
from ovmlv.formats import FORMATS, render
from ovmlv.presets import DEFAULT_PRESET, list_presets

if TYPE_CHECKING:
    from ovmlv.result import Result

logger = logging.getLogger(__name__)

DTYPES = ("bfloat16", "float16", "float32")

_PREDICT_EPILOG = """\
output formats (--format):
  json   (default) one JSON object per video (ovmlv.Result.to_dict: scores sorted best first,
         labels, times, timeline, segments, attributes); a JSON list for several videos
  csv    the timeline: start,end,<label>... one row per window; for several videos a first
         column "video" (the path as given) is added and all rows go in one file
  table  label, max and mean probability, segments at --threshold; best label first
  html   a self-contained report with plots; for several videos (or when --output is a
         folder) one <video name>.html per video in the --output folder
  Output goes to --output, or to stdout.

batch mode (--manifest FILE --output results.jsonl):
  the manifest lists one video per line: a path, or JSON {"video": path, "labels": "a, b"}
  (labels optional, replacing --labels for that entry); relative paths are resolved against
  the manifest's folder; blank lines and lines starting with # are skipped.
  Each video adds one line to the output as soon as it is done:
    {"video": path, "ok": true, "result": {...as in json above...}}
    {"video": path, "ok": false, "error": "why"}
  A rerun skips the videos already in the output (--retry-failed redoes the failed ones).
  Bad videos do not stop the batch: exit code 0 if all are ok, 2 if some failed.
  --shard i/n (or RANK/WORLD_SIZE from torchrun) takes the entries whose index % n == i and
  writes results.shard-i-of-n.jsonl; join them with `ovmlv merge-shards results.jsonl`
  (or simply `cat results.shard-*-of-N.jsonl > results.jsonl`).
"""


class UsageError(OvmlvError, ValueError):
    """Bad command-line arguments; the message is one line."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit code 1 (see main)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ---- argument types ---------------------------------------------------------------------------
def _positive_seconds(text: str) -> float:
    value = _number(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _probability(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The ``ovmlv`` argument parser."""
    from ovmlv import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary line")
    common.add_argument("-v", "--verbose", action="store_true", help="log what is being done")
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")

    parser = _Parser(prog="ovmlv", description="Open-vocabulary multi-label video classification.")
    parser.add_argument("--version", action="version", version=f"ovmlv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="score labels over time in videos",
        description="Score any labels over time in videos (each label independently).",
        epilog=_PREDICT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("videos", nargs="*", metavar="VIDEO", help="video files")
    labels = predict.add_mutually_exclusive_group()
    labels.add_argument("--labels", metavar="TEXT", help='comma-separated labels, e.g. "dog, running"')
    labels.add_argument("--labels-file", metavar="FILE", help="UTF-8 file: one label per line or commas")
    predict.add_argument("--manifest", metavar="FILE", help="batch mode: a file listing videos (below)")
    predict.add_argument("--model", default=DEFAULT_PRESET, metavar="NAME", help="preset, checkpoint folder or hf-hub:org/repo (default: %(default)s)")  # fmt: skip
    predict.add_argument("--window", type=_positive_seconds, default=2.0, metavar="S", help="window length in seconds (default: %(default)s)")  # fmt: skip
    predict.add_argument("--stride", type=_positive_seconds, metavar="S", help="seconds between window starts (default: the window)")  # fmt: skip
    predict.add_argument("--alpha", type=_probability, default=1.0, metavar="A", help="0 zero-shot ... 1 tuned model (default: %(default)s)")  # fmt: skip
    predict.add_argument("--threshold", type=_probability, default=None, metavar="P", help="probability that counts as present, for segments (default: the model's own, 0.5 unless its checkpoint sets one)")  # fmt: skip
    predict.add_argument("--format", choices=FORMATS, help="output format (default: json; see below)")
    predict.add_argument("-o", "--output", metavar="PATH", help="output file (folder for html of several videos)")  # fmt: skip
    predict.add_argument("--device", metavar="D", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    predict.add_argument("--dtype", choices=DTYPES, help="model weights dtype (default: bfloat16)")
    predict.add_argument("--batch-size", type=_positive_int, default=8, metavar="N", help="windows per forward pass (default: %(default)s)")  # fmt: skip
    predict.add_argument("--max-duration", type=_number, default=600.0, metavar="S", help="longest accepted video in seconds, 0 = no limit (default: %(default)s)")  # fmt: skip
    predict.add_argument(
        "--shard", metavar="i/n", help="batch mode: process only entries with index %% n == i"
    )
    predict.add_argument("--retry-failed", action="store_true", help="batch mode: redo the failed entries")

    commands.add_parser("presets", help="list the model presets", description="Print the preset names.")

    merge = commands.add_parser(
        "merge-shards",
        parents=[common],
        help="join the outputs of a sharded batch",
        description="Join shard outputs into one JSONL file (one line per video).",
    )
    merge.add_argument("output", metavar="OUT.jsonl", help="the merged file (also names the shards)")
    merge.add_argument(
        "shards", nargs="*", metavar="SHARD", help="shard files (default: OUT.shard-*-of-N.jsonl)"
    )

    commands.add_parser("bench", add_help=False, help="run the benchmarks (ovmlv bench --help)")
    return parser


# ---- logging ------------------------------------------------------------------------------------
class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (tests swap it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"ovmlv: {record.levelname.lower()}: {record.getMessage()}"


def configure_logging(verbose: bool = False, debug: bool = False) -> None:
    """ovmlv's own messages at warning (info with -v, debug with --debug); other libraries quiet."""
    root = logging.getLogger()
    if not any(isinstance(handler, _StderrHandler) for handler in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Formatter())
        root.addHandler(handler)
    # Third-party warnings (e.g. "no pretrained weights" for the random tiny presets) are
    # noise on a command line; --debug shows them.
    root.setLevel(logging.WARNING if debug else logging.ERROR)
    logging.getLogger("ovmlv").setLevel(
        logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    )
    logging.captureWarnings(True)


def quiet_library_progress_bars(quiet: bool) -> None:
    """transformers' "Loading weights" and the Hub's download bars: only on a terminal, never with -q.

    Redirected to a file or a pipe they are noise that hides the one line an error would print.
    """
    if quiet or not sys.stderr.isatty():
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


# ---- predict ------------------------------------------------------------------------------------
def _labels(args: argparse.Namespace) -> list[str] | None:
    from ovmlv.labels import parse_labels, read_label_file

    if args.labels_file is not None:
        return read_label_file(args.labels_file)
    if args.labels is not None:
        return parse_labels(args.labels)
    return None


def _check_args(args: argparse.Namespace) -> None:
    if args.manifest and args.videos:
        raise UsageError("give either VIDEO files or --manifest, not both")
    if not args.manifest and not args.videos:
        raise UsageError("no videos given: name VIDEO files or a --manifest (see 'ovmlv predict --help')")
    if args.manifest:
        if args.format not in (None, "json"):
            raise UsageError("--manifest writes JSONL; --format does not apply")
        if not args.output:
            raise UsageError("--manifest needs --output FILE.jsonl")
    else:
        for flag, value in (("--shard", args.shard), ("--retry-failed", args.retry_failed)):
            if value:
                raise UsageError(f"{flag} only applies with --manifest")
        if args.labels is None and args.labels_file is None:
            raise UsageError('no labels given: use --labels "a, b" or --labels-file FILE')
    if args.max_duration < 0 or math.isnan(args.max_duration):
        raise UsageError(f"--max-duration must be >= 0 (0 = no limit), got {args.max_duration}")


def _check_device(text: str | None) -> str | None:
    if text is None:
        return None
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise UsageError(f"--device {text!r} is not a device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {text}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return str(device)


def _check_writable(path: Path, folder: bool = False) -> None:
    """Fail before any model loading if ``path`` cannot be written."""
    if folder:
        if not path.is_dir():
            raise UsageError(f"--output {path} must be an existing folder for html of several videos")
        parent = path
    else:
        if path.is_dir():
            raise UsageError(f"--output {path} is a folder; give a file name")
        parent = path.parent
        if not parent.is_dir():
            raise UsageError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write to {parent}: permission denied")


def _load_classifier(args: argparse.Namespace, device: str | None):
    import torch

    from ovmlv.classifier import VideoClassifier

    logger.info("loading model %s", args.model)
    return VideoClassifier.from_pretrained(
        args.model,
        device=device,
        dtype=getattr(torch, args.dtype) if args.dtype else None,
        batch_size=args.batch_size,
        max_duration_s=args.max_duration or None,
    )


def _predict_files(args: argparse.Namespace, labels: list[str]) -> int:
    from ovmlv.decode import VideoDecodeError, probe_video

    output_format = args.format or "json"
    several = len(args.videos) > 1
    html_folder = output_format == "html" and bool(args.output) and (several or Path(args.output).is_dir())
    if output_format == "html" and several and not args.output:
        raise UsageError("html for several videos needs --output FOLDER (one page per video)")
    if args.output:
        _check_writable(Path(args.output), folder=html_folder)
    problems = []
    for video in args.videos:  # fail fast, before loading a model, on files that cannot work
        try:
            probe_video(video, max_duration_s=args.max_duration or None)
        except VideoDecodeError as error:
            problems.append(str(error))
    if problems:
        raise VideoDecodeError("; ".join(problems))
    device = _check_device(args.device)
    classifier = _load_classifier(args, device)
    threshold = classifier.threshold if args.threshold is None else args.threshold
    results: list[Result] = []
    for video in _progress(args.videos, args.quiet):
        state = classifier.encode_video(
            video, window_s=args.window, stride_s=args.stride, alphas=(args.alpha,)
        )
        results.append(classifier.score(state, labels, alpha=args.alpha))
        logger.info("%s: %d windows in %.2f s", video, state.num_windows, state.encode_seconds)
    if html_folder:
        _write_html_folder(Path(args.output), args.videos, results, threshold)
    else:
        _write(args.output, render(output_format, args.videos, results, threshold))
    return 0


def _progress(items: Sequence[str], quiet: bool):
    from tqdm import tqdm

    return tqdm(items, unit="video", disable=quiet or len(items) < 2 or not sys.stderr.isatty())


def _write(output: str | None, text: str) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {output}: {error.strerror or error}") from None


def _write_html_folder(folder: Path, videos: Sequence[str], results: list[Result], threshold: float) -> None:
    from ovmlv.plots import html_report

    used: set[str] = set()
    for video, result in zip(videos, results):
        name, number = Path(video).stem or "video", 1
        while f"{name}.html" in used:
            number += 1
            name = f"{Path(video).stem}-{number}"
        used.add(f"{name}.html")
        _write(str(folder / f"{name}.html"), html_report(result, threshold))


def _predict_batch(args: argparse.Namespace, labels: list[str] | None) -> int:
    entries = batch.read_manifest(args.manifest, labels)
    shard = batch.parse_shard(args.shard) if args.shard else batch.shard_from_env(os.environ)
    index, count = shard or (0, 1)
    entries = [entry for entry in entries if entry.index % count == index]
    output = batch.shard_output_path(args.output, index, count)
    _check_writable(output)
    todo, summary = batch.plan_batch(entries, output, retry_failed=args.retry_failed)
    if todo:
        device = args.device
        if device is None and shard and args.shard is None and "LOCAL_RANK" in os.environ:
            device = _local_rank_device(os.environ["LOCAL_RANK"])
        classifier = _load_classifier(args, _check_device(device))

        def classify(entry: batch.ManifestEntry) -> dict[str, Any]:
            state = classifier.encode_video(
                entry.path, window_s=args.window, stride_s=args.stride, alphas=(args.alpha,)
            )
            result = classifier.score(state, entry.labels or labels, alpha=args.alpha)
            return result.to_dict(args.threshold)  # None: the model's own threshold

        progress = not args.quiet and sys.stderr.isatty()
        batch.run_batch(todo, output, classify, summary, progress=progress)
    shard_text = f" (shard {index}/{count})" if count > 1 else ""
    line = (
        f"ovmlv: {summary.total} videos{shard_text}: {summary.ok} ok, {summary.failed} failed; "
        f"{summary.processed} run now, {summary.skipped} already in {output}"
    )
    if summary.failed:
        print(f"{line}; see the errors there (--retry-failed redoes them)", file=sys.stderr)
        return 2
    if not args.quiet:
        print(line, file=sys.stderr)
    return 0


def _local_rank_device(local_rank: str) -> str | None:
    """cuda:LOCAL_RANK under torchrun when CUDA is there (each process its own GPU)."""
    import torch

    return f"cuda:{int(local_rank)}" if local_rank.isdigit() and torch.cuda.is_available() else None


def _cmd_predict(args: argparse.Namespace) -> int:
    _check_args(args)
    labels = _labels(args)  # before any model loading: a bad label list fails fast
    if args.manifest:
        return _predict_batch(args, labels)
    return _predict_files(args, labels)


# ---- other commands -------------------------------------------------------------------------------
def _cmd_merge(args: argparse.Namespace) -> int:
    output = Path(args.output)
    shards = [Path(shard) for shard in args.shards] or batch.find_shard_files(output)
    videos, failed = batch.merge_shards(output, shards)
    if not args.quiet:
        print(f"ovmlv: merged {len(shards)} files into {output}: {videos} videos, {failed} failed", file=sys.stderr)  # fmt: skip
    return 0


def _cmd_bench(rest: list[str]) -> int:
    import importlib

    try:
        bench = importlib.import_module("ovmlv.bench")
    except ModuleNotFoundError as error:
        if error.name != "ovmlv.bench":
            raise
        raise UsageError("the bench command is not available in this installation") from None
    return int(bench.main(rest) or 0)


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    if args.command == "presets":
        print("\n".join(list_presets()))
        return 0
    if args.command == "bench":
        return _cmd_bench(rest)
    if args.command == "merge-shards":
        return _cmd_merge(args)
    return _cmd_predict(args)


def _fail(message: str) -> int:
    print(f"ovmlv: error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run the ``ovmlv`` command line with ``argv`` (default: sys.argv[1:]); return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args, rest = build_parser().parse_known_args(argv)
        if rest and args.command != "bench":
            raise UsageError(f"unrecognized arguments: {' '.join(rest)}")
    except UsageError as error:
        return _fail(str(error))
    except SystemExit as exit_:  # --help and --version
        return exit_.code if isinstance(exit_.code, int) else 0
    debug = getattr(args, "debug", False)
    if args.command != "bench":  # bench's own main configures logging for its progress lines
        configure_logging(getattr(args, "verbose", False), debug)
    if args.command == "predict":
        quiet_library_progress_bars(getattr(args, "quiet", False))
    try:
        return _run(args, rest)
    except KeyboardInterrupt:
        print("ovmlv: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ovmlv predict ... | head`
        return 1
    except (OvmlvError, ValueError, OSError) as error:
        if debug:
            raise
        return _fail(batch.one_line(error))
    except Exception as error:
        if debug:
            raise
        return _fail(f"{batch.one_line(error)} (run with --debug for the traceback)")
