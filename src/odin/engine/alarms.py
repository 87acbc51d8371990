"""The leader's watch for runs that miss their start or run too long.

Once a second the leader looks at the active runs of jobs with ``notify:`` and
proposes an alarm for each planned run past its grace and each running run past
its ``warn_after``. The state machine checks every alarm against the state the
log has reached and makes each alert once, so a new leader may raise the same
alarm again without an alert being doubled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from odin import config
from odin.cluster import commands as c
from odin.cluster.alerting import missed_due, overdue_due
from odin.cluster.model import alert_key
from odin.engine.node import EngineNode, ReadState
from odin.errors import OdinError
from odin.jobs.notify import AlertEvent
from odin.tasks import cancel_and_wait

log = logging.getLogger("odin.alarms")


def alarms_due(state: ReadState, now: float) -> list[c.Alarm]:
    """The alarms the active runs call for at ``now`` and that have made no alert yet."""
    found: list[c.Alarm] = []
    for run in state.active_runs():
        job = state.jobs.get(run.job_id)
        if job is None or not job.notify:
            continue
        for event, check in ((AlertEvent.MISSED, missed_due), (AlertEvent.OVERDUE, overdue_due)):
            due = check(job, run, now)
            key = alert_key(run.id, event)
            if any(f"{key}#{item.index}" not in state.alerts for item in due):
                found.append(c.Alarm(event, job.id, run.id, run.id, now, due[0].detail))
    return found


def _alarms_at(now: float, state: ReadState) -> list[c.Alarm]:
    return alarms_due(state, now)


class AlarmWatch:
    """Raises missed and overdue alarms while this node leads."""

    def __init__(self, node: EngineNode, clock: Callable[[], float]) -> None:
        self.node = node
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    def leadership(self, is_leader: bool) -> None:
        if is_leader and self._task is None:
            self._task = asyncio.ensure_future(self._run())
        elif not is_leader and self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(config.ALERT_WATCH_INTERVAL_S)
            now = self.clock()
            alarms = self.node.read(functools.partial(_alarms_at, now))
            if not alarms:
                continue
            try:
                await self.node.propose(c.RaiseAlarms(tuple(alarms)))
            except OdinError as error:  # the next pass raises them again
                log.warning("could not raise %d alarm(s): %s", len(alarms), error)
