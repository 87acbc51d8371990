"""Which (job, tick) runs are due: pure, driven by the ``now`` it is given.

The planner keeps each schedulable job's next tick in a heap. ``due(until)``
pops every tick at or before ``until`` and pushes the job's following tick, so
each tick is handed out once. ``reset`` rebuilds the heap from the replicated
ledger when a node becomes leader, applying each job's catch-up policy to the
ticks that passed while nobody was planning.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from odin import config
from odin.cluster.model import Job, RunReason
from odin.jobs.fields import Catchup
from odin.jobs.notify import AlertEvent
from odin.schedule import Schedule, parse

LATE_TOLERANCE_S = 2.0
"""A tick later than this when planning resumes counts as missed (catch-up policy applies)."""

CATCHUP_SCAN_LIMIT = 100_000
"""How many missed ticks the planner walks through at most to find the latest ones."""


@dataclass(frozen=True)
class Due:
    job_id: str
    instant: float
    reason: RunReason


@lru_cache(maxsize=4096)
def schedule_for(text: str, timezone: str) -> Schedule:
    return parse(text, default_tz=timezone)


def _at(instant: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(instant, dt.UTC)


def next_tick(job: Job, after: float) -> float | None:
    """The job's first tick strictly after ``after`` (None: never again)."""
    result = schedule_for(job.schedule, job.timezone).next_after(_at(after))
    return None if result is None else result.timestamp()


def missed_ticks(job: Job, last: float, now: float) -> tuple[list[float], float | None]:
    """The ticks of ``job`` after ``last`` that are already late at ``now``, and the next one."""
    late: list[float] = []
    tick = next_tick(job, last)
    steps = 0
    while tick is not None and tick < now - LATE_TOLERANCE_S and steps < CATCHUP_SCAN_LIMIT:
        late.append(tick)
        if len(late) > config.CATCHUP_ALL_MAX_RUNS:
            late.pop(0)
        tick = next_tick(job, tick)
        steps += 1
    return late, tick


def catch_up(job: Job, late: list[float], now: float) -> list[float]:
    """Which missed ticks to run, per the job's policy (none, latest or all within a window)."""
    if not late or job.catchup is Catchup.NONE:
        return []
    if job.catchup is Catchup.LATEST:
        return late[-1:]
    return [t for t in late if t >= now - config.CATCHUP_ALL_WINDOW_S]


class Planner:
    """A heap of next ticks; entries made stale by an update are skipped lazily."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, str, int]] = []
        self._version: dict[str, int] = {}
        self._jobs: dict[str, Job] = {}
        self.passed: dict[str, list[float]] = {}
        """Since the last ``reset``: the late ticks of jobs that want ``missed`` alerts."""

    def __len__(self) -> int:
        return len(self._version)

    def reset(self, jobs: Iterable[Job], ledger: Mapping[str, float], now: float) -> list[Due]:
        """Start over from the ledger; returns the catch-up runs to plan now."""
        self._heap, self._version, self._jobs, self.passed = [], {}, {}, {}
        catchups: list[Due] = []
        for job in jobs:
            last = ledger.get(job.id)
            if last is None or not self._schedulable(job):
                self.update(job, now)
                continue
            late, upcoming = missed_ticks(job, last, now)
            if late and any(entry.wants(AlertEvent.MISSED) for entry in job.notify):
                self.passed[job.id] = late
            catchups += [Due(job.id, t, RunReason.CATCHUP) for t in catch_up(job, late, now)]
            if upcoming is not None and upcoming < now - LATE_TOLERANCE_S:
                upcoming = next_tick(job, now)
            self._push(job, upcoming)
        return catchups

    def update(self, job: Job, now: float) -> None:
        """A job was created or changed: its next tick is the first one after ``now``."""
        self._push(job, next_tick(job, now) if self._schedulable(job) else None)

    def remove(self, job_id: str) -> None:
        self._version.pop(job_id, None)
        self._jobs.pop(job_id, None)

    def next_instant(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def due(self, until: float) -> list[Due]:
        """Pop every tick at or before ``until``; each job's following tick is pushed."""
        found: list[Due] = []
        while self.next_instant() is not None and self._heap[0][0] <= until:
            instant, job_id, _ = heapq.heappop(self._heap)
            found.append(Due(job_id, instant, RunReason.SCHEDULE))
            job = self._jobs[job_id]
            self._push(job, next_tick(job, instant))
        return found

    @staticmethod
    def _schedulable(job: Job) -> bool:
        return not job.paused and not schedule_for(job.schedule, job.timezone).is_never

    def _push(self, job: Job, instant: float | None) -> None:
        version = self._version.get(job.id, 0) + 1
        self._version[job.id] = version
        self._jobs[job.id] = job
        if instant is not None:
            heapq.heappush(self._heap, (instant, job.id, version))

    def _drop_stale(self) -> None:
        while self._heap and self._version.get(self._heap[0][1]) != self._heap[0][2]:
            heapq.heappop(self._heap)
