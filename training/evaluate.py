"""Evaluate a model on a manifest: mAP, per-class AP, base/novel mAP and their harmonic mean, ECE.

Each video is decoded and encoded once (``VideoClassifier.encode_video``); every requested
system then scores the same window embeddings:

- ``none``: the model as it is (``VideoClassifier.score`` at ``alpha``);
- ``zero-shot``: plain template text embeddings and the video encoder at alpha = 0 (frame-wise
  CLIP): what the backbone gives with no training and no LLM;
- ``attributes``: zero-shot attributes (DESIGN §2.3): template + LLM-written phrases, alpha = 0.

A clip's score for a label is the maximum over its windows (over the windows that overlap the
clip's segment when the manifest entry has one). Each system also gets the threshold with the
best micro-F1 over the evaluated labels (``f1_threshold``); ``--write-threshold`` stores the
tuned model's as the checkpoint's default threshold. Choose it on held-out clips of the base
labels (a validation manifest, ``--split base``), never on the test set.

    python -m training.evaluate --checkpoint runs/x/final --manifest test.jsonl \\
        --vocabulary vocabulary.txt --split-file split.json --baseline none --baseline zero-shot
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ovmlv.checkpoint import is_checkpoint_dir, set_checkpoint_threshold
from ovmlv.classifier import VideoClassifier, VideoState
from ovmlv.decode import VideoDecodeError
from ovmlv.errors import OvmlvError
from training.data.manifest import (
    ManifestEntry,
    ManifestError,
    Split,
    read_manifest,
    read_split,
    read_vocabulary,
)
from training.metrics import (
    average_precision,
    best_f1_threshold,
    expected_calibration_error,
    harmonic_mean,
    nan_mean,
)

logger = logging.getLogger(__name__)

BASELINES = ("none", "zero-shot", "attributes")
_TEXT_CHUNK = 256  # labels per text-tower batch


@torch.no_grad()
def baseline_label_embeddings(
    classifier: VideoClassifier, vocabulary: list[str], baseline: str
) -> torch.Tensor:
    """Label embeddings [V, D] of a baseline system ("zero-shot" or "attributes"), built from the model."""
    model = classifier.model
    parts = []
    for start in range(0, len(vocabulary), _TEXT_CHUNK):
        labels = vocabulary[start : start + _TEXT_CHUNK]
        if baseline == "zero-shot":
            parts.append(model.zero_shot_label_embeddings(labels))
        elif baseline == "attributes":  # phrases from the label database: the LLM runs once per label
            phrases = {
                label: list(entry.phrases) for label, entry in classifier.labels.entries(labels).items()
            }
            parts.append(model.attribute_label_embeddings(labels, phrases))
        else:
            raise ValueError(f"unknown baseline {baseline!r} (choose from {BASELINES})")
    return torch.cat(parts).float()


def window_probabilities(
    classifier: VideoClassifier,
    state: VideoState,
    vocabulary: list[str],
    alpha: float,
    label_embeddings: torch.Tensor | None,
) -> np.ndarray:
    """Probabilities [W, V]: ``classifier.score`` when no label embeddings are given, else the model's scorer."""
    if label_embeddings is None:
        columns = []
        step = classifier.label_limits.max_labels
        for start in range(0, len(vocabulary), step):
            chunk = vocabulary[start : start + step]
            result = classifier.score(state, chunk, alpha=alpha)
            if list(result.labels) != chunk:
                raise ValueError("vocabulary labels must be canonical and distinct (use read_vocabulary)")
            columns.append(result.timeline)
        return np.concatenate(columns, axis=1)
    model = classifier.model
    with torch.no_grad():
        windows = state.embeddings_at(alpha).to(model.device)
        probs = model.probabilities(windows, label_embeddings.to(model.device))
    return probs.float().cpu().numpy()


def segment_windows(times: np.ndarray, entry: ManifestEntry) -> np.ndarray:
    """Boolean mask [W] of the windows overlapping the entry's segment (all windows if none does)."""
    start = -math.inf if entry.start is None else entry.start
    end = math.inf if entry.end is None else entry.end
    mask = (times[:, 1] > start) & (times[:, 0] < end)
    return mask if mask.any() else np.ones(len(times), dtype=bool)


def _targets(entry: ManifestEntry, index: dict[str, int]) -> np.ndarray:
    targets = np.zeros(len(index), dtype=np.float32)
    for label in entry.labels:
        if label in index:  # labels outside the evaluated vocabulary are ignored
            targets[index[label]] = 1.0
    return targets


