"""Starting the runs planned for this node, on time, and reporting how they ended.

A ``RunPlanned`` event for this node arms a timer for the run's instant; the
launch itself waits for no Raft round trip (the plan was committed ahead). The
start and the finish are proposed afterwards.

The launcher sequences; it decides nothing and builds little itself. What
happens to a run (late, overlapping, queued, allowed to start, how it ended) is
a pure verdict of ``odin.engine.rules``, given the time read from the injected
``clock``. Its collaborators, each a module of ``odin.engine``: ``prepare`` (a
launch made ahead of its instant), ``runspec`` (the program, identity and
environment it gets), ``queues`` (the turns of ``overlap: queue``), ``liverun``
and ``liveoutput`` (a live run and its output buffer), ``records`` (the SDK's
records, checked and held), ``finishes`` (ends kept here and committed in
batches) and ``proposer`` (the one retry rule for all it proposes); ``admission``
bounds how many launches are made and started at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from odin import config
from odin.cluster import commands as c
from odin.cluster.model import Job, Run, RunStatus
from odin.cluster.state import Event, JobRemoved, RunFinished, RunPlanned, RunStarted, StateRestored
from odin.engine import rules
from odin.engine.admission import Admission, Slot, Ticket
from odin.engine.finishes import FinishBatcher, finish_of, keep_here
from odin.engine.liverun import LiveRun as LiveRun
from odin.engine.node import EngineNode, ReadState
from odin.engine.prepare import Prepared, Preparer
from odin.engine.proposer import Proposer
from odin.engine.queues import JobQueues
from odin.engine.records import HeldRecords
from odin.engine.runspec import LaunchContext as LaunchContext
from odin.engine.runspec import SpecBuilder
from odin.engine.started import StartedFile
from odin.engine.users import Owners
from odin.errors import ExecutionError, OdinError
from odin.executor import ExecutorPort, RunOutcome
from odin.jobs.spec import Overlap
from odin.store.sqlite import Store

Clock = Callable[[], float]


class Launcher:
    """Arms timers for this node's planned runs and drives them to a finish."""

    def __init__(
        self,
        node: EngineNode,
        store: Store,
        context: LaunchContext,
        started: StartedFile,
        executor: ExecutorPort,
        owners: Owners,
        admission: Admission,
        *,
        clock: Clock = time.time,
    ) -> None:
        self.node = node
        self.store = store
        self.started = started
        self.clock = clock  # the wall clock: every time the launcher reads comes from it
        self.live: dict[str, LiveRun] = {}
        self.held_records = HeldRecords(node.name)  # SDK records of live runs (odin.engine.records)
        self._queues = JobQueues()  # overlap: queue
        self.executor = executor  # makes, opens and kills the runs' processes (odin.executor)
        self._prepare = Preparer(
            node, SpecBuilder(context, node.name, owners), self._queues, clock, executor, admission
        )
        self.admission = admission
        self._proposer = Proposer(node.propose)
        self._finishes = FinishBatcher(node.loop, self._proposer.propose, self._spawn)
        self._armed: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsettled: set[str] = set()  # started here, not yet running or finished in the log
        self._late: dict[str, float] = {}  # run id -> seconds past its instant when committed
        self._born = clock()  # what other nodes recorded as running before may be stale

    # -- events ------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if isinstance(event, RunPlanned) and event.run.node == self.node.name:
            now = self.clock()
            if rules.stale(event.run, now):
                self._late[event.run.id] = now - event.run.starts_at
            self.arm(event.run)
        elif isinstance(event, RunStarted):
            self._unsettled.discard(event.run.id)
        elif isinstance(event, RunFinished):
            self._armed.discard(event.run.id)
            self._unsettled.discard(event.run.id)
            self.store.later(self.store.save_run, event.run)
        elif isinstance(event, JobRemoved):
            for live in self.live.values():
                if live.run.job_id == event.job.id:
                    self.executor.kill(live.run.id)
        elif isinstance(event, StateRestored):
            self._spawn(self.backfill())

    def arm(self, run: Run) -> None:
        """Queue ``run`` for a launch slot ``HOLD_AHEAD_S`` before it starts (its instant, plus
        its jitter); until it has one it is a timer, then a place in the queue: no task."""
        if run.id in self._armed:
            return
        self._armed.add(run.id)
        delay = max(0.0, run.starts_at - config.HOLD_AHEAD_S - self.clock())
        self.node.loop.call_later(delay, self._due, run)

    def _due(self, run: Run) -> None:
        self.admission.submit(Ticket.of(run), lambda: self._spawn(self._launch(run)))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reconcile(self) -> None:
        """After a restart: arm what was planned here, and mark what was running as lost."""
        now = self.clock()
        mine = [r for r in self.node.active_runs() if r.node == self.node.name]
        for run in mine:
            was_started = run.status is RunStatus.RUNNING or run.id in self.started.before
            if was_started and run.id not in self.live:
                await self._finish(run, RunStatus.LOST, "the engine restarted while it ran", now)
            elif run.status is RunStatus.PLANNED:
                self.arm(run)
        self.started.rewrite(self._unsettled)
        await self.backfill()

    async def backfill(self) -> None:
        """Save in this node's run history the finished runs the state holds and it lacks.

        A run that ends reaches the history through its ``RunFinished`` event; none
        comes for what a node applies while it replays its journal or catches up at
        start, nor for a snapshot it takes from the leader, and a crash loses the
        saves still queued. Those runs are still in the state (its last runs per job).
        """
        finished = [r for r in self.node.runs() if r.status.finished]
        missing = await asyncio.to_thread(self.store.missing_runs, [r.id for r in finished])
        for run in finished:
            if run.id in missing:
                self.store.later(self.store.save_run, run)

    # -- one launch --------------------------------------------------------

    async def _launch(self, run: Run) -> None:
        """One run's launch, begun with a launch slot taken for it: its process is made ahead
        and held, and at its start the rules decide; the slot is given back once, at the start
        or when the run will not start (``Slot``)."""
        slot = Slot(self.admission)
        try:
            self._prepare.ahead(run, slot)
            wait = run.starts_at - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._launch_now(run.id)
        finally:
            await self._prepare.drop(run.id)
            slot.release()

    async def _launch_now(self, run_id: str) -> None:
        late_by = self._late.pop(run_id, None)
        run, job, siblings = self.node.read(lambda state: _launch_view(state, run_id, late_by))
        if not rules.still_ours(run, self.node.name):
            return  # ended, or moved to another node while this one could not start it
        if job is None:
            await self._finish(run, RunStatus.CANCELLED, "the job was removed")
        elif late_by is not None and await self._skipped_late(job, run, siblings, late_by):
            return
        elif job.overlap == Overlap.SKIP and await self._going(run, siblings):
            if rules.skipped_when_going(run):
                await self._finish(run, RunStatus.SKIPPED, rules.OVERLAP_SKIPPED)
            else:
                await self._after_going(run)
        elif job.overlap == Overlap.QUEUE:
            await self._queued(job, run)
        else:
            await self._execute(job, run)

    async def _skipped_late(self, job: Job, run: Run, siblings: list[Run], late_by: float) -> bool:
        """A missed tick (``rules.stale``) is skipped (True) or run, per ``rules.late_verdict``."""
        now = self.clock()
        newer_due = rules.newer_tick_due(run, siblings, now)
        verdict = rules.late_verdict(job.catchup, late_by, newer_due)
        if verdict is not None:
            await self._finish(run, RunStatus.SKIPPED, verdict, now)
        return verdict is not None

    async def _going(self, run: Run, siblings: list[Run]) -> bool:
        """Whether another run of the job is going, for ``overlap: skip``: asked of
        ``rules.overlap_verdict`` until it is sure (a run that may be a crash's leftover is
        waited on, at most ``LEFTOVER_WAIT_S``)."""
        deadline = self.clock() + rules.LEFTOVER_WAIT_S
        while True:
            live = [live.run for live in self.live.values()]
            going = rules.overlap_verdict(
                run,
                siblings,
                self.node.name,
                live,
                born=self._born,
                now=self.clock(),
                deadline=deadline,
            )
            if going is not None:
                return going
            await asyncio.sleep(config.NODE_WATCH_S)
            siblings = self.node.runs_of(run.job_id)

    async def _after_going(self, run: Run) -> None:
        """A manual run of an ``overlap: skip`` job that found another going: it waits (holding
        no process and no launch slot) until none is, then starts if still ours and wanted."""
        await self._prepare.drop(run.id)
        while await self._going(run, self.node.runs_of(run.job_id)):
            await asyncio.sleep(config.NODE_WATCH_S)
        current, now_run = self.node.job(run.job_id), self.node.run(run.id)
        if now_run is None or not rules.still_ours(now_run, self.node.name):
            return
        if current is None:
            await self._finish(now_run, *rules.REMOVED_WHILE_WAITING)
        else:
            await self._execute(current, now_run)

    async def _queued(self, job: Job, run: Run) -> None:
        """Start ``run`` once the job's earlier runs here have ended (``overlap: queue``).

        Nothing is held for a run while it waits (its process is made at its turn), the
        queue is bounded per job and per owner, and the job is read again at the turn: a
        run of a job removed or paused meanwhile does not start.
        """
        if self._queues.busy(job.id):
            verdict = self._queues.verdict(job)
            if verdict is not None:
                await self._finish(run, RunStatus.SKIPPED, verdict)
                return
            await self._prepare.drop(run.id)
        async with self._queues.turn(job):
            current, now_run = self.node.job(job.id), self.node.run(run.id)
            if now_run is None or now_run.status is not RunStatus.PLANNED:
                return
            turn = rules.turn_verdict(current)
            if turn is not None:
                await self._finish(run, *turn)
            elif current is not None:  # the job as it is now: a redeploy's code runs
                await self._execute(current, run)

    async def _execute(self, job: Job, run: Run) -> None:
        prepared = await self._claim(job, run)
        if prepared is None:
            return
        live = LiveRun(run=run, token=prepared.token)
        self.live[run.id] = live
        self._unsettled.add(run.id)
        try:
            outcome = await prepared.held.open(
                on_start=lambda pid, at: self._started(live, pid, at),
                on_output=lambda chunk: self._output(live, chunk),
            )
        except OdinError as error:
            self._forget(live)
            await self._finish(run, RunStatus.FAILED, f"could not start: {error}")
            return
        await self._report(live, outcome)

    async def _claim(self, job: Job, run: Run) -> Prepared | None:
        """``run``'s launch, once this node may start it (``rules.may_start``) and has noted
        that it does (``StartedFile``); None if it ended instead or is not ours to start."""
        while True:
            try:
                prepared = await self._prepare.take(job, run)
            except OdinError as error:
                await self._finish(run, RunStatus.FAILED, f"could not start: {error}")
                return None
            if self._may_start(run.id):
                break
            await prepared.held.discard()  # nothing is held while the lease is out
            if not await self._lease_back(run.id):
                return None  # moved away meanwhile, or ended: not this node's to start
        if self.started.due():
            self.started.rewrite(self._unsettled)
        try:
            self.started.add(run.id)  # before the start: a restart must never start it again
        except ExecutionError as error:
            await prepared.held.discard()
            await self._finish(run, RunStatus.FAILED, f"could not start: {error}")
            return None
        return prepared

    def _forget(self, live: LiveRun) -> None:
        """A run is no longer live here: its records no longer count in its owner's bytes."""
        self.live.pop(live.run.id, None)
        self.held_records.release(live)

    def _may_start(self, run_id: str) -> bool:
        """The lease rule (``rules.may_start``), checked right before a gate opens."""
        if not self.node.holds_lease():
            return False
        run = self.node.run(run_id)
        return rules.may_start(run, self.node.name, holds_lease=True)

    async def _lease_back(self, run_id: str) -> bool:
        """Wait until this node may start ``run_id`` again (True), or it is no longer this
        node's to start (False): moved away while the lease was out, or ended."""
        while not self._may_start(run_id):
            run = self.node.run(run_id)
            if not rules.still_ours(run, self.node.name):
                return False
            await asyncio.sleep(config.NODE_WATCH_S)
        return True

    def _started(self, live: LiveRun, pid: int, started_at: float) -> None:
        """Note the start; the cluster hears of it only if the run is still going a moment later.

        Most runs are short: their ``FinishRun`` carries the start time and pid, and
        one Raft command per run is saved. A longer run is replicated as running.
        """
        live.pgid = pid
        live.started_at = started_at
        self.node.loop.call_later(config.START_REPORT_DELAY_S, self._report_start, live)

    def _report_start(self, live: LiveRun) -> None:
        if self.live.get(live.run.id) is not live or live.pgid is None:
            return
        started_at = live.started_at or self.clock()
        command = c.StartRun(live.run.id, self.node.name, live.pgid, started_at)
        self._spawn(self._proposer.propose(command))

    def _output(self, live: LiveRun, chunk: bytes) -> None:
        live.output.add(live.run.id, chunk)

    async def _report(self, live: LiveRun, outcome: RunOutcome) -> None:
        """Save the ended run's output and records here, tell its followers, commit its end."""
        self._forget(live)
        keep_here(self.store, live, outcome)
        command = finish_of(live, outcome)
        live.output.close(live.run.id)
        await self._finishes.end(command)

    async def _finish(
        self, run: Run, status: RunStatus, message: str, at: float | None = None
    ) -> None:
        """End ``run`` without its running here (skipped, cancelled, failed to start, lost)."""
        at = self.clock() if at is None else at
        await self._finishes.end(
            c.FinishRun(run_id=run.id, status=status, finished_at=at, message=message)
        )

    async def stop(self) -> None:
        for run_id in self.live:
            self.executor.kill(run_id)
        await self._prepare.drop_all()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)


def _launch_view(
    state: ReadState, run_id: str, late_by: float | None
) -> tuple[Run | None, Job | None, list[Run]]:
    """What a launch reads at once: the run, its job, and its siblings if a rule needs them."""
    run = state.runs.get(run_id)
    job = state.jobs.get(run.job_id) if run else None
    needed = rules.needs_siblings(job, late=late_by is not None)
    siblings = list(state.runs_of(job.id)) if job and needed else []
    return run, job, siblings
