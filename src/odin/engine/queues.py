"""``overlap: queue`` on this node: one run of a job at a time, the others waiting their turn.

Each job has a lock its runs take in turn; how many runs wait is counted per job
and per owner, and ``rules.queue_verdict`` bounds both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

from odin.cluster.model import Job
from odin.engine import rules


class JobQueues:
    """The turns of the runs of ``overlap: queue`` jobs on this node."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}  # one per job
        self._waiting: Counter[str] = Counter()  # waiting runs by job id and by "uid:<owner>"

    def busy(self, job_id: str) -> bool:
        """Whether a run of the job holds its turn now (a new one would wait)."""
        lock = self._locks.get(job_id)
        return lock is not None and lock.locked()

    def verdict(self, job: Job) -> str | None:
        """Why a run of ``job`` may not wait for its turn (the queue is full), or None."""
        return rules.queue_verdict(self._waiting[job.id], self._waiting[_owner_key(job)])

    @contextlib.asynccontextmanager
    async def turn(self, job: Job) -> AsyncIterator[None]:
        """Wait for the job's turn (counted as waiting meanwhile) and hold it inside."""
        lock = self._locks.setdefault(job.id, asyncio.Lock())
        keys = (job.id, _owner_key(job))
        self._waiting.update(keys)
        try:
            await lock.acquire()
        finally:
            self._waiting.subtract(keys)
            for key in keys:
                if self._waiting[key] <= 0:
                    del self._waiting[key]
        try:
            yield
        finally:
            lock.release()


def _owner_key(job: Job) -> str:
    return f"uid:{job.owner_uid}"
