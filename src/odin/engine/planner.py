"""Which (job, tick) runs are due: pure, driven by the ``now`` it is given.

The planner keeps each schedulable job's next tick in a heap. ``due(until)``
pops every tick at or before ``until`` and pushes the job's following tick, so
each tick is handed out once. ``reset`` rebuilds the heap from the replicated
ledger when a node becomes leader, applying each job's catch-up policy to the
ticks that passed while nobody was planning.

A job paused until an instant (``paused_until``) has a resume entry in the heap
instead, handed out at that instant itself: the ticks the pause skipped (those
after the last one handed out) follow the job's catch-up policy as after an
outage, and its next tick is the first one at or after the resume instant. A
job's ticks come from its own schedule (``job_schedule``): a spread's offset and
cron's ``H`` depend on its id.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from odin import config
from odin.cluster.calendars import Calendar
from odin.cluster.model import Job, RunReason
from odin.engine.excluded import Exceptions, moves
from odin.jobs.fields import Catchup
from odin.jobs.notify import AlertEvent
from odin.schedule import Schedule, parse
from odin.schedule.exceptions import Exclusions, next_run

LATE_TOLERANCE_S = 2.0
"""A tick later than this when planning resumes counts as missed (catch-up policy applies)."""

CATCHUP_SCAN_LIMIT = 100_000
"""How many missed ticks the planner walks through at most to find the latest ones."""

TICK_FROM_SLACK_S = 0.001
"""``tick_from`` looks this far before its instant (an instant is read at the microsecond)."""


@dataclass(frozen=True)
class Due:
    job_id: str
    instant: float
    reason: RunReason
    following: float | None = None  # the job's next tick after this one, when known


@lru_cache(maxsize=4096)
def schedule_for(text: str, timezone: str) -> Schedule:
    return parse(text, default_tz=timezone)


def job_schedule(job: Job) -> Schedule:
    """The job's own schedule: the shared one, placed for its id when a spread or an ``H``
    makes its instants depend on it."""
    shared = schedule_for(job.schedule, job.timezone)
    return _placed(job.schedule, job.timezone, job.id) if shared.needs_job else shared


@lru_cache(maxsize=65536)
def _placed(text: str, timezone: str, job_id: str) -> Schedule:
    return schedule_for(text, timezone).placed(job_id)


def pausing(job: Job, now: float) -> bool:
    """Whether ``job`` is paused until an instant still to come."""
    return job.paused_until is not None and job.paused_until > now


def tick_from(job: Job, instant: float, excluded: Exclusions | None = None) -> float | None:
    """The job's first tick at or after ``instant`` (the first after a pause, at its end);
    ticks are whole seconds, so none lies in the millisecond before it."""
    return next_tick(job, instant - TICK_FROM_SLACK_S, excluded)


def upcoming_tick(job: Job, now: float, excluded: Exclusions | None = None) -> float | None:
    """The job's next tick after ``now``, or the first from the end of its pause."""
    if job.paused_until is not None and pausing(job, now):
        return tick_from(job, job.paused_until, excluded)
    return next_tick(job, now, excluded)


