"""Prepare-ahead: what a launch needs, made before the run's instant.

``HOLD_AHEAD_S`` before a run's instant, once it has a launch slot, ``Preparer.ahead``
starts making its launch: the run's token, its ``LaunchSpec`` (``odin.engine.runspec``)
and the process itself, held at its start gate (the executor's ``prepare``). At its
instant the launcher ``take``s it, or ``drop``s it if the run will not start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from odin import config
from odin.cluster.model import Job, Run
from odin.engine.admission import Admission, AdmittedRun, Slot, Ticket
from odin.engine.node import EngineNode
from odin.engine.queues import JobQueues
from odin.engine.runspec import SpecBuilder
from odin.errors import ExecutionError, OdinError
from odin.executor import ExecutorPort, HeldRun
from odin.jobs.spec import Overlap


@dataclass(frozen=True)
class Prepared:
    """A launch made ready ahead of its instant, for one version of the job."""

    version: int
    token: str
    held: HeldRun


class Preparer:
    """The launches of this node's armed runs, each made ahead of its instant."""

    def __init__(
        self,
        node: EngineNode,
        specs: SpecBuilder,
        queues: JobQueues,
        clock: Callable[[], float],
        executor: ExecutorPort,
        admission: Admission,
    ) -> None:
        self.node = node
        self.specs = specs
        self.queues = queues
        self.clock = clock
        self.executor = executor
        self.admission = admission  # bounds the processes made and starting at once
        self._prepared: dict[str, asyncio.Future[Prepared]] = {}

    def ahead(self, run: Run, slot: Slot) -> None:
        """Start making ``run``'s launch now, for its instant, with the launch slot it holds."""
        self._prepared[run.id] = asyncio.ensure_future(self.prepare(run, slot=slot))

    async def prepare(
        self, run: Run, *, at_turn: bool = False, slot: Slot | None = None
    ) -> Prepared:
        """Everything a launch needs, made ahead of the instant: files, identity, environment,
        and, shortly before the instant, the process itself, held at its start gate (for a
        queued run that will have to wait its turn, only when the turn comes).

        The process is made only with a slot of the node's admission control, taken in the
        run's ticket order and given back once the process is let go or thrown away: a burst
        of runs due together is made and started a bounded number at a time.
        """
        try:
            wait = run.starts_at - config.HOLD_AHEAD_S - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            job = self.node.job(run.job_id)
            if job is None:
                raise ExecutionError(f"job {run.job_id} was removed")
            if not at_turn and job.overlap == Overlap.QUEUE and self.queues.busy(job.id):
                raise ExecutionError(f"run {run.id} waits its turn: its process is made then")
            if slot is None:
                await self.admission.enter(Ticket.of(run))
                slot = Slot(self.admission)
            token = self.specs.new_token()
            spec = await self.specs.build(job, run, token)
            held = await self.executor.prepare(spec)
        except BaseException:
            if slot is not None:
                slot.release()  # a run that waits its turn, or fails, holds no slot
            raise
        return Prepared(job.version, token, AdmittedRun(held, slot))

    async def take(self, job: Job, run: Run) -> Prepared:
        """``run``'s launch for ``job`` as it is now: the one made ahead if it was made for
        this version of the job, else one made now (OdinError if it cannot be)."""
        future = self._prepared.pop(run.id, None)
        prepared = None
        if future is not None:
            with contextlib.suppress(OdinError):
                prepared = await future
        if prepared is not None and prepared.version != job.version:
            await prepared.held.discard()  # made for the job as it was: make it again
            prepared = None
        if prepared is None:
            prepared = await self.prepare(run, at_turn=True)
        return prepared

    async def drop(self, run_id: str) -> None:
        """Give up what was made ahead for ``run_id``, if anything (it will not run)."""
        await _discard(self._prepared.pop(run_id, None))

    async def drop_all(self) -> None:
        for run_id in list(self._prepared):
            await self.drop(run_id)


async def _discard(future: asyncio.Future[Prepared] | None) -> None:
    """Give up a launch that was prepared but will not run (its held process exits)."""
    if future is None:
        return
    if not future.done():
        future.cancel()  # a spawn cut short is cleaned up by asyncio itself
        return
    if not future.cancelled() and future.exception() is None:
        await future.result().held.discard()