def _system_report(
    scores: np.ndarray, targets: np.ndarray, vocabulary: list[str], split: Split | None
) -> dict:
    """Metrics of one system from clip scores and targets [N, V]; NaN becomes None (valid JSON)."""
    ap = average_precision(torch.from_numpy(scores), torch.from_numpy(targets))
    per_class = dict(zip(vocabulary, ap.tolist()))
    report = {"map": nan_mean(ap), "base_map": math.nan, "novel_map": math.nan, "harmonic_mean": math.nan}
    if split is not None:
        report["base_map"] = nan_mean(torch.tensor([per_class[x] for x in split.base if x in per_class]))
        report["novel_map"] = nan_mean(torch.tensor([per_class[x] for x in split.novel if x in per_class]))
        report["harmonic_mean"] = harmonic_mean(report["base_map"], report["novel_map"])
    report["ece"] = expected_calibration_error(torch.from_numpy(scores), torch.from_numpy(targets))
    report["f1_threshold"], report["best_f1"] = math.nan, math.nan
    if targets.size and targets.max() > 0.5:  # the threshold with the best micro-F1 over these labels
        report["f1_threshold"], report["best_f1"] = best_f1_threshold(
            torch.from_numpy(scores), torch.from_numpy(targets)
        )
    report["per_class_ap"] = per_class
    return _nan_to_none(report)