def _at(instant: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(instant, dt.UTC)


def next_tick(job: Job, after: float, excluded: Exclusions | None = None) -> float | None:
    """The job's first tick strictly after ``after`` (None: never again); with ``excluded``
    (its ``except:`` resolved, ``odin.engine.excluded``), its first run: a tick they do not
    exclude, or the instant excluded ticks move to (``on_excluded: next``)."""
    schedule = job_schedule(job)
    if excluded:
        result = next_run(schedule, excluded, _at(after), moves(job))
    else:
        result = schedule.next_after(_at(after))
    return None if result is None else result.timestamp()


def missed_ticks(
    job: Job, last: float, now: float, excluded: Exclusions | None = None
) -> tuple[list[float], float | None]:
    """The ticks of ``job`` after ``last`` that are already late at ``now``, and the next one."""
    late: list[float] = []
    tick = next_tick(job, last, excluded)
    steps = 0
    while tick is not None and tick < now - LATE_TOLERANCE_S and steps < CATCHUP_SCAN_LIMIT:
        late.append(tick)
        if len(late) > config.CATCHUP_ALL_MAX_RUNS:
            late.pop(0)
        tick = next_tick(job, tick, excluded)
        steps += 1
    return late, tick


def skipped_ticks(
    job: Job, last: float, end: float, excluded: Exclusions | None = None
) -> list[float]:
    """The ticks of ``job`` after ``last`` and before ``end`` (a pause's), the latest
    ``CATCHUP_ALL_MAX_RUNS`` of them."""
    skipped: list[float] = []
    tick = next_tick(job, last, excluded)
    steps = 0
    while tick is not None and tick < end and steps < CATCHUP_SCAN_LIMIT:
        skipped.append(tick)
        if len(skipped) > config.CATCHUP_ALL_MAX_RUNS:
            skipped.pop(0)
        tick = next_tick(job, tick, excluded)
        steps += 1
    return skipped


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
        self._last: dict[str, float] = {}  # the last tick handed out, or passed, per job
        self._resume: dict[str, float] = {}  # jobs whose heap entry ends a pause, and when
        self.exceptions = Exceptions()  # jobs' except: and their owners' calendars

    def __len__(self) -> int:
        return len(self._version)

    def reset(self, jobs: Iterable[Job], ledger: Mapping[str, float], now: float) -> list[Due]:
        """Start over from the ledger; returns the catch-up runs to plan now."""
        self._heap, self._version, self._jobs, self.passed = [], {}, {}, {}
        self._last, self._resume = {}, {}
        catchups: list[Due] = []
        for job in jobs:
            last = ledger.get(job.id)
            if last is None or not self._schedulable(job) or pausing(job, now):
                if last is not None:
                    self._last[job.id] = last
                self.update(job, now)
                continue
            excluded = self.exceptions.of(job)
            late, upcoming = missed_ticks(job, last, now, excluded)
            self._last[job.id] = max([last, *late])
            told = [t for t in late if job.paused_until is None or t >= job.paused_until]
            if told and any(entry.wants(AlertEvent.MISSED) for entry in job.notify):
                self.passed[job.id] = told  # not the ticks a pause skipped on purpose
            catchups += [Due(job.id, t, RunReason.CATCHUP) for t in catch_up(job, late, now)]
            if upcoming is not None and upcoming < now - LATE_TOLERANCE_S:
                upcoming = next_tick(job, now, excluded)
            self._push(job, upcoming)
        return catchups

    def update(self, job: Job, now: float) -> None:
        """A job was created or changed: its next tick is the first one after ``now``, or its
        pause ends first (the ticks up to its end wait for it)."""
        if not self._schedulable(job):
            self._push(job, None)
        elif pausing(job, now):
            self._last.setdefault(job.id, now)
            self._push_resume(job)
        else:
            upcoming = self._moved(job, now)
            self._last[job.id] = max(self._last.get(job.id, now), now)
            self._push(job, upcoming)

    def remove(self, job_id: str) -> None:
        self._version.pop(job_id, None)
        self._jobs.pop(job_id, None)
        self._last.pop(job_id, None)
        self._resume.pop(job_id, None)

    def next_instant(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def due(self, until: float) -> list[Due]:
        """Pop every tick at or before ``until``; each job's following tick is pushed."""
        found: list[Due] = []
        while self.next_instant() is not None and self._heap[0][0] <= until:
            instant, job_id, _ = heapq.heappop(self._heap)
            job = self._jobs[job_id]
            resume = self._resume.pop(job_id, None)
            if resume is not None:
                found += self._resumed(job, resume)
                continue
            following = next_tick(job, instant, self.exceptions.of(job))
            found.append(Due(job_id, instant, RunReason.SCHEDULE, following))
            self._last[job_id] = instant
            self._push(job, following)
        return found

    def _resumed(self, job: Job, end: float) -> list[Due]:
        """A pause ended at ``end``: its skipped ticks per the catch-up policy, to run now, and
        the job's first tick from ``end`` on pushed."""
        excluded = self.exceptions.of(job)
        skipped = skipped_ticks(job, self._last.get(job.id, end), end, excluded)
        chosen = catch_up(job, skipped, end)
        if skipped:
            self._last[job.id] = skipped[-1]
        self._push(job, tick_from(job, end, excluded))
        return [Due(job.id, tick, RunReason.CATCHUP) for tick in chosen]

    def _moved(self, job: Job, now: float) -> float | None:
        """The job's next tick after ``now``; for a job whose excluded ticks move (``on_excluded:
        next``), the run they moved to if it is still to come (ticks excluded since the last
        one it handed out, which a change must not lose)."""
        excluded = self.exceptions.of(job)
        last = self._last.get(job.id)
        if excluded and moves(job) and last is not None and last < now:
            moved = next_tick(job, last, excluded)
            if moved is not None and moved >= now:
                return moved
        return next_tick(job, now, excluded)

    def calendar_changed(self, calendar: Calendar, jobs: Iterable[Job], now: float) -> None:
        """A calendar was added or changed: the jobs that name it are planned again."""
        self.exceptions.put(calendar)
        for job in jobs:
            if job.id in self._jobs:
                self.update(job, now)

    @staticmethod
    def _schedulable(job: Job) -> bool:
        return not job.paused and not schedule_for(job.schedule, job.timezone).is_never

    def _push_resume(self, job: Job) -> None:
        """The job's entry is the end of its pause, handed out at that instant itself (catch-up
        runs start as soon as they are planned: never before the pause ends)."""
        assert job.paused_until is not None
        self._push(job, job.paused_until + config.PLAN_LOOKAHEAD_S)
        self._resume[job.id] = job.paused_until

    def _push(self, job: Job, instant: float | None) -> None:
        self._resume.pop(job.id, None)
        version = self._version.get(job.id, 0) + 1
        self._version[job.id] = version
        self._jobs[job.id] = job
        if instant is not None:
            heapq.heappush(self._heap, (instant, job.id, version))

    def _drop_stale(self) -> None:
        while self._heap and self._version.get(self._heap[0][1]) != self._heap[0][2]:
            heapq.heappop(self._heap)
