"""Manifests, vocabularies and base/novel splits: the files a training or evaluation run reads.

- Manifest: JSON Lines, one clip per line: ``{"video": "videos/a.mp4", "labels": ["x", "y"]}``
  with optional ``"start"`` / ``"end"`` in seconds (a segment of the video). Relative video
  paths are relative to the manifest's folder, so a dataset folder can be moved as a whole.
- Vocabulary: a text file, one label per line (blank lines ignored), in class order.
- Split: JSON ``{"base": [...], "novel": [...]}``: base labels are trained on, novel never are.

Labels are canonicalised as ovmlv canonicalises user labels (``ovmlv.labels.canonical_label``),
so the names used here are exactly the names the classifier scores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ovmlv.labels import canonical_label


class ManifestError(ValueError):
    """A manifest, vocabulary or split file is malformed; the message names the file and line."""


@dataclass
class ManifestEntry:
    """One clip: a video file, the labels present in it, and optionally a segment of it."""

    video: str  # path of the video file (absolute once read from a manifest)
    labels: list[str]  # labels present in the clip (may be empty: a clip with none of the labels)
    start: float | None = None  # segment start in seconds (None: the start of the video)
    end: float | None = None  # segment end in seconds (None: the end of the video)


def _clean_labels(labels: Iterable[str], where: str) -> list[str]:
    """Canonical, distinct labels in their first order; a ManifestError on a non-string or empty one."""
    cleaned: list[str] = []
    for label in labels:
        if not isinstance(label, str) or not canonical_label(label):
            raise ManifestError(f"{where}: labels must be non-empty strings, got {label!r}")
        label = canonical_label(label)
        if label not in cleaned:
            cleaned.append(label)
    return cleaned


def _optional_seconds(record: dict, key: str, where: str) -> float | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ManifestError(f"{where}: {key!r} must be a non-negative number of seconds, got {value!r}")
    return float(value)


def _parse_entry(line: str, folder: Path, where: str) -> ManifestEntry:
    """One manifest line -> ManifestEntry (video path resolved against ``folder``)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - {"video", "labels", "start", "end"})
    if unknown:
        raise ManifestError(f"{where}: unknown keys {unknown} (allowed: video, labels, start, end)")
    video = record.get("video")
    if not isinstance(video, str) or not video:
        raise ManifestError(f"{where}: 'video' must be a non-empty string")
    labels = record.get("labels")
    if not isinstance(labels, list):
        raise ManifestError(f"{where}: 'labels' must be a list of strings")
    start = _optional_seconds(record, "start", where)
    end = _optional_seconds(record, "end", where)
    if start is not None and end is not None and end <= start:
        raise ManifestError(f"{where}: 'end' ({end}) must be after 'start' ({start})")
    path = Path(video).expanduser()
    resolved = os.path.normpath(path if path.is_absolute() else folder / path)
    return ManifestEntry(resolved, _clean_labels(labels, where), start, end)


def read_manifest(path: str | os.PathLike) -> list[ManifestEntry]:
    """Read a JSONL manifest (see the module docstring); blank lines are skipped.

    Raises:
        ManifestError: a line is not a valid entry (the message gives its line number).
    """
    path = Path(path)
    folder = path.resolve().parent
    entries = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                entries.append(_parse_entry(line, folder, f"{path}:{number}"))
    return entries


def write_manifest(entries: Sequence[ManifestEntry], path: str | os.PathLike) -> Path:
    """Write entries as JSONL; video paths are written as given (relative ones: to the manifest's folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for entry in entries:
            record: dict = {"video": str(entry.video), "labels": list(entry.labels)}
            if entry.start is not None:
                record["start"] = entry.start
            if entry.end is not None:
                record["end"] = entry.end
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def relative_video_path(video: str | os.PathLike, manifest_path: str | os.PathLike) -> str:
    """``video`` as a path relative to the manifest's folder (POSIX separators), for portable manifests."""
    folder = Path(manifest_path).resolve().parent
    return Path(os.path.relpath(Path(video).resolve(), folder)).as_posix()


def read_vocabulary(path: str | os.PathLike) -> list[str]:
    """Labels, one per line, in file order (blank lines ignored; duplicates ignoring case are an error)."""
    path = Path(path)
    labels: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        label = canonical_label(line)
        if not label:
            continue
        key = label.casefold()
        if key in seen:
            raise ManifestError(f"{path}:{number}: duplicate label {label!r} (first on line {seen[key]})")
        seen[key] = number
        labels.append(label)
    if not labels:
        raise ManifestError(f"{path}: the vocabulary is empty")
    return labels


def write_vocabulary(labels: Sequence[str], path: str | os.PathLike) -> Path:
    """Write one label per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
    return path


@dataclass
class Split:
    """Which labels are trained on (base) and which are held out to measure generalisation (novel)."""

    base: list[str]
    novel: list[str]

    def check(self, vocabulary: Sequence[str]) -> None:
        """Raise ManifestError if a label is in both lists, or in neither list's vocabulary."""
        overlap = sorted(set(self.base) & set(self.novel))
        if overlap:
            raise ManifestError(f"labels both base and novel: {overlap}")
        known = set(vocabulary)
        unknown = [label for label in self.base + self.novel if label not in known]
        if unknown:
            raise ManifestError(f"split labels not in the vocabulary: {unknown}")

    def to_dict(self) -> dict[str, list[str]]:
        return {"base": list(self.base), "novel": list(self.novel)}


def read_split(path: str | os.PathLike) -> Split:
    """Read a split file ``{"base": [...], "novel": [...]}`` (labels canonicalised)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(record, dict) or set(record) != {"base", "novel"}:
        raise ManifestError(f'{path}: expected an object with exactly the keys "base" and "novel"')
    lists = {}
    for key in ("base", "novel"):
        if not isinstance(record[key], list):
            raise ManifestError(f"{path}: {key!r} must be a list of labels")
        lists[key] = _clean_labels(record[key], f"{path} ({key})")
    return Split(lists["base"], lists["novel"])


def write_split(split: Split, path: str | os.PathLike) -> Path:
    """Write a split file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
