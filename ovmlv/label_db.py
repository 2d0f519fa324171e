"""The label-embedding database (DESIGN 2.5): a bounded in-memory LRU over an SQLite file.

Entries are keyed by (model fingerprint, canonical label, prompt version), so a new model or a
new prompt never reads a stale embedding. The file is shared safely between threads (one
connection behind a lock) and processes (WAL journal, busy timeout, retries). A cache must
never take the application down: a corrupt file is moved aside and rebuilt, an unwritable
location falls back to memory only, each with a logged warning.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

__all__ = ["LabelDB", "LabelEntry"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_SCHEMA_VERSION = 1
_COLUMNS = ("fingerprint", "label", "prompt_version", "dim", "embedding", "phrases", "created_at")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS label_embeddings (
    fingerprint TEXT NOT NULL,
    label TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    dim INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    phrases TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (fingerprint, label, prompt_version)
)
"""
_BUSY_TIMEOUT_S = 30.0
_LOCK_RETRIES = 5
_SQL_VARIABLES = 500  # labels per IN (...) query, below SQLite's oldest parameter limit


@dataclass(frozen=True, eq=False)
class LabelEntry:
    """One cached label: its embedding and the attribute phrases that explain it."""

    embedding: np.ndarray  # float32 [D]
    phrases: list[str]  # attribute phrases shown to the user (may be empty)

    def __post_init__(self) -> None:
        embedding = np.asarray(self.embedding, dtype=np.float32)
        if embedding.ndim != 1:
            raise ValueError(f"LabelEntry.embedding must be 1-D, got shape {embedding.shape}")
        object.__setattr__(self, "embedding", embedding)
        object.__setattr__(self, "phrases", [str(p) for p in self.phrases])

    def copy(self) -> LabelEntry:
        """A deep copy, so that callers may modify what they are given."""
        return LabelEntry(self.embedding.copy(), list(self.phrases))


class _CorruptError(Exception):
    """The file is not a usable label database."""


def _canonical_label(label: str) -> str:
    # Same rule as ovmlv.labels.canonical_label: NFKC, collapsed whitespace, case kept.
    return " ".join(unicodedata.normalize("NFKC", label).split())


def _is_locked(error: sqlite3.OperationalError) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message


