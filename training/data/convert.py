"""Turn dataset annotations into manifests and vocabularies.

Charades (``Charades_v1_train.csv`` / ``Charades_v1_test.csv`` and ``Charades_v1_classes.txt``):
one manifest entry per video whose labels are the names of all the actions annotated anywhere
in it. The temporal annotations (start and end of each action) are dropped: entries cover the
whole video, and training samples a random window of it, so a window may miss an action that
its video is labelled with (label noise that whole-video multi-label training accepts; Charades
is evaluated per video in the same way).

Generic CSV: a header with ``path,labels`` and labels separated by ``;`` or ``|``.

    python -m training.convert charades --csv Charades_v1_train.csv \\
        --classes Charades_v1_classes.txt --video-dir Charades_v1_480 \\
        --out-manifest data/train.jsonl --out-vocabulary data/vocabulary.txt
    python -m training.convert csv --csv clips.csv --out-manifest m.jsonl --out-vocabulary v.txt
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from ovmlv.labels import canonical_label
from training.data.manifest import (
    ManifestEntry,
    ManifestError,
    relative_video_path,
    write_manifest,
    write_vocabulary,
)

logger = logging.getLogger(__name__)

CHARADES_COLUMNS = ("id", "actions")
_CLASS_LINE = re.compile(r"^(c\d+)\s+(.+)$")
_LABEL_SEPARATORS = re.compile(r"[;|]")


def read_charades_classes(path: str | os.PathLike) -> dict[str, str]:
    """Class id -> name from lines like ``c000 Holding some clothes``, in file order."""
    classes: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _CLASS_LINE.match(line.strip())
        if match is None:
            raise ManifestError(f"{path}:{number}: expected 'c<number> <class name>', got {line!r}")
        class_id, name = match.group(1), canonical_label(match.group(2))
        if class_id in classes:
            raise ManifestError(f"{path}:{number}: class id {class_id} appears twice")
        classes[class_id] = name
    return classes


def parse_charades_actions(actions: str, classes: dict[str, str], where: str) -> list[str]:
    """Label names (class-id order, distinct) from ``c092 11.90 21.20;c147 0.00 12.60`` (may be empty)."""
    ids = []
    for segment in filter(None, (part.strip() for part in actions.split(";"))):
        fields = segment.split()
        if len(fields) != 3:
            raise ManifestError(f"{where}: bad action {segment!r} (expected 'c<id> <start> <end>')")
        if fields[0] not in classes:
            raise ManifestError(f"{where}: unknown class id {fields[0]!r}")
        ids.append(fields[0])
    order = {class_id: i for i, class_id in enumerate(classes)}
    return [classes[class_id] for class_id in sorted(set(ids), key=order.__getitem__)]


def _read_csv_rows(path: str | os.PathLike, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of a CSV with a header that has the required columns."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in required if column not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{path}: missing columns {missing} (found {reader.fieldnames})")
        return [(reader.line_num, row) for row in reader]


def charades_to_manifest(
    csv_path: str | os.PathLike,
    classes_path: str | os.PathLike,
    video_dir: str | os.PathLike,
    out_manifest: str | os.PathLike,
    out_vocabulary: str | os.PathLike,
    video_ext: str = ".mp4",
) -> list[ManifestEntry]:
    """Write a manifest (one entry per video, whole-video labels) and the class-ordered vocabulary.

    Args:
        csv_path: a Charades annotation CSV (columns include ``id`` and ``actions``).
        classes_path: ``Charades_v1_classes.txt``.
        video_dir: folder holding ``<id><video_ext>`` files.
        out_manifest: the JSONL manifest to write (video paths relative to its folder).
        out_vocabulary: the vocabulary file to write (all class names, class-id order).
        video_ext: file name extension of the videos.

    Returns:
        The entries written (video paths as written, relative to the manifest's folder).
    """
    classes = read_charades_classes(classes_path)
    entries, missing = [], 0
    for line, row in _read_csv_rows(csv_path, CHARADES_COLUMNS):
        video_id = (row["id"] or "").strip()
        if not video_id:
            raise ManifestError(f"{csv_path}:{line}: empty video id")
        labels = parse_charades_actions(row["actions"] or "", classes, f"{csv_path}:{line} ({video_id})")
        video = Path(video_dir) / f"{video_id}{video_ext}"
        missing += not video.is_file()
        entries.append(ManifestEntry(relative_video_path(video, out_manifest), labels))
    if missing:
        logger.warning("%d of %d videos are not in %s (yet)", missing, len(entries), video_dir)
    write_manifest(entries, out_manifest)
    write_vocabulary(list(classes.values()), out_vocabulary)
    logger.info(
        "wrote %d entries to %s and %d labels to %s", len(entries), out_manifest, len(classes), out_vocabulary
    )
    return entries


def csv_to_manifest(
    csv_path: str | os.PathLike, out_manifest: str | os.PathLike, out_vocabulary: str | os.PathLike
) -> list[ManifestEntry]:
    """Convert a ``path,labels`` CSV (labels ``;``- or ``|``-separated; relative paths: to the CSV's folder).

    The vocabulary is every label that occurs, sorted. Returns the entries written.
    """
    folder = Path(csv_path).resolve().parent
    entries, vocabulary = [], set()
    for line, row in _read_csv_rows(csv_path, ("path", "labels")):
        video = (row["path"] or "").strip()
        if not video:
            raise ManifestError(f"{csv_path}:{line}: empty path")
        labels = []
        for label in (canonical_label(part) for part in _LABEL_SEPARATORS.split(row["labels"] or "")):
            if label and label not in labels:
                labels.append(label)
        vocabulary.update(labels)
        path = Path(video).expanduser()
        entries.append(
            ManifestEntry(
                relative_video_path(path if path.is_absolute() else folder / path, out_manifest), labels
            )
        )
    write_manifest(entries, out_manifest)
    write_vocabulary(sorted(vocabulary), out_vocabulary)
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.convert charades|csv ...``."""
    parser = argparse.ArgumentParser(prog="python -m training.convert", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="format", required=True)
    charades = commands.add_parser("charades", help="Charades CSV + classes file")
    charades.add_argument("--csv", required=True, help="Charades_v1_train.csv or Charades_v1_test.csv")
    charades.add_argument("--classes", required=True, help="Charades_v1_classes.txt")
    charades.add_argument("--video-dir", required=True, help="folder with <id>.mp4 files")
    charades.add_argument("--video-ext", default=".mp4")
    generic = commands.add_parser("csv", help="a path,labels CSV")
    generic.add_argument("--csv", required=True)
    for command in (charades, generic):
        command.add_argument("--out-manifest", required=True)
        command.add_argument("--out-vocabulary", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.format == "charades":
            entries = charades_to_manifest(
                args.csv, args.classes, args.video_dir, args.out_manifest, args.out_vocabulary, args.video_ext
            )
        else:
            entries = csv_to_manifest(args.csv, args.out_manifest, args.out_vocabulary)
    except (ManifestError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(entries)} entries -> {args.out_manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