def _nan_to_none(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    return value


def evaluate(
    classifier: VideoClassifier,
    entries: Sequence[ManifestEntry],
    vocabulary: Sequence[str],
    split: Split | None = None,
    baseline: str | Sequence[str] = "none",
    window_s: float = 2.0,
    alpha: float = 1.0,
) -> dict:
    """Score every entry with every requested system and compute the metrics.

    Args:
        classifier: the model to evaluate. Its label cache is keyed by the model's fingerprint
            taken when the classifier was built: wrap a model whose weights changed in a new one.
        entries: the clips; several entries may share a video (encoded once).
        vocabulary: the labels evaluated (canonical, distinct).
        split: base/novel labels, for base mAP, novel mAP and their harmonic mean.
        baseline: one system name or several (see ``BASELINES``).
        window_s: window length in seconds.
        alpha: interpolation of the "none" system (1: the tuned model).

    Returns:
        ``{"systems": {name: {"map", "base_map", "novel_map", "harmonic_mean", "ece",
        "per_class_ap": {label: ap}}}, "num_videos": evaluated entries, "skipped": entries
        whose video could not be read, "model", "window_s"}``; undefined numbers are None.
    """
    systems = [baseline] if isinstance(baseline, str) else list(dict.fromkeys(baseline))
    unknown = [name for name in systems if name not in BASELINES]
    if unknown or not systems:
        raise ValueError(f"unknown baseline(s) {unknown} (choose from {BASELINES})")
    vocabulary = list(vocabulary)
    index = {label: i for i, label in enumerate(vocabulary)}
    embeddings = {
        name: None if name == "none" else baseline_label_embeddings(classifier, vocabulary, name)
        for name in systems
    }
    alphas = {name: alpha if name == "none" else 0.0 for name in systems}
    groups: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(entry.video, []).append(i)
    scores: dict[str, list[np.ndarray]] = {name: [] for name in systems}
    targets, skipped = [], 0
    for video, members in groups.items():
        try:
            state = classifier.encode_video(video, window_s=window_s)
        except VideoDecodeError as exc:
            logger.warning("skipping %s: %s", video, exc)
            skipped += len(members)
            continue
        for name in systems:
            probs = window_probabilities(classifier, state, vocabulary, alphas[name], embeddings[name])
            scores[name].extend(probs[segment_windows(state.times, entries[i])].max(axis=0) for i in members)
        targets.extend(_targets(entries[i], index) for i in members)
    target_matrix = np.stack(targets) if targets else np.zeros((0, len(vocabulary)), dtype=np.float32)
    report_systems = {}
    for name in systems:
        score_matrix = np.stack(scores[name]) if scores[name] else np.zeros_like(target_matrix)
        report_systems[name] = _system_report(score_matrix, target_matrix, vocabulary, split)
    return {
        "systems": report_systems,
        "num_videos": len(targets),
        "skipped": skipped,
        "model": classifier.name,
        "window_s": window_s,
    }


def _cell(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:6.2f}"


def format_table(report: dict) -> str:
    """A readable summary: one row per system, then per-class AP (percent) with one column per system."""
    systems = report["systems"]
    lines = [
        f"{report['num_videos']} videos evaluated, {report['skipped']} skipped (unreadable)",
        "",
        f"{'system':<12} {'mAP':>6} {'base':>6} {'novel':>6} {'HM':>6} {'ECE':>6} {'F1':>6} {'at p':>6}",
    ]
    for name, metrics in systems.items():
        values = [metrics[key] for key in ("map", "base_map", "novel_map", "harmonic_mean", "ece", "best_f1")]
        at = metrics["f1_threshold"]
        cells = " ".join(_cell(value) for value in values) + ("     - " if at is None else f" {at:6.2f}")
        lines.append(f"{name:<12} {cells}")
    labels = list(next(iter(systems.values()))["per_class_ap"]) if systems else []
    width = max([len("label")] + [len(label) for label in labels])
    lines += ["", f"{'label':<{width}} " + " ".join(f"{name:>10}" for name in systems)]
    for label in labels:
        cells = " ".join(f"{_cell(systems[name]['per_class_ap'][label]):>10}" for name in systems)
        lines.append(f"{label:<{width}} {cells}")
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", required=True, help="checkpoint directory, preset name or hf-hub:org/repo"
    )
    parser.add_argument("--manifest", required=True, help="JSONL manifest of the clips to evaluate")
    parser.add_argument("--vocabulary", required=True, help="labels, one per line")
    parser.add_argument("--split-file", help='JSON {"base": [...], "novel": [...]}')
    parser.add_argument("--split", choices=("base", "novel", "all"), default="all", help="labels evaluated")
    parser.add_argument(
        "--baseline", action="append", choices=BASELINES, help="system(s) to evaluate (repeatable)"
    )
    parser.add_argument("--window", type=float, default=2.0, help="window length in seconds")
    parser.add_argument("--alpha", type=float, default=1.0, help="interpolation of the 'none' system")
    parser.add_argument("--device", help="default: CUDA if available, else CPU")
    parser.add_argument(
        "--dtype", choices=("bfloat16", "float16", "float32"), help="default: ovmlv's (bfloat16)"
    )
    parser.add_argument("--label-db", default="default", help="label cache file ('none': memory only)")
    parser.add_argument("--output", help="write the JSON report here")
    parser.add_argument(
        "--write-threshold",
        action="store_true",
        help="store the tuned model's best-F1 threshold as the checkpoint's default (a local checkpoint)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints the table, writes the JSON report if asked; exit 2 on bad input."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        entries, vocabulary = read_manifest(args.manifest), read_vocabulary(args.vocabulary)
        split = read_split(args.split_file) if args.split_file else None
        if split is not None:
            split.check(vocabulary)
            if args.split != "all":
                chosen = set(split.base if args.split == "base" else split.novel)
                vocabulary = [label for label in vocabulary if label in chosen]
        elif args.split != "all":
            raise ManifestError(f"--split {args.split} needs --split-file")
        if args.write_threshold and not is_checkpoint_dir(args.checkpoint):
            raise ValueError(f"--write-threshold needs a local checkpoint directory, not {args.checkpoint!r}")
        if args.write_threshold and "none" not in (args.baseline or ["none"]):
            raise ValueError("--write-threshold needs the 'none' system (the tuned model)")
        classifier = VideoClassifier.from_pretrained(
            args.checkpoint,
            device=args.device,
            dtype=getattr(torch, args.dtype) if args.dtype else None,
            label_db_path=None if args.label_db == "none" else args.label_db,
        )
        report = evaluate(
            classifier, entries, vocabulary, split, args.baseline or ["none"], args.window, args.alpha
        )
        threshold = report["systems"].get("none", {}).get("f1_threshold")
        if args.write_threshold:
            if threshold is None:
                raise ValueError("no positive label in the manifest: no threshold to choose")
            set_checkpoint_threshold(
                args.checkpoint,
                threshold,
                {
                    "threshold": {
                        "best_f1": report["systems"]["none"]["best_f1"],
                        "manifest": str(args.manifest),
                    }
                },
            )
    except (ManifestError, OvmlvError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    if args.write_threshold:
        print(f"wrote threshold {threshold:.2f} to {Path(args.checkpoint) / 'config.json'}")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
