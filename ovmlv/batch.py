"""Batch prediction: a manifest of videos in, one JSONL line per video out; resumable, sharded.

Manifest: a UTF-8 text file, one entry per line. A line is either a video path, or a JSON
object ``{"video": path, "labels": "a, b" | ["a", "b"]}`` (``labels`` optional: it replaces the
command's labels for that entry). Blank lines and lines starting with ``#`` are skipped.
Relative paths are resolved against the manifest's folder. A video may be listed once.

Output: one JSON object per line, in the order the entries were processed::

    {"video": <path as written in the manifest>, "ok": true, "result": {...Result.to_dict()}}
    {"video": <path as written in the manifest>, "ok": false, "error": "<one line>"}

Each line is appended and flushed as soon as its video is done, so a crash loses at most the
video in progress; a rerun skips the videos already in the output (a line cut short by a crash
is dropped first). Shard ``i`` of ``n`` takes the entries whose index (0-based, in manifest
order) satisfies ``index % n == i`` and writes its own file (:func:`shard_output_path`);
:func:`merge_shards` joins the shard files.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovmlv.errors import OvmlvError
from ovmlv.labels import LabelError, LabelLimits, parse_labels

logger = logging.getLogger(__name__)

_MANIFEST_KEYS = ("video", "labels")
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class BatchError(OvmlvError, ValueError):
    """A bad manifest, shard specification or output file; the message is one line."""


@dataclass(frozen=True)
class ManifestEntry:
    """One video of a manifest."""

    index: int  # position among the manifest's entries, 0-based (decides the shard)
    line: int  # line number in the manifest, 1-based (for messages)
    video: str  # the path as written in the manifest: the entry's key in the output
    path: Path  # the path resolved against the manifest's folder
    labels: list[str] | None  # this entry's own labels, or None for the command's labels


@dataclass
class BatchSummary:
    """What a batch run did, for the shard it ran."""

    total: int = 0  # entries in this shard
    processed: int = 0  # entries classified (or attempted) by this run
    skipped: int = 0  # entries already in the output
    ok: int = 0  # entries whose output line says ok (this run or an earlier one)
    failed: int = 0  # entries whose output line says failed (this run or an earlier one)


def one_line(error: BaseException) -> str:
    """A one-line, user-facing description of an exception."""
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    else:
        text = str(error)
    if not isinstance(error, (OvmlvError, ValueError, OSError)):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return " ".join(text.split()) or type(error).__name__


# ---- manifest -------------------------------------------------------------------------------
def _entry_from_json(text: str, where: str) -> tuple[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BatchError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(data, dict):
        raise BatchError(f"{where}: expected a JSON object with a 'video' key")
    unknown = sorted(set(data) - set(_MANIFEST_KEYS))
    if unknown:
        raise BatchError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: video, labels")
    video, labels = data.get("video"), data.get("labels")
    if not isinstance(video, str) or not video.strip():
        raise BatchError(f"{where}: 'video' must be a non-empty path string")
    if labels is not None and not (
        isinstance(labels, str) or (isinstance(labels, list) and all(isinstance(x, str) for x in labels))
    ):
        raise BatchError(f"{where}: 'labels' must be a string or a list of strings")
    return video, labels


def read_manifest(
    path: str | os.PathLike,
    default_labels: Sequence[str] | None = None,
    limits: LabelLimits = LabelLimits(),
) -> list[ManifestEntry]:
    """The entries of a manifest (format in the module docstring), all checked up front.

    Args:
        path: The manifest file.
        default_labels: The command's labels; without them every entry needs its own.
        limits: Bounds applied to each entry's own labels.

    Raises:
        BatchError: The file cannot be read, a line is malformed, a video is listed twice,
            an entry has bad labels or none at all, or there are no entries.
    """
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BatchError(f"manifest {name} is not UTF-8 text") from None
    except OSError as error:
        raise BatchError(f"cannot read manifest {name}: {error.strerror or error}") from None
    folder = Path(name).resolve().parent
    entries: list[ManifestEntry] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name} line {number}"
        video, labels = _entry_from_json(line, where) if line.startswith("{") else (line, None)
        if video in first_line:
            raise BatchError(f"{where}: {video!r} is already listed on line {first_line[video]}")
        first_line[video] = number
        if labels is not None:
            try:
                labels = parse_labels(labels, limits)
            except LabelError as error:
                raise BatchError(f"{where}: {error}") from None
        elif default_labels is None:
            raise BatchError(f"{where}: this entry has no labels; give --labels or --labels-file")
        resolved = Path(video).expanduser()
        resolved = resolved if resolved.is_absolute() else folder / resolved
        entries.append(ManifestEntry(len(entries), number, video, resolved, labels))
    if not entries:
        raise BatchError(f"manifest {name} lists no videos")
    return entries


# ---- shards ---------------------------------------------------------------------------------
def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    match = _SHARD.match(text)
    if not match:
        raise BatchError(f"--shard must look like i/n (e.g. 0/4), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if not 0 <= index < count:
        raise BatchError(f"--shard {text}: need 0 <= i < n")
    return index, count


def shard_from_env(environ: Mapping[str, str]) -> tuple[int, int] | None:
    """(RANK, WORLD_SIZE) as set by torchrun, or None when WORLD_SIZE is not set."""
    world, rank = environ.get("WORLD_SIZE"), environ.get("RANK")
    if world is None:
        return None
    if rank is None:
        raise BatchError("WORLD_SIZE is set but RANK is not; set both or use --shard i/n")
    return parse_shard(f"{rank}/{world}")


def shard_output_path(output: str | os.PathLike, index: int, count: int) -> Path:
    """``results.jsonl`` -> ``results.shard-i-of-n.jsonl`` (unchanged when n == 1)."""
    output = Path(output)
    if count == 1:
        return output
    return output.with_name(f"{output.stem}.shard-{index}-of-{count}{output.suffix}")


def find_shard_files(output: str | os.PathLike) -> list[Path]:
    """The complete set of shard files next to ``output`` (BatchError if it is not complete)."""
    output = Path(output)
    pattern = re.compile(rf"^{re.escape(output.stem)}\.shard-(\d+)-of-(\d+){re.escape(output.suffix)}$")
    found: dict[int, dict[int, Path]] = {}
    for candidate in output.parent.iterdir() if output.parent.is_dir() else []:
        match = pattern.match(candidate.name)
        if match:
            found.setdefault(int(match.group(2)), {})[int(match.group(1))] = candidate
    if len(found) != 1:
        what = "no shard files" if not found else f"shard files of several sizes ({sorted(found)})"
        raise BatchError(f"found {what} for {output}; name the shard files to merge")
    count, shards = next(iter(found.items()))
    missing = [str(shard_output_path(output, i, count).name) for i in range(count) if i not in shards]
    if missing:
        raise BatchError(f"shard file(s) missing: {', '.join(missing)}")
    return [shards[i] for i in range(count)]


# ---- output file ----------------------------------------------------------------------------
def read_results(path: Path, repair: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """(line, record) of every line of a JSONL results file (empty if it does not exist).

    A last line without its newline was cut short by a crash: it is dropped with a warning,
    and with ``repair`` also cut from the file so that appending can continue.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise BatchError(f"cannot read {path}: {error.strerror or error}") from None
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        logger.warning("%s: dropping an incomplete last line (interrupted run?)", path)
        if repair:
            with open(path, "r+b") as handle:
                handle.truncate(keep)
        data = data[:keep]
    records = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not (isinstance(record, dict) and isinstance(record.get("video"), str) and "ok" in record):
            raise BatchError(f"{path} line {number} is not an ovmlv result line; is this the right file?")
        records.append((line, record))
    return records


