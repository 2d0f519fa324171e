"""Tests for ovmlv.label_db: keys, LRU, persistence, corruption, threads and processes."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.synchronize
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from ovmlv.label_db import LabelDB, LabelEntry

FP = "model-abc123"
PV = "attr-v1"


def _entry(seed: int, dim: int = 16, phrases: list[str] | None = None) -> LabelEntry:
    values = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return LabelEntry(values, phrases if phrases is not None else [f"phrase {seed}", "ünïcødé 字"])


def _assert_same(actual: LabelEntry | None, expected: LabelEntry) -> None:
    assert actual is not None
    assert actual.embedding.dtype == np.float32
    np.testing.assert_array_equal(actual.embedding, expected.embedding)
    assert actual.phrases == expected.phrases


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "sqlite"])
def test_round_trip_is_exact(tmp_path: Path, on_disk: bool) -> None:
    db = LabelDB(tmp_path / "labels.sqlite" if on_disk else None)
    entry = _entry(0, phrases=["orange fur", "black stripes", ""])
    db.put(FP, "tiger", PV, entry)
    got = db.get(FP, "tiger", PV)
    _assert_same(got, entry)
    assert got.embedding is not entry.embedding
    got.embedding[:] = 0  # callers may modify what they get
    got.phrases.append("changed")
    _assert_same(db.get(FP, "tiger", PV), entry)
    assert db.get(FP, "lion", PV) is None
    assert db.stats == {"memory_hits": 2, "disk_hits": 0, "misses": 1}
    db.close()


def test_label_is_canonicalised_but_case_is_kept(tmp_path: Path) -> None:
    db = LabelDB(tmp_path / "labels.sqlite")
    entry = _entry(1)
    db.put(FP, "  dog \t running ", PV, entry)
    _assert_same(db.get(FP, "dog running", PV), entry)
    _assert_same(db.get(FP, "ｄｏｇ running", PV), entry)  # NFKC: full-width letters
    assert db.get(FP, "Dog running", PV) is None
    assert db.get(FP, "dogrunning", PV) is None
    fresh = LabelDB(tmp_path / "labels.sqlite")
    _assert_same(fresh.get(FP, "dog  running", PV), entry)
    assert fresh.get(FP, "Dog running", PV) is None


def test_fingerprint_and_prompt_version_are_part_of_the_key(tmp_path: Path) -> None:
    db = LabelDB(tmp_path / "labels.sqlite")
    first, second = _entry(2), _entry(3)
    db.put(FP, "tiger", PV, first)
    assert db.get("other-model", "tiger", PV) is None
    assert db.get(FP, "tiger", "attr-v2") is None
    db.put(FP, "tiger", "attr-v2", second)
    db.put("other-model", "tiger", PV, _entry(10))
    fresh = LabelDB(tmp_path / "labels.sqlite")  # all three must live side by side on disk
    _assert_same(fresh.get(FP, "tiger", PV), first)
    _assert_same(fresh.get(FP, "tiger", "attr-v2"), second)
    _assert_same(fresh.get("other-model", "tiger", PV), _entry(10))
    assert fresh.get("third-model", "tiger", PV) is None


def test_get_many_returns_only_hits_keyed_as_passed(tmp_path: Path) -> None:
    db = LabelDB(tmp_path / "labels.sqlite", max_memory_entries=2)
    entries = {f"label {i}": _entry(i) for i in range(5)}
    db.put_many(FP, entries, PV)
    got = db.get_many(FP, ["label 0", " label  4 ", "missing", "label 2"], PV)
    assert sorted(got) == [" label  4 ", "label 0", "label 2"]
    _assert_same(got[" label  4 "], entries["label 4"])
    _assert_same(got["label 2"], entries["label 2"])
    # Labels 3 and 4 were in memory (the last two put); 0 and 2 came from disk.
    assert db.stats == {"memory_hits": 1, "disk_hits": 2, "misses": 1}


def test_memory_lru_evicts_the_oldest_and_disk_hits_come_back(tmp_path: Path) -> None:
    db = LabelDB(tmp_path / "labels.sqlite", max_memory_entries=3)
    entries = [_entry(i) for i in range(4)]
    for i in range(3):
        db.put(FP, f"l{i}", PV, entries[i])
    db.get(FP, "l0", PV)  # l0 becomes the most recently used; l1 is now the oldest
    db.put(FP, "l3", PV, entries[3])
    assert len(db) == 3
    assert db.stats["memory_hits"] == 1
    _assert_same(db.get(FP, "l1", PV), entries[1])  # evicted, served from disk
    assert db.stats == {"memory_hits": 1, "disk_hits": 1, "misses": 0}
    _assert_same(db.get(FP, "l1", PV), entries[1])  # promoted into memory
    assert db.stats == {"memory_hits": 2, "disk_hits": 1, "misses": 0}
    assert len(db) == 3


def test_memory_only_lru_forgets_evicted_entries() -> None:
    db = LabelDB(None, max_memory_entries=2)
    for i in range(3):
        db.put(FP, f"l{i}", PV, _entry(i))
    assert len(db) == 2
    assert db.get(FP, "l0", PV) is None
    _assert_same(db.get(FP, "l2", PV), _entry(2))


def test_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "nested" / "labels.sqlite"
    with LabelDB(path) as db:
        db.put_many(FP, {"tiger": _entry(4), "zebra": _entry(5, dim=7, phrases=[])}, PV)
    fresh = LabelDB(path)
    assert len(fresh) == 0
    _assert_same(fresh.get(FP, "tiger", PV), _entry(4))
    _assert_same(fresh.get(FP, "zebra", PV), _entry(5, dim=7, phrases=[]))
    assert fresh.stats == {"memory_hits": 0, "disk_hits": 2, "misses": 0}
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


@pytest.mark.parametrize("content", [os.urandom(8192), b"just some text\n" * 100, b"SQLite format 3\x00"])
def test_corrupt_file_is_moved_aside_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / "labels.sqlite"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="ovmlv.label_db"):
        db = LabelDB(path)
    assert any("corrupt" in record.getMessage() for record in caplog.records)
    moved = list(tmp_path.glob("labels.sqlite.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == content
    db.put(FP, "tiger", PV, _entry(6))
    _assert_same(LabelDB(path).get(FP, "tiger", PV), _entry(6))


def test_truncated_database_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "labels.sqlite"
    with LabelDB(path) as db:
        db.put_many(FP, {f"label {i}": _entry(i, dim=512) for i in range(200)}, PV)
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="ovmlv.label_db"):
        db = LabelDB(path)
        assert db.get(FP, "label 199", PV) is None
    assert any("corrupt" in record.getMessage() for record in caplog.records)
    assert list(tmp_path.glob("labels.sqlite.corrupt-*"))


def test_database_error_during_use_rebuilds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "labels.sqlite"
    db = LabelDB(path)
    db.put(FP, "tiger", PV, _entry(7))

    class BrokenConnection:
        def __init__(self) -> None:
            self.in_transaction = False

        def execute(self, *args: object) -> None:
            raise sqlite3.DatabaseError("database disk image is malformed")

        def close(self) -> None:
            pass

    db._conn = BrokenConnection()  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="ovmlv.label_db"):
        db.put(FP, "lion", PV, _entry(8))  # fails, rebuilds, retries on the new file
    assert any("corrupt" in record.getMessage() for record in caplog.records)
    assert list(tmp_path.glob("labels.sqlite.corrupt-*"))
    fresh = LabelDB(path)
    _assert_same(fresh.get(FP, "lion", PV), _entry(8))
    assert fresh.get(FP, "tiger", PV) is None  # it lived in the file that was moved aside


def test_unwritable_location_falls_back_to_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    with caplog.at_level(logging.WARNING, logger="ovmlv.label_db"):
        db = LabelDB(blocker / "labels.sqlite")
    assert any("memory only" in record.getMessage() for record in caplog.records)
    db.put(FP, "tiger", PV, _entry(9))
    _assert_same(db.get(FP, "tiger", PV), _entry(9))
    assert blocker.read_text() == "a file where a directory should be"


def test_sqlite_refusing_to_open_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a read-only directory does for a non-root user (root ignores permissions).
    def refuse(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(sqlite3, "connect", refuse)
    with caplog.at_level(logging.WARNING, logger="ovmlv.label_db"):
        db = LabelDB(tmp_path / "labels.sqlite")
    assert any("memory only" in record.getMessage() for record in caplog.records)
    assert not list(tmp_path.glob("labels.sqlite*"))  # nothing was moved aside as "corrupt"
    db.put(FP, "tiger", PV, _entry(9))
    _assert_same(db.get(FP, "tiger", PV), _entry(9))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_directory_falls_back_to_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with caplog.at_level(logging.WARNING, logger="ovmlv.label_db"):
            db = LabelDB(locked / "labels.sqlite")
        assert any("memory only" in record.getMessage() for record in caplog.records)
        db.put(FP, "tiger", PV, _entry(9))
        _assert_same(db.get(FP, "tiger", PV), _entry(9))
    finally:
        locked.chmod(0o700)


def test_threads_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    db = LabelDB(path, max_memory_entries=64)
    errors: list[BaseException] = []

    def work(thread_index: int) -> None:
        try:
            for i in range(50):
                db.put(FP, f"t{thread_index}-{i}", PV, _entry(thread_index * 1000 + i, dim=8))
                db.get(FP, f"t{thread_index}-{i // 2}", PV)
        except BaseException as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(db) == 64
    fresh = LabelDB(path)
    labels = [f"t{t}-{i}" for t in range(8) for i in range(50)]
    got = fresh.get_many(FP, labels, PV)
    assert len(got) == 400
    for t in range(8):
        for i in range(50):
            _assert_same(got[f"t{t}-{i}"], _entry(t * 1000 + i, dim=8))


def _write_from_process(path: str, worker: int, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    db = LabelDB(path, max_memory_entries=8)
    for i in range(200):
        # Alternate single puts and small batches to exercise both write paths.
        if i % 2:
            db.put(FP, f"p{worker}-{i}", PV, _entry(worker * 1000 + i, dim=8))
        else:
            db.put_many(FP, {f"p{worker}-{i}": _entry(worker * 1000 + i, dim=8)}, PV)
    db.close()


def test_processes_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "labels.sqlite")
    LabelDB(path).close()
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_write_from_process, args=(path, w, start)) for w in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    labels = [f"p{w}-{i}" for w in range(4) for i in range(200)]
    got = LabelDB(path).get_many(FP, labels, PV)
    assert len(got) == 800
    for w in range(4):
        for i in range(0, 200, 37):
            _assert_same(got[f"p{w}-{i}"], _entry(w * 1000 + i, dim=8))


def test_label_entry_validates_and_converts() -> None:
    entry = LabelEntry([1, 2, 3], ("a", "b"))  # type: ignore[arg-type]
    assert entry.embedding.dtype == np.float32 and entry.embedding.shape == (3,)
    assert entry.phrases == ["a", "b"]
    with pytest.raises(ValueError, match="1-D"):
        LabelEntry(np.zeros((2, 3), dtype=np.float32), [])
    with pytest.raises(ValueError, match="max_memory_entries"):
        LabelDB(None, max_memory_entries=-1)
