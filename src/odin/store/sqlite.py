"""Node-local SQLite: full run output and the history older than the replicated window.

Storage only moves bytes: it knows nothing of permissions or schedules. One
connection guarded by a lock serves every thread; WAL keeps readers off the
writer's back. Retention bounds each job by run count and output bytes. The
launcher's saves go through ``later`` to one writer thread (no thread hop per
save on the event loop). A read waits only for the saves queued before it (never for
those that keep coming while it waits, so a stream of saves under overload cannot hold
reads back), which may be a batch or two: the engine calls reads on worker threads, never
on its event loop.

A full disk must not stop runs: the run's status travels through Raft, and
what this store cannot keep is given up, never raised into the launcher.
``save_output`` keeps the output's tail with a note when the whole does not
fit, and nothing (the replicated tail remains) when even that fails; writes
work again as soon as space returns (each statement is its own transaction,
so a failed one leaves nothing half done). ``degraded`` says whether the last
write failed. Below the disk's reserve (``odin.disk``) output and records are
not written whole either, so that Raft and a restart keep their room.

A run's SDK records are kept whole here, by the node that ran it (the replicated
state has a bounded summary of them). Retention also bounds each user by the
output and the record bytes kept, and each job's records by run count.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from odin import config
from odin.cluster.model import Record, Run, fields_of
from odin.disk import short_of_room
from odin.errors import Unavailable

log = logging.getLogger("odin.store")

FULL_NOTE = "[odin: output truncated to its last {kept} bytes: the run store's disk is full]\n"

_IDS_PER_QUERY = 500  # well under SQLite's limit on bound parameters


class _Kept(StrEnum):
    """What the store bounds per user."""

    OUTPUTS = "outputs"
    RECORDS = "records"


_OUTPUTS, _RECORDS = _Kept.OUTPUTS, _Kept.RECORDS
_USER_TOTAL = {
    _OUTPUTS: "SELECT coalesce(sum(length(data)), 0) FROM outputs WHERE owner_uid = ?",
    _RECORDS: "SELECT coalesce(sum(bytes), 0) FROM records WHERE owner_uid = ?",
}


def _user_bound(kind: _Kept) -> int:
    """The bytes of ``kind`` a node keeps per user (read when used: a test may lower it)."""
    return (
        config.OUTPUT_BYTES_KEPT_PER_USER if kind == _OUTPUTS else config.RECORD_BYTES_KEPT_PER_USER
    )


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    owner_uid INTEGER NOT NULL,
    instant REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job_id, instant);
CREATE TABLE IF NOT EXISTS outputs (
    run_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    dropped INTEGER NOT NULL,
    data BLOB NOT NULL,
    owner_uid INTEGER NOT NULL DEFAULT -1
);
CREATE INDEX IF NOT EXISTS outputs_by_job ON outputs (job_id);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    owner_uid INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_job ON records (job_id);
CREATE INDEX IF NOT EXISTS records_by_owner ON records (owner_uid);
"""


