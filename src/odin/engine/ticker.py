"""The leader's scheduling loop: ask the planner what is due, commit it ahead of time.

Only the leader runs it. Becoming leader rebuilds the planner from the ledger
(catch-up per job policy); losing leadership stops the loop. Runs are proposed
``PLAN_LOOKAHEAD_S`` before their instant so that consensus is off the launch
path, in one ``PlanRuns`` command per batch. While the disk of the leader's Raft
journal is below its reserve (``odin.disk``), due runs are skipped, not planned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable

from odin import config
from odin.cluster import commands as c
from odin.cluster.alerting import grace_of
from odin.cluster.calendars import CalendarChanged
from odin.cluster.model import Job, Run, instant_label, run_id
from odin.cluster.state import Event, JobChanged, JobRemoved
from odin.disk import short_of_room
from odin.engine.jitter import draw_jitter
from odin.engine.node import EngineNode
from odin.engine.planner import Due, Planner
from odin.errors import OdinError
from odin.jobs.notify import AlertEvent
from odin.tasks import cancel_and_wait

log = logging.getLogger("odin.ticker")

MAX_RUNS_PER_PROPOSAL = 2000

NodePicker = Callable[[Job, Counter[str]], str | None]
"""The node a run of the job goes to, counted in the load; None: none of its nodes is a member."""
Load = Callable[[], Counter[str]]


class Ticker:
    """Plans runs while this node leads."""

    def __init__(self, node: EngineNode, pick_node: NodePicker, load: Load) -> None:
        self.node = node
        self.pick_node = pick_node
        self.load = load
        self.planner = Planner()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._skipped = 0  # due runs not planned since the Raft disk went below its reserve
        self.draw: Callable[[int], int] = random.Random().randrange  # jitter (odin.engine.jitter)

    def leadership(self, is_leader: bool) -> None:
        if is_leader and self._task is None:
            self._task = asyncio.ensure_future(self._run())
        elif not is_leader and self._task is not None:
            self._task.cancel()
            self._task = None

    def handle(self, event: Event) -> None:
        if self._task is None:
            return
        if isinstance(event, JobChanged):
            self.planner.update(event.job, time.time())
            self._wake.set()
        elif isinstance(event, JobRemoved):
            self.planner.remove(event.job.id)
        elif isinstance(event, CalendarChanged):
            self.planner.calendar_changed(event.calendar, event.jobs, time.time())
            self._wake.set()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        jobs, ledger, calendars = self.node.read(
            lambda s: (list(s.jobs.values()), dict(s.ledger), s.calendars.rules())
        )
        now = time.time()
        self.planner.exceptions.reset(calendars)
        catchups = self.planner.reset(jobs, ledger, now)
        await self._propose(catchups)
        await self._tell_passed(now)
        while True:
            now = time.time()
            await self._propose(self.planner.due(now + config.PLAN_LOOKAHEAD_S))
            await self._sleep_until_next(now)

    async def _tell_passed(self, now: float) -> None:
        """Raise ``missed`` alarms for the ticks that passed while no leader planned them
        (beyond each job's grace); catch-up may have run some of them late."""
        alarms = []
        for job_id, late in self.planner.passed.items():
            job = self.node.job(job_id)
            if job is None:
                continue
            grace = grace_of(job)
            missed = [tick for tick in late if tick <= now - grace]
            if not missed:
                continue
            policy = f"catchup: {job.catchup}"
            detail = (
                f"{len(missed)} tick(s) from {instant_label(missed[0])} to "
                f"{instant_label(missed[-1])} passed while no leader planned them ({policy})"
            )
            subject = run_id(job.id, missed[0])
            alarms.append(c.Alarm(AlertEvent.MISSED, job.id, None, subject, now, detail))
        if alarms:
            try:
                await self.node.propose(c.RaiseAlarms(tuple(alarms)))
            except OdinError as error:
                log.warning("could not raise %d missed-tick alarm(s): %s", len(alarms), error)

    async def _sleep_until_next(self, now: float) -> None:
        upcoming = self.planner.next_instant()
        wait = config.TICK_INTERVAL_S
        if upcoming is not None:
            wait = min(wait, max(0.0, upcoming - config.PLAN_LOOKAHEAD_S - now))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=wait)

    def _short_of_room(self, count: int) -> bool:
        """Whether ``count`` due runs are skipped for want of room on the Raft disk (logged
        when that starts and when it ends, not at every tick)."""
        found = short_of_room((self.node.raft_dir,))
        if found is not None:
            if not self._skipped:
                log.warning("due runs are skipped, not planned, from now on: %s", found)
            self._skipped += count
            return True
        if self._skipped:
            log.warning(
                "planning runs again, after %d were skipped for want of room", self._skipped
            )
            self._skipped = 0
        return False

    async def _propose(self, due: list[Due]) -> None:
        if due and self._short_of_room(len(due)):
            return
        for start in range(0, len(due), MAX_RUNS_PER_PROPOSAL):
            batch = due[start : start + MAX_RUNS_PER_PROPOSAL]
            runs, ledger = self._runs(batch)
            if not runs:
                continue
            try:
                await self.node.propose(c.PlanRuns(runs=tuple(runs), ledger=ledger))
            except OdinError as error:
                log.warning("could not commit %d planned runs: %s", len(runs), error)

    def _runs(self, due: list[Due]) -> tuple[list[Run], dict[str, float]]:
        now = time.time()
        runs: list[Run] = []
        ledger: dict[str, float] = {}
        load = self.load()
        jobs = self.node.read(lambda s: {item.job_id: s.jobs.get(item.job_id) for item in due})
        for item in due:
            job = jobs.get(item.job_id)
            node = None if job is None else self.pick_node(job, load)
            if job is None or node is None:
                continue  # removed, or none of its nodes is a member: a run could never start
            ledger[job.id] = max(item.instant, ledger.get(job.id, item.instant))
            runs.append(
                Run(
                    id=run_id(job.id, item.instant),
                    job_id=job.id,
                    owner_uid=job.owner_uid,
                    instant=item.instant,
                    reason=item.reason,
                    node=node,
                    planned_at=now,
                    jitter_s=draw_jitter(
                        job.jitter_s, item.reason, item.instant, item.following, self.draw
                    ),
                )
            )
        return runs, ledger
