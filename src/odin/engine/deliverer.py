"""The leader delivers the alerts the state machine decided, and records each attempt.

Delivery is at least once: an alert stays undelivered in the replicated state
until an attempt's outcome is committed, so a leader that dies mid-way leaves it
to the next one, which sends it again with the same idempotency key. Attempts
follow the backoff the state machine sets (``odin.cluster.alerting``); at most
``ALERT_SENDS_AT_ONCE`` are in flight, and a slow receiver holds only its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Protocol

from odin import config
from odin.cluster import commands as c
from odin.cluster.model import Alert, Job, Run
from odin.cluster.state import AlertRaised, Event
from odin.engine.node import EngineNode, ReadState
from odin.engine.proposer import Proposer
from odin.jobs.fields import Problem
from odin.notify import Destination, JobFacts, Message, Outcome, RunFacts, compose, mask
from odin.notify.destinations import check_destination
from odin.tasks import cancel_and_wait

log = logging.getLogger("odin.alerts")


class Sends(Protocol):
    """What delivers one message to one destination (``odin.notify.Sender``)."""

    async def send(self, dest: Destination, message: Message) -> Outcome: ...


def job_facts(job: Job) -> JobFacts:
    return JobFacts(id=job.id, name=job.name, owner=job.owner)


def run_facts(run: Run) -> RunFacts:
    return RunFacts(
        id=run.id,
        instant=run.instant,
        node=run.node,
        status=str(run.status),
        exit_code=run.exit_code,
        duration=run.duration,
        result=run.result_desc,
        output_tail=run.output_tail,
    )


def message_for(alert: Alert, job: Job, run: Run | None, dashboard_url: str | None) -> Message:
    """What is sent for ``alert``: only its own job's and run's facts."""
    return compose(
        event=str(alert.event),
        key=alert.key,
        job=job_facts(job),
        run=None if run is None else run_facts(run),
        detail=alert.detail,
        dashboard_url=dashboard_url,
        at=alert.created_at,
    )


_Due = tuple[Alert, Job, Run | None]


def _due(state: ReadState, now: float, busy: set[str]) -> tuple[list[_Due], float | None]:
    """The alerts whose next attempt is due at ``now``, and when the next other one is."""
    due: list[_Due] = []
    later: float | None = None
    for alert_id in state.undelivered:
        alert = state.alerts[alert_id]
        job = state.jobs.get(alert.job_id)
        if alert_id in busy or job is None:
            continue
        if alert.next_at <= now:
            run = None if alert.run_id is None else state.runs.get(alert.run_id)
            due.append((alert, job, run))
        elif later is None or alert.next_at < later:
            later = alert.next_at
    due.sort(key=lambda item: item[0].next_at)
    return due, later


def _due_at(now: float, busy: set[str], state: ReadState) -> tuple[list[_Due], float | None]:
    return _due(state, now, busy)


class Deliverer:
    """Sends due alerts while this node leads."""

    def __init__(
        self,
        node: EngineNode,
        sender: Sends,
        clock: Callable[[], float],
        dashboard_url: str | None = None,
    ) -> None:
        self.node = node
        self.sender = sender
        self.clock = clock
        self.dashboard_url = dashboard_url
        self.proposer = Proposer(node.propose)
        self.attempts: dict[bool, int] = {True: 0, False: 0}  # by success, on this node
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._busy: set[str] = set()
        self._sends: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(config.ALERT_SENDS_AT_ONCE)

    def leadership(self, is_leader: bool) -> None:
        if is_leader and self._task is None:
            self._task = asyncio.ensure_future(self._run())
        elif not is_leader and self._task is not None:
            self._task.cancel()
            self._task = None

    def handle(self, event: Event) -> None:
        if isinstance(event, AlertRaised):
            self._wake.set()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        for task in list(self._sends):
            await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock()
            busy = set(self._busy)
            due, later = self.node.read(functools.partial(_due_at, now, busy))
            for alert, job, run in due:
                self._busy.add(alert.id)
                task = asyncio.ensure_future(self._deliver(alert, job, run))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
            wait = config.ALERT_WATCH_INTERVAL_S if later is None else max(0.0, later - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(wait, 60.0))

    async def _deliver(self, alert: Alert, job: Job, run: Run | None) -> None:
        try:
            async with self._slots:
                outcome = await self._attempt(alert, job, run)
            attempt = alert.attempts + 1
            self.attempts[outcome.ok] += 1
            log.info(
                "alert %s to %s, attempt %d: %s",
                alert.key,
                mask(alert.to),
                attempt,
                outcome.detail,
            )
            record = c.RecordDelivery(
                alert.id, attempt, outcome.ok, outcome.retry, outcome.detail, self.clock()
            )
            await self.proposer.propose(record)
        finally:
            self._busy.discard(alert.id)
            self._wake.set()

    async def _attempt(self, alert: Alert, job: Job, run: Run | None) -> Outcome:
        try:
            dest = check_destination(alert.to)
        except Problem:  # refused since it was deployed (a newer rule); its detail quotes the URL
            return Outcome(ok=False, retry=False, detail="not a destination Odin sends to any more")
        message = message_for(alert, job, run, self.dashboard_url)
        return await self.sender.send(dest, message)
