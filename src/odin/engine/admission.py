"""Admission control: how many runs a node makes and starts at once, and who goes first.

A burst (thousands of runs due on one second) must not make thousands of processes at once: each
held process costs descriptors and memory, and the work of making them starves the API and Raft.
A run takes a slot before its process is made and gives it back once the process has been let go
(or thrown away); runs that find no slot wait in order of priority (manual runs first), then
instant, then id, so a burst drains in the order it was planned.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from odin.cluster.model import Run, RunReason, RunStatus
from odin.executor.port import HeldRun, OnOutput, OnStart
from odin.executor.spec import RunOutcome


class Priority(IntEnum):
    """Who is served first when runs wait for a slot (lower first)."""

    MANUAL = 0  # `odin run`, the dashboard's "run now": a person is waiting
    RETRY = 1
    SCHEDULED = 2


@dataclass(frozen=True, order=True)
class Ticket:
    """A run's place in the queue: its priority, then its instant, then its id."""

    priority: Priority
    instant: float
    run_id: str

    @classmethod
    def of(cls, run: Run) -> Ticket:
        reason = run.reason
        priority = {RunReason.MANUAL: Priority.MANUAL, RunReason.RETRY: Priority.RETRY}.get(
            reason, Priority.SCHEDULED
        )
        return cls(priority, run.starts_at, run.id)


@dataclass(frozen=True)
class QueueView:
    """What the queue looks like now, for `odin nodes get`, `/metrics` and the dashboard."""

    limit: int
    busy: int
    waiting: int
    behind_s: float  # how long the oldest waiting run has been due (0 when none waits)


@dataclass(order=True)
class _Waiter:
    """A run waiting for a slot: a future someone awaits (``enter``), or a callback to call
    with the slot taken (``submit``), which costs no task while it waits."""

    ticket: Ticket
    seq: int
    future: asyncio.Future[None] | None = field(compare=False, default=None)
    start: Callable[[], None] | None = field(compare=False, default=None)

    @property
    def waiting(self) -> bool:
        return self.future is None or not self.future.done()


class Admission:
    """A bounded set of slots, handed out in ticket order."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        if limit < 1:
            raise ValueError("admission limit must be at least 1")
        self.limit = limit
        self._clock = clock
        self._busy = 0
        self._heap: list[_Waiter] = []
        self._seq = itertools.count()

    def submit(self, ticket: Ticket, start: Callable[[], None]) -> None:
        """Call ``start`` with a slot taken for it, now or when its turn comes; the slot is then
        the callee's to give back (``Slot``). A run waiting so holds no task, only its place."""
        if self._busy < self.limit and not self._heap:
            self._busy += 1
            start()
            return
        heapq.heappush(self._heap, _Waiter(ticket, next(self._seq), start=start))

    async def enter(self, ticket: Ticket) -> None:
        """Wait for a slot; the caller must ``leave()`` once, whatever happens after."""
        if self._busy < self.limit and not self._heap:
            self._busy += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, _Waiter(ticket, next(self._seq), future=future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.leave()  # granted and cancelled in the same turn: pass the slot on
            raise

    def leave(self) -> None:
        """Give a slot back; the first waiter still waiting takes it."""
        self._busy -= 1
        while self._heap and self._busy < self.limit:
            waiter = heapq.heappop(self._heap)
            if waiter.start is not None:
                self._busy += 1
                waiter.start()
            elif waiter.future is not None and not waiter.future.done():
                self._busy += 1
                waiter.future.set_result(None)

    def view(self) -> QueueView:
        waiting = [w for w in self._heap if w.waiting]
        oldest = min((w.ticket.instant for w in waiting), default=None)
        behind = 0.0 if oldest is None else max(0.0, self._clock() - oldest)
        return QueueView(self.limit, self._busy, len(waiting), behind)


class Slot:
    """One slot taken from an admission control, given back once however often it is asked."""

    def __init__(self, admission: Admission) -> None:
        self._admission: Admission | None = admission

    def release(self) -> None:
        if self._admission is not None:
            self._admission.leave()
            self._admission = None


class AdmittedRun:
    """A held run that gives its slot back once: when its process is let go, or thrown away."""

    def __init__(self, held: HeldRun, slot: Slot) -> None:
        self._held = held
        self._slot = slot

    def _release(self) -> None:
        self._slot.release()

    async def open(
        self, *, on_start: OnStart | None = None, on_output: OnOutput | None = None
    ) -> RunOutcome:
        def started(pid: int, at: float) -> None:
            self._release()
            if on_start is not None:
                on_start(pid, at)

        try:
            return await self._held.open(on_start=started, on_output=on_output)
        finally:
            self._release()

    async def discard(self) -> None:
        try:
            await self._held.discard()
        finally:
            self._release()


REPORT_SLACK_S = 1.5
"""A run still planned this long after its instant has surely not started: a started run is
reported running after ``START_REPORT_DELAY_S`` (1 s), or finished, within this."""


def backlog(runs: Iterable[Run], now: float) -> dict[str, tuple[int, float]]:
    """Per node, from the replicated runs: how many are due and not started, and how long the
    oldest of them has been due (what ``odin nodes get`` shows for every node, whichever answers).
    """
    found: dict[str, tuple[int, float]] = {}
    for run in runs:
        late = now - run.starts_at
        if run.status is RunStatus.PLANNED and late > REPORT_SLACK_S:
            count, oldest = found.get(run.node, (0, 0.0))
            found[run.node] = (count + 1, max(oldest, late))
    return found
