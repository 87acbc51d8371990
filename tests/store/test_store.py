"""The node-local run store: history and output retention, damaged files refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from odin import config
from odin.cluster.model import Run, RunReason, RunStatus
from odin.errors import Unavailable
from odin.store.sqlite import Store


def finished(job_id: str, k: int) -> Run:
    return Run(
        id=f"{job_id}@{k}",
        job_id=job_id,
        owner_uid=1000,
        instant=float(k),
        reason=RunReason.SCHEDULE,
        node="n1",
        planned_at=float(k),
        status=RunStatus.SUCCEEDED,
    )


def test_history_and_output_stay_within_their_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "RUNS_KEPT_IN_STORE_PER_JOB", 10)
    monkeypatch.setattr(config, "OUTPUT_BYTES_KEPT_PER_JOB", 5000)
    monkeypatch.setattr(config, "STORE_TRIM_EVERY", 5)
    store = Store(tmp_path / "store.db")
    for k in range(100):
        run = finished("aaaaaaaaaaaa", k)
        assert store.save_run(run)
        assert store.save_output(run.id, run.job_id, b"x" * 1000, 1000, 0)
    kept = store.runs("aaaaaaaaaaaa", 1000)
    assert 10 <= len(kept) < 10 + 5
    assert kept[0].id == "aaaaaaaaaaaa@99"  # the newest are the ones kept
    outputs = [store.output(f"aaaaaaaaaaaa@{k}") for k in range(100)]
    assert sum(1 for o in outputs if o is not None) < 5 + 5
    assert outputs[99] is not None and outputs[0] is None
    store.forget_job("aaaaaaaaaaaa")
    assert store.runs("aaaaaaaaaaaa", 10) == [] and store.output("aaaaaaaaaaaa@99") is None


def test_a_damaged_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(Unavailable, match="move it aside"):
        Store(path)


def test_saves_handed_to_the_writer_are_seen_by_the_next_read(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    for k in range(200):
        run = finished("bbbbbbbbbbbb", k)
        store.later(store.save_output, run.id, run.job_id, f"out {k}".encode(), 5, 0)
        store.later(store.save_run, run)
        # a read right after the hand-over sees it, however far the writer thread got
        assert store.output(run.id) == (f"out {k}".encode(), 5, 0)
    assert store.runs("bbbbbbbbbbbb", 1)[0].id == "bbbbbbbbbbbb@199"
    store.later(store.save_run, finished("bbbbbbbbbbbb", 200))
    store.forget_job("bbbbbbbbbbbb")  # a save queued before a removal does not outlive it
    assert store.runs("bbbbbbbbbbbb", 10) == []
    store.later(store.save_run, finished("cccccccccccc", 1))
    store.close()  # closing saves what is queued
    assert Store(tmp_path / "store.db").runs("cccccccccccc", 1)[0].id == "cccccccccccc@1"


def test_a_save_that_fails_in_a_batch_costs_the_others_nothing(tmp_path: Path) -> None:
    """Queued saves are written in one transaction; one that SQLite refuses (here an
    output over the connection's size limit, as a full disk refuses one) is rolled back
    with its batch, and each save is then made alone with its own fallback."""
    store = Store(tmp_path / "store.db")
    store._db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 16 * 1024)
    big = b"y" * (64 * 1024)
    for k in range(300):
        run = finished("dddddddddddd", k)
        data = big if k == 150 else f"out {k}".encode()
        store.later(store.save_output, run.id, run.job_id, data, len(data), 0)
        store.later(store.save_run, run)
    assert [r.id for r in store.runs("dddddddddddd", 1000)] == [
        f"dddddddddddd@{k}" for k in reversed(range(300))
    ]
    for k in (0, 149, 151, 299):
        assert store.output(f"dddddddddddd@{k}") == (f"out {k}".encode(), len(f"out {k}"), 0)
    shortened = store.output("dddddddddddd@150")
    assert shortened is not None
    data, total, dropped = shortened
    assert data.endswith(big[-config.OUTPUT_TAIL_BYTES :]) and b"disk is full" in data
    assert total == len(big) and dropped == len(big) - config.OUTPUT_TAIL_BYTES
    assert store.degraded is False  # the saves after it went through


def test_a_read_waits_for_the_saves_before_it_not_for_those_that_keep_coming(
    tmp_path: Path,
) -> None:
    """Under a stream of saves faster than the writer (each takes 2 ms here: 500 a second;
    another thread queues 1,000 a second), a read still returns, having seen every save queued
    before it; before, a read waited until the queue was empty, which the stream never lets
    happen."""
    import threading
    import time

    store = Store(tmp_path / "store.db")
    stop = threading.Event()

    def slow(run: Run) -> None:
        time.sleep(0.002)
        store.save_run(run)

    def feed() -> None:
        k = 0
        while not stop.is_set():
            store.later(slow, finished("dddddddddddd", k))
            k += 1
            if k % 10 == 0:
                time.sleep(0.01)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    seen: list[str] = []
    try:
        time.sleep(0.2)
        store.later(store.save_run, finished("eeeeeeeeeeee", 1))
        reader = threading.Thread(
            target=lambda: seen.extend(r.id for r in store.runs("eeeeeeeeeeee", 5))
        )
        reader.start()
        reader.join(timeout=20)  # its prefix takes about 0.2 s; the stream never ends
        answered = not reader.is_alive()
        behind = store._queued - store._done
    finally:
        stop.set()
        feeder.join()
    assert answered and seen == ["eeeeeeeeeeee@1"]
    assert behind > 0  # the stream was still ahead of the writer when the read returned
    store.close()


def test_a_users_outputs_are_scanned_only_near_their_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One user with many runs: below the per-user bound no save scans the user's rows (each
    scan read every output of the user, and under overload they outweighed the saves); past
    it, the oldest are dropped and the bound holds."""
    monkeypatch.setattr(config, "OUTPUT_BYTES_KEPT_PER_USER", 50_000)
    store = Store(tmp_path / "store.db")
    scans: list[int] = []
    trim = store._trim_user_output
    monkeypatch.setattr(store, "_trim_user_output", lambda uid: (scans.append(uid), trim(uid)))
    for k in range(40):  # 40 KB: under the bound
        run = finished(f"{k % 4:012x}", k)
        store.save_output(run.id, run.job_id, b"y" * 1000, 1000, 0, owner_uid=1000)
    assert scans == []
    for k in range(40, 100):  # 100 KB in all: past it
        run = finished(f"{k % 4:012x}", k)
        store.save_output(run.id, run.job_id, b"y" * 1000, 1000, 0, owner_uid=1000)
    assert 0 < len(scans) < 60
    kept = store._read("SELECT sum(length(data)) FROM outputs WHERE owner_uid = 1000", ())
    assert kept[0][0] <= 50_000 + 1000
    assert store.output(f"{99 % 4:012x}@99") is not None  # the newest are kept
