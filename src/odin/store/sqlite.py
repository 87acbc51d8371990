"""Node-local SQLite: full run output and the history older than the replicated window.

Storage only moves bytes: it knows nothing of permissions or schedules. One
connection guarded by a lock serves every thread; WAL keeps readers off the
writer's back. Retention bounds each job by run count and output bytes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from odin import config
from odin.cluster.model import Run
from odin.errors import Unavailable

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
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outputs_by_job ON outputs (job_id);
"""


class Store:
    """Run history and output of one node."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._db.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as error:
            raise Unavailable(
                f"the run store {path} is unreadable ({error}); move it aside to start with an "
                "empty history (jobs and recent runs are kept by the cluster)"
            ) from error
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute(sql, args)

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- runs -------------------------------------------------------------

    def save_run(self, run: Run) -> None:
        body = json.dumps(run.to_dict(), separators=(",", ":"))
        self._write(
            "INSERT OR REPLACE INTO runs (id, job_id, owner_uid, instant, body) VALUES (?,?,?,?,?)",
            (run.id, run.job_id, run.owner_uid, run.instant, body),
        )
        self._trim_runs(run.job_id)

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

    def run(self, run_id: str) -> Run | None:
        rows = self._read("SELECT body FROM runs WHERE id = ?", (run_id,))
        return Run.from_dict(json.loads(rows[0][0])) if rows else None

    def forget_job(self, job_id: str) -> None:
        self._write("DELETE FROM runs WHERE job_id = ?", (job_id,))
        self._write("DELETE FROM outputs WHERE job_id = ?", (job_id,))

    # -- output -----------------------------------------------------------

    def save_output(self, run_id: str, job_id: str, data: bytes, total: int, dropped: int) -> None:
        self._write(
            "INSERT OR REPLACE INTO outputs (run_id, job_id, bytes, dropped, data) "
            "VALUES (?,?,?,?,?)",
            (run_id, job_id, total, dropped, data),
        )
        self._trim_output(job_id)

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