def _migrate(db: sqlite3.Connection) -> None:
    """Give a store an older engine made what this one needs (outputs' owner, for retention)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(outputs)")}
    if "owner_uid" not in columns:
        db.execute("ALTER TABLE outputs ADD COLUMN owner_uid INTEGER NOT NULL DEFAULT -1")
    db.execute("CREATE INDEX IF NOT EXISTS outputs_by_owner ON outputs (owner_uid)")


class Store:
    """Run history and output of one node."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            _migrate(self._db)
            verdict = self._db.execute("PRAGMA quick_check").fetchone()
            if verdict is None or verdict[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {verdict}")
        except sqlite3.DatabaseError as error:
            raise Unavailable(
                f"the run store {path} is unreadable ({error}); move it aside to start with an "
                "empty history (jobs and recent runs are kept by the cluster)"
            ) from error
        self._lock = threading.Lock()
        self._saves: Counter[tuple[str, str]] = Counter()
        self._saved_bytes: Counter[tuple[str, str]] = Counter()  # since the key's last trim
        # Per user and kind, an upper bound of the bytes kept (exact after each trim of that
        # user): the user's rows are scanned only when it passes the user's bound.
        self._user_bytes: dict[tuple[_Kept, int], int] = {}
        self.degraded = False
        self._short = False  # the disk was below its reserve at the last whole save
        self._unchecked = 0  # bytes of output and records saved since the last checkpoint
        self._pending: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._draining = threading.Lock()  # held while one batch of saves runs
        self._queued = 0  # saves handed to ``later`` so far
        self._done = 0  # of those, how many have run (kept or given up)
        self._count_lock = threading.Lock()
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        self._drainer: int | None = None  # the thread running saves now
        self._closed = False
        self._failed = False  # a write of the batch in progress failed

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._drain()
        with self._lock:
            self._db.close()

    # -- writes in the background ------------------------------------------

    def later(self, step: Callable[..., Any], *args: Any) -> None:
        """Run ``step(*args)`` (a save) on the store's writer thread, in submission order.

        The event loop hands a save over without waiting for it; any read drains
        what is still queued first, so a read never misses an earlier save.
        """
        with self._count_lock:
            self._pending.append((step, args))
            self._queued += 1
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="odin-store", daemon=True)
            self._writer.start()
        if not self._wake.is_set():  # set already: the writer will come by anyway
            self._wake.set()

    def _write_loop(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        """Run every queued save, a batch at a time (the writer thread; ``close``)."""
        if self._drainer == threading.get_ident():
            return
        while self._pending:
            with self._draining:
                self._batch()
        with self._draining:
            self._checkpoint_if_due()

    def _settle(self) -> None:
        """Wait until the saves queued before this call have run, and for no later one.

        Whoever holds ``_draining`` runs one batch and lets go; a reader runs the next
        batch itself when the lock is free, else looks again at least every
        ``STORE_SETTLE_POLL_S``, so it waits for its own prefix of the queue only.
        """
        if self._drainer == threading.get_ident():
            return  # a save that reads (a trim) must not run the saves queued after it
        with self._count_lock:
            target = self._queued
        while self._done < target:
            if self._draining.acquire(timeout=config.STORE_SETTLE_POLL_S):
                try:
                    if self._done < target:
                        self._batch()
                finally:
                    self._draining.release()

    def _batch(self) -> None:
        """Run the next batch of queued saves, in one commit if they all succeed (the caller
        holds ``_draining``)."""
        self._drainer = threading.get_ident()
        try:
            with self._count_lock:
                count = min(len(self._pending), config.STORE_SAVES_PER_COMMIT)
                batch = [self._pending.popleft() for _ in range(count)]
            if len(batch) == 1 or not self._in_one_commit(batch):
                for step, args in batch:
                    self._run(step, args)
            self._done += len(batch)
        finally:
            self._drainer = None

    def _checkpoint_if_due(self) -> None:
        """Once big saves piled up in the WAL, move them into the database and cut the WAL
        to nothing: else a stop would do it, on a disk that may have no room left by then."""
        if self._unchecked < config.STORE_CHECKPOINT_BYTES:
            return
        self._unchecked = 0
        try:
            self._write("PRAGMA wal_checkpoint(TRUNCATE)", ())
        except sqlite3.Error as error:
            log.warning("the run store %s could not checkpoint its WAL: %s", self.path, error)

    def _in_one_commit(self, batch: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> bool:
        """Run a batch of saves as one transaction: one commit instead of one per save
        (a run's two saves took 65 µs of CPU committed apart, 22-28 µs in batches of 5
        to 20, on the 2-core test machine). False, with nothing kept, if any of them
        failed: the caller then runs them one by one, each with its own fallback (a
        run's output, say, shortened on a full disk)."""
        self._failed = False
        try:
            self._write("BEGIN", ())
            for step, args in batch:
                self._run(step, args)
            if not self._failed:
                self._write("COMMIT", ())
                return True
        except sqlite3.Error:
            pass
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
            self._write("ROLLBACK", ())
        return False

    @staticmethod
    def _run(step: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            step(*args)
        except Exception:  # a save must never take the writer thread down
            log.exception("the run store could not save (%s)", step)

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute(sql, args)

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        self._settle()  # saves queued before this read come first
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- runs -------------------------------------------------------------

    def _try(self, what: str, sql: str, args: tuple[Any, ...]) -> bool:
        """One write that may fail for want of space (or a sick disk): logged, not raised."""
        try:
            self._write(sql, args)
        except sqlite3.Error as error:
            self._failed = True
            if not self.degraded:
                log.warning("the run store %s cannot save %s: %s", self.path, what, error)
            self.degraded = True
            return False
        if self.degraded:
            log.warning("the run store %s saves again", self.path)
        self.degraded = False
        return True

    def save_run(self, run: Run) -> bool:
        """Keep a finished run in the history; False if the disk would not take it."""
        body = json.dumps(run.to_dict(), separators=(",", ":"))
        saved = self._try(
            f"run {run.id}",
            "INSERT OR REPLACE INTO runs (id, job_id, owner_uid, instant, body) VALUES (?,?,?,?,?)",
            (run.id, run.job_id, run.owner_uid, run.instant, body),
        )
        if saved and self._due(("runs", run.job_id)):
            self._quietly(self._trim_runs, run.job_id)
        return saved

    def _due(self, key: tuple[str, str]) -> bool:
        """Trim a job's history every few saves, not at each one (a trim reads the job's rows)."""
        self._saves[key] += 1
        return self._saves[key] % config.STORE_TRIM_EVERY == 1

    def _due_after(self, key: tuple[str, str], size: int) -> bool:
        """Trim every few saves of ``key``, or sooner once ``STORE_TRIM_BYTES`` were saved."""
        self._saved_bytes[key] += size
        if self._due(key) or self._saved_bytes[key] >= config.STORE_TRIM_BYTES:
            self._saved_bytes[key] = 0
            return True
        return False

    def _quietly(self, step: Any, key: str | int) -> None:
        try:
            step(key)
        except sqlite3.Error as error:
            log.warning("the run store %s could not trim %s: %s", self.path, key, error)

    def _roomy(self, what: str, size: int) -> bool:
        """Whether the store's disk stays above its reserve with a whole save of ``what``
        (``size`` bytes, counted twice: they go to the WAL, then into the database file)."""
        found = short_of_room((self.path.parent,), 2 * size)
        if found is not None and not self._short:
            log.warning("the run store %s keeps only tails, from %s on: %s", self.path, what, found)
        elif found is None and self._short:
            log.warning("the run store %s has room again", self.path)
        self._short = found is not None
        return found is None

    def _drop_beyond(self, rows: list[tuple[Any, ...]], budget: int, delete: str) -> int:
        """Delete the rows (run id, size; newest first) past the first ``budget`` bytes; the
        bytes of the rows kept."""
        total = kept = 0
        for run_id, size in rows:
            total += size
            if total > budget:
                self._write(delete, (run_id,))
            else:
                kept = total
        return kept

    def _trim_runs(self, job_id: str) -> None:
        self._write(
            "DELETE FROM runs WHERE job_id = ? AND id NOT IN "
            "(SELECT id FROM runs WHERE job_id = ? ORDER BY instant DESC LIMIT ?)",
            (job_id, job_id, config.RUNS_KEPT_IN_STORE_PER_JOB),
        )

    def runs(self, job_id: str, limit: int) -> list[Run]:
        rows = self._read(
            "SELECT body FROM runs WHERE job_id = ? ORDER BY instant DESC LIMIT ?", (job_id, limit)
        )
        return [Run.from_dict(json.loads(body)) for (body,) in rows]

    def missing_runs(self, run_ids: Sequence[str]) -> set[str]:
        """Those of ``run_ids`` that the history does not hold."""
        missing = set(run_ids)
        for start in range(0, len(run_ids), _IDS_PER_QUERY):
            chunk = tuple(run_ids[start : start + _IDS_PER_QUERY])
            marks = ",".join("?" * len(chunk))
            for (found,) in self._read(f"SELECT id FROM runs WHERE id IN ({marks})", chunk):
                missing.discard(found)
        return missing

    def run(self, run_id: str) -> Run | None:
        rows = self._read("SELECT body FROM runs WHERE id = ?", (run_id,))
        return Run.from_dict(json.loads(rows[0][0])) if rows else None

    def forget_job(self, job_id: str) -> None:
        self._settle()  # a save still queued for the job must not bring it back
        with self._draining:  # and not inside a batch of saves, which may be rolled back
            self._write("DELETE FROM runs WHERE job_id = ?", (job_id,))
            self._write("DELETE FROM outputs WHERE job_id = ?", (job_id,))
            self._write("DELETE FROM records WHERE job_id = ?", (job_id,))

    # -- output -----------------------------------------------------------

    def save_output(
        self, run_id: str, job_id: str, data: bytes, total: int, dropped: int, owner_uid: int = -1
    ) -> bool:
        """Keep a run's output; on a full disk its tail with a note; False if not even that."""
        sql = (
            "INSERT OR REPLACE INTO outputs (run_id, job_id, bytes, dropped, data, owner_uid) "
            "VALUES (?,?,?,?,?,?)"
        )
        what = f"the output of {run_id}"
        args = (run_id, job_id, total, dropped, data, owner_uid)
        if self._roomy(what, len(data)) and self._try(what, sql, args):
            self._unchecked += len(data)
            if self._due_after(("outputs", job_id), len(data)):
                self._quietly(self._trim_output, job_id)
            if owner_uid >= 0 and self._user_over(_OUTPUTS, owner_uid, len(data)):
                self._quietly(self._trim_user_output, owner_uid)
            return True
        tail = data[-config.OUTPUT_TAIL_BYTES :]
        note = FULL_NOTE.format(kept=len(tail)).encode()
        short = note + tail
        lost = dropped + len(data) - len(tail)
        short_args = (run_id, job_id, total, lost, short, owner_uid)
        return self._try(f"the tail of {run_id}", sql, short_args)

    def _user_over(self, kind: _Kept, owner_uid: int, size: int) -> bool:
        """Whether the user's ``kind`` (outputs, records) may pass its bound with ``size`` more
        bytes just saved: counted up from the exact total of the user's last trim (or a sum on
        the first save), so that the rows are scanned only near the bound, not every few saves
        (a user with thousands of runs made each scan cost more than the saves around it)."""
        key = (kind, owner_uid)
        if key in self._user_bytes:
            self._user_bytes[key] += size
        else:  # the sum counts the row just written
            rows = self._read(_USER_TOTAL[kind], (owner_uid,))
            self._user_bytes[key] = int(rows[0][0])
        return self._user_bytes[key] > _user_bound(kind)

    def _trim_user_output(self, owner_uid: int) -> None:
        rows = self._read(
            "SELECT run_id, length(data) FROM outputs WHERE owner_uid = ? ORDER BY rowid DESC",
            (owner_uid,),
        )
        delete = "DELETE FROM outputs WHERE run_id = ?"
        kept = self._drop_beyond(rows, config.OUTPUT_BYTES_KEPT_PER_USER, delete)
        self._user_bytes[(_OUTPUTS, owner_uid)] = kept

    def _trim_output(self, job_id: str) -> None:
        rows = self._read(
            "SELECT o.run_id, length(o.data) FROM outputs o LEFT JOIN runs r ON r.id = o.run_id "
            "WHERE o.job_id = ? ORDER BY coalesce(r.instant, 0) DESC",
            (job_id,),
        )
        kept = 0
        for position, (run_id, size) in enumerate(rows):
            kept += size
            over = kept > config.OUTPUT_BYTES_KEPT_PER_JOB
            if over or position >= config.RUNS_KEPT_IN_STORE_PER_JOB:
                self._write("DELETE FROM outputs WHERE run_id = ?", (run_id,))

    def output(self, run_id: str) -> tuple[bytes, int, int] | None:
        rows = self._read("SELECT data, bytes, dropped FROM outputs WHERE run_id = ?", (run_id,))
        if not rows:
            return None
        data, total, dropped = rows[0]
        return bytes(data), int(total), int(dropped)

    # -- records ----------------------------------------------------------

    def save_records(
        self, run_id: str, job_id: str, owner_uid: int, records: Sequence[Record]
    ) -> bool:
        """Keep all of a run's SDK records; False (its replicated summary remains) if not."""
        if not records:
            return True
        what = f"the records of {run_id}"
        data = orjson.dumps([fields_of(record) for record in records])
        if not self._roomy(what, len(data)):
            return False
        sql = (
            "INSERT OR REPLACE INTO records (run_id, job_id, owner_uid, bytes, data) "
            "VALUES (?,?,?,?,?)"
        )
        if not self._try(what, sql, (run_id, job_id, owner_uid, len(data), data)):
            return False
        self._unchecked += len(data)
        if self._due_after(("records", job_id), len(data)):
            self._quietly(self._trim_job_records, job_id)
        if self._user_over(_RECORDS, owner_uid, len(data)):
            self._quietly(self._trim_user_records, owner_uid)
        return True

    def _trim_job_records(self, job_id: str) -> None:
        self._write(
            "DELETE FROM records WHERE job_id = ? AND rowid NOT IN "
            "(SELECT rowid FROM records WHERE job_id = ? ORDER BY rowid DESC LIMIT ?)",
            (job_id, job_id, config.RUNS_KEPT_IN_STORE_PER_JOB),
        )

    def _trim_user_records(self, owner_uid: int) -> None:
        rows = self._read(
            "SELECT run_id, bytes FROM records WHERE owner_uid = ? ORDER BY rowid DESC",
            (owner_uid,),
        )
        delete = "DELETE FROM records WHERE run_id = ?"
        kept = self._drop_beyond(rows, config.RECORD_BYTES_KEPT_PER_USER, delete)
        self._user_bytes[(_RECORDS, owner_uid)] = kept

    def job_records(
        self, job_id: str, owner_uid: int, run_ids: Sequence[str] | None = None
    ) -> dict[str, list[Any]]:
        """The whole records this node keeps of a job's runs (of ``run_ids`` only, if given)."""
        sql = "SELECT run_id, data FROM records WHERE job_id = ? AND owner_uid = ?"
        if run_ids is None:
            rows = self._read(sql, (job_id, owner_uid))
        else:
            rows = []
            for start in range(0, len(run_ids), _IDS_PER_QUERY):
                chunk = tuple(run_ids[start : start + _IDS_PER_QUERY])
                marks = ",".join("?" * len(chunk))
                rows += self._read(f"{sql} AND run_id IN ({marks})", (job_id, owner_uid, *chunk))
        return {run_id: orjson.loads(data) for run_id, data in rows}