def _rewrite(path: Path, lines: Iterable[str]) -> None:
    """Replace ``path`` with ``lines`` atomically (a temporary file, then a rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)
    os.replace(temporary, path)


def plan_batch(
    entries: Sequence[ManifestEntry], output: Path, retry_failed: bool = False
) -> tuple[list[ManifestEntry], BatchSummary]:
    """The entries still to do, and a summary counting those already in ``output``.

    With ``retry_failed`` the failed lines of these entries are removed from the file first,
    so that the file keeps one line per video.
    """
    records = read_results(output, repair=True)
    latest = {record["video"]: record for _, record in records}
    wanted = {entry.video for entry in entries}
    retry = {v for v, r in latest.items() if v in wanted and not r["ok"]} if retry_failed else set()
    if retry:
        _rewrite(output, [line for line, record in records if record["video"] not in retry])
    summary = BatchSummary(total=len(entries))
    todo = []
    for entry in entries:
        record = latest.get(entry.video)
        if record is None or entry.video in retry:
            todo.append(entry)
            continue
        summary.skipped += 1
        summary.ok += bool(record["ok"])
        summary.failed += not record["ok"]
    return todo, summary


def run_batch(
    todo: Sequence[ManifestEntry],
    output: Path,
    classify: Callable[[ManifestEntry], dict[str, Any]],
    summary: BatchSummary,
    progress: bool = False,
) -> BatchSummary:
    """Classify each entry and append its line to ``output`` (flushed after every entry).

    Args:
        todo: The entries to run (see :func:`plan_batch`).
        output: The JSONL file (created if needed).
        classify: Entry -> ``Result.to_dict()``; any exception it raises marks that entry failed.
        summary: Counts so far; updated in place and returned.
        progress: Show a progress bar on stderr (log lines are printed above it).
    """
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with (
        open(output, "a", encoding="utf-8") as handle,
        tqdm(total=len(todo), unit="video", disable=not progress, dynamic_ncols=True) as bar,
        logging_redirect_tqdm() if progress else nullcontext(),
    ):
        for entry in todo:
            try:
                record = {"video": entry.video, "ok": True, "result": classify(entry)}
            except Exception as error:  # one bad video must not stop the batch
                logger.info("%s failed: %s", entry.video, one_line(error))
                logger.debug("traceback of %s", entry.video, exc_info=True)
                record = {"video": entry.video, "ok": False, "error": one_line(error)}
            handle.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
            handle.flush()
            summary.processed += 1
            summary.ok += record["ok"]
            summary.failed += not record["ok"]
            bar.update(1)
    return summary


def merge_shards(output: Path, shards: Sequence[Path]) -> tuple[int, int]:
    """Join shard files into ``output`` (one line per video; an ok line wins over a failed one).

    Returns:
        (number of videos, number of them failed).
    """
    if output.resolve() in {shard.resolve() for shard in shards}:
        raise BatchError(f"{output} is also one of the shard files; write the merge elsewhere")
    merged: dict[str, tuple[str, dict[str, Any]]] = {}
    for shard in shards:
        if not shard.is_file():
            raise BatchError(f"shard file {shard} does not exist")
        for line, record in read_results(shard):
            previous = merged.get(record["video"])
            if previous is None or record["ok"] or not previous[1]["ok"]:
                merged[record["video"]] = (line, record)
    _rewrite(output, [line for line, _ in merged.values()])
    return len(merged), sum(not record["ok"] for _, record in merged.values())
