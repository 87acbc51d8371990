"""The leader's watch for runs that miss their start or run too long.

Once a second the leader looks at the active runs of the jobs that ask for
``missed`` or ``overdue`` alerts, and proposes an alarm for each planned run past
its grace and each running run past its ``warn_after``. The state machine checks
every alarm against the state the log has reached and makes each alert once, so a
new leader may raise the same alarm again without an alert being doubled. Only
those jobs' runs are walked (kept from job events), never every active run: a node
far behind has tens of thousands, and the walk holds the state's lock.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable

from odin import config
from odin.cluster import commands as c
from odin.cluster.alerting import missed_due, overdue_due
from odin.cluster.model import Job, alert_key
from odin.cluster.state import Event, JobChanged, JobRemoved, StateRestored
from odin.engine.node import EngineNode, ReadState
from odin.errors import OdinError
from odin.jobs.notify import AlertEvent
from odin.tasks import cancel_and_wait

log = logging.getLogger("odin.alarms")


def watched(job: Job) -> bool:
    """Whether any of the job's destinations asks for ``missed`` or ``overdue`` alerts."""
    return any(e.wants(AlertEvent.MISSED) or e.wants(AlertEvent.OVERDUE) for e in job.notify)


def alarms_due(state: ReadState, now: float, jobs: Iterable[str]) -> list[c.Alarm]:
    """The alarms the active runs of ``jobs`` call for at ``now`` that made no alert yet."""
    found: list[c.Alarm] = []
    for job_id in jobs:
        job = state.jobs.get(job_id)
        if job is None:
            continue
        for run_id in state.active_of.get(job_id, ()):
            run = state.runs[run_id]
            for event, check in (
                (AlertEvent.MISSED, missed_due),
                (AlertEvent.OVERDUE, overdue_due),
            ):
                due = check(job, run, now)
                key = alert_key(run.id, event)
                if any(f"{key}#{item.index}" not in state.alerts for item in due):
                    found.append(c.Alarm(event, job.id, run.id, run.id, now, due[0].detail))
    return found


def _alarms_at(now: float, jobs: frozenset[str], state: ReadState) -> list[c.Alarm]:
    return alarms_due(state, now, jobs)


class AlarmWatch:
    """Raises missed and overdue alarms while this node leads."""

    def __init__(self, node: EngineNode, clock: Callable[[], float]) -> None:
        self.node = node
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._watched: set[str] | None = None  # the jobs that ask; None: to be found again

    def handle(self, event: Event) -> None:
        """Keep the jobs to watch as jobs change (on every node: a new leader has them)."""
        if self._watched is None:
            return
        if isinstance(event, JobChanged):
            if watched(event.job):
                self._watched.add(event.job.id)
            else:
                self._watched.discard(event.job.id)
        elif isinstance(event, JobRemoved):
            self._watched.discard(event.job.id)
        elif isinstance(event, StateRestored):
            self._watched = None

    def leadership(self, is_leader: bool) -> None:
        if is_leader and self._task is None:
            self._task = asyncio.ensure_future(self._run())
        elif not is_leader and self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    def _jobs(self) -> frozenset[str]:
        if self._watched is None:
            self._watched = self.node.read(
                lambda state: {job.id for job in state.jobs.values() if watched(job)}
            )
        return frozenset(self._watched)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(config.ALERT_WATCH_INTERVAL_S)
            jobs = self._jobs()
            if not jobs:
                continue
            alarms = self.node.read(functools.partial(_alarms_at, self.clock(), jobs))
            if not alarms:
                continue
            try:
                await self.node.propose(c.RaiseAlarms(tuple(alarms)))
            except OdinError as error:  # the next pass raises them again
                log.warning("could not raise %d alarm(s): %s", len(alarms), error)