class LabelDB:
    """Label embeddings and attribute phrases, cached in memory and (optionally) on disk.

    Args:
        path: SQLite file; parent directories are created. None keeps everything in memory.
        max_memory_entries: Bound of the in-memory LRU layer (0 disables it).
    """

    def __init__(self, path: str | os.PathLike | None = None, max_memory_entries: int = 4096) -> None:
        if max_memory_entries < 0:
            raise ValueError(f"max_memory_entries must be >= 0, got {max_memory_entries}")
        self.path = Path(path).expanduser() if path is not None else None
        self.max_memory_entries = max_memory_entries
        self.stats: dict[str, int] = {"memory_hits": 0, "disk_hits": 0, "misses": 0}
        self._memory: OrderedDict[tuple[str, str, str], LabelEntry] = OrderedDict()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        if self.path is not None:
            self._open()

    # ----------------------------------------------------------------- public API

    def get(self, fingerprint: str, label: str, prompt_version: str) -> LabelEntry | None:
        """The entry for `label`, or None if it was never stored under this fingerprint and prompt."""
        return self.get_many(fingerprint, [label], prompt_version).get(label)

    def get_many(self, fingerprint: str, labels: Sequence[str], prompt_version: str) -> dict[str, LabelEntry]:
        """The stored entries among `labels`, keyed by the label as passed (misses are absent)."""
        found: dict[str, LabelEntry] = {}
        with self._lock:
            missing: dict[str, list[str]] = {}
            for label in labels:
                key = (fingerprint, _canonical_label(label), prompt_version)
                entry = self._memory.get(key)
                if entry is not None:
                    self._memory.move_to_end(key)
                    self.stats["memory_hits"] += 1
                    found[label] = entry.copy()
                else:
                    missing.setdefault(key[1], []).append(label)
            if not missing:
                return found
            from_disk = self._disk(lambda: self._select(fingerprint, list(missing), prompt_version), {})
            for canonical, passed in missing.items():
                entry = from_disk.get(canonical)
                self.stats["disk_hits" if entry is not None else "misses"] += len(passed)
                if entry is not None:
                    self._remember((fingerprint, canonical, prompt_version), entry)
                    found.update((label, entry.copy()) for label in passed)
        return found

    def put(self, fingerprint: str, label: str, prompt_version: str, entry: LabelEntry) -> None:
        """Store (or replace) the entry for `label`."""
        self.put_many(fingerprint, {label: entry}, prompt_version)

    def put_many(self, fingerprint: str, entries: Mapping[str, LabelEntry], prompt_version: str) -> None:
        """Store (or replace) several entries in one transaction."""
        rows = []
        with self._lock:
            for label, entry in entries.items():
                canonical = _canonical_label(label)
                self._remember((fingerprint, canonical, prompt_version), entry.copy())
                blob = entry.embedding.astype("<f4").tobytes()
                phrases = json.dumps(list(entry.phrases), ensure_ascii=False)
                created_at = time.time()
                rows.append(
                    (fingerprint, canonical, prompt_version, entry.embedding.size, blob, phrases, created_at)
                )
            self._disk(lambda: self._insert(rows), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._memory)

    def close(self) -> None:
        """Close the file; the instance keeps working from memory only."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            self.path = None

    def __enter__(self) -> LabelDB:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- memory layer

    def _remember(self, key: tuple[str, str, str], entry: LabelEntry) -> None:
        if self.max_memory_entries == 0:
            return
        self._memory[key] = entry
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_memory_entries:
            self._memory.popitem(last=False)  # least recently used

    # ----------------------------------------------------------------- disk layer

    def _open(self) -> None:
        """Connect to `self.path`; rebuild it if corrupt, fall back to memory if unusable."""
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._conn = self._connect()
            except _CorruptError as error:
                self._move_aside(error)
                self._conn = self._connect()
        except (OSError, sqlite3.Error, _CorruptError) as error:
            logger.warning("Label database %s is unusable (%s); caching in memory only", self.path, error)
            self._conn = None
            self.path = None
        self._pid = os.getpid()

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        conn = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            for attempt in range(_LOCK_RETRIES + 1):
                try:
                    self._prepare(conn)
                    return conn
                except sqlite3.OperationalError as error:
                    if not _is_locked(error) or attempt == _LOCK_RETRIES:
                        raise
                    time.sleep(0.05 * 2**attempt)
        except sqlite3.OperationalError:
            conn.close()
            raise
        except (sqlite3.DatabaseError, _CorruptError) as error:
            conn.close()
            raise _CorruptError(str(error)) from error
        raise AssertionError("unreachable")

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        check = conn.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise _CorruptError(f"integrity check failed: {check}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(_SCHEMA)
        columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(label_embeddings)"))
        if columns != _COLUMNS:
            raise _CorruptError(f"unexpected columns {columns}")
        conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def _move_aside(self, reason: object) -> None:
        """Rename the corrupt file (and its WAL sidecars) to `<name>.corrupt-<timestamp>`."""
        assert self.path is not None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        counter = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{counter}")
            counter += 1
        try:
            os.replace(self.path, target)
        except FileNotFoundError:
            pass  # another process moved it first
        for suffix in ("-wal", "-shm", "-journal"):
            sidecar = self.path.with_name(self.path.name + suffix)
            try:
                os.replace(sidecar, target.with_name(target.name + suffix))
            except FileNotFoundError:
                pass
        logger.warning(
            "Label database %s is corrupt (%s); moved to %s and rebuilt", self.path, reason, target
        )

    def _disk(self, operation: Callable[[], _T], default: _T) -> _T:
        """Run a disk operation with retries; on failure warn and return `default`."""
        if self.path is None:
            return default
        if self._conn is None or self._pid != os.getpid():
            self._conn = None  # a connection must not cross a fork
            self._open()
            if self._conn is None:
                return default
        rebuilt = False
        for attempt in range(_LOCK_RETRIES + 1):
            try:
                return operation()
            except sqlite3.OperationalError as error:
                if _is_locked(error) and attempt < _LOCK_RETRIES:
                    time.sleep(0.05 * 2**attempt)
                    continue
                logger.warning("Label database %s: %s; continuing without it", self.path, error)
                return default
            except sqlite3.DatabaseError as error:
                if rebuilt:
                    break
                self._rebuild(error)
                rebuilt = True
                if self._conn is None:
                    break
        return default

    def _rebuild(self, error: sqlite3.DatabaseError) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._move_aside(error)
        self._open()

    def _select(self, fingerprint: str, labels: list[str], prompt_version: str) -> dict[str, LabelEntry]:
        assert self._conn is not None
        entries: dict[str, LabelEntry] = {}
        for start in range(0, len(labels), _SQL_VARIABLES):
            chunk = labels[start : start + _SQL_VARIABLES]
            query = (
                "SELECT label, dim, embedding, phrases FROM label_embeddings "
                f"WHERE fingerprint = ? AND prompt_version = ? AND label IN ({', '.join('?' * len(chunk))})"
            )
            for label, dim, blob, phrases in self._conn.execute(query, (fingerprint, prompt_version, *chunk)):
                entry = _decode(dim, blob, phrases)
                if entry is not None:
                    entries[label] = entry
        return entries

    def _insert(self, rows: list[tuple]) -> None:
        assert self._conn is not None
        if not rows:
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(
                "INSERT OR REPLACE INTO label_embeddings "
                "(fingerprint, label, prompt_version, dim, embedding, phrases, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise


def _decode(dim: object, blob: object, phrases: object) -> LabelEntry | None:
    """A row back into an entry; None for a damaged row (treated as a miss)."""
    try:
        embedding = np.frombuffer(blob, dtype="<f4").astype(np.float32)  # a fresh, writable copy
        if embedding.size != dim:
            return None
        parsed = json.loads(phrases)
        if not isinstance(parsed, list):
            return None
        return LabelEntry(embedding, [str(p) for p in parsed])
    except (TypeError, ValueError):
        return None
