"""Starting the runs planned for this node, on time, and reporting how they ended.

A ``RunPlanned`` event for this node arms a timer for the run's instant; the
launch itself waits for no Raft round trip (the plan was committed ahead). The
start and the finish are proposed afterwards. Each live run has a token that
its SDK presents to add records; they go whole to this node's run store, and a
bounded summary of them travels with ``FinishRun`` (``odin.cluster.summary``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from odin import config
from odin.cluster import commands as c
from odin.cluster.model import Job, Record, Run, RunReason, RunStatus
from odin.cluster.quotas import human_bytes
from odin.cluster.state import (
    Event,
    JobRemoved,
    RunFinished,
    RunPlanned,
    RunStarted,
    StateRestored,
)
from odin.cluster.summary import record_size, summarize
from odin.engine.node import EngineNode
from odin.engine.started import StartedFile
from odin.errors import ExecutionError, InvalidInput, LimitExceeded, OdinError, PermissionDenied
from odin.executor import early, interpreters
from odin.executor.alarm import Alarm
from odin.executor.files import CodeFiles
from odin.executor.runner import Held, hold
from odin.executor.spec import LaunchSpec, RunOutcome
from odin.store.sqlite import Store

log = logging.getLogger("odin.launcher")

GoBuilder = Callable[[Job], Awaitable[Path]]
Watcher = Callable[[str, bytes | None], None]


@dataclass
class LiveRun:
    """A run this node is executing: its token, process group and what it reported."""

    run: Run
    token: str
    cancel: Alarm = field(default_factory=Alarm)
    pgid: int | None = None
    started_at: float | None = None
    records: list[Record] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # each record's bytes (record_size)
    watchers: list[Watcher] = field(default_factory=list)
    recent: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class Prepared:
    """A launch made ready ahead of its instant, for one version of the job."""

    version: int
    token: str
    held: Held


@dataclass(frozen=True)
class LaunchContext:
    socket_path: str
    code_root: Path
    sdk_python: str | None
    sdk_node: str | None
    build_go: GoBuilder
    python_start: str | None = None  # the installed prelude (odin.executor.early)


class _Tokens:
    """Run tokens as ``secrets.token_urlsafe(24)`` makes them (24 bytes of ``os.urandom``,
    URL-safe base64), with the random bytes read 4 KiB at a time: one system call per
    170 runs instead of one per run (it showed in the engine's profile)."""

    _SIZE = 24
    _COUNT = 4096 // _SIZE

    def __init__(self) -> None:
        self._pool = b""
        self._next = 0

    def take(self) -> str:
        if self._next >= len(self._pool):
            self._pool, self._next = os.urandom(self._COUNT * self._SIZE), 0
        raw = self._pool[self._next : self._next + self._SIZE]
        self._next += self._SIZE
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_tokens = _Tokens()


class Launcher:
    """Arms timers for this node's planned runs and drives them to a finish."""

    def __init__(
        self, node: EngineNode, store: Store, context: LaunchContext, started: StartedFile
    ) -> None:
        self.node = node
        self.store = store
        self.context = context
        self.started = started
        self.live: dict[str, LiveRun] = {}
        self._armed: set[str] = set()
        self._prepared: dict[str, asyncio.Future[Prepared]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queues: dict[str, asyncio.Lock] = {}  # overlap: queue, one lock per job
        self._waiting: Counter[str] = Counter()  # queued runs by job id and by "uid:<owner>"
        self._unsettled: set[str] = set()  # started here, not yet running or finished in the log
        self._late: dict[str, float] = {}  # run id -> seconds past its instant when committed
        self._code = CodeFiles(context.code_root)
        self._ending: list[tuple[c.FinishRun, asyncio.Future[None]]] = []  # not yet proposed
        self._ending_records = 0  # SDK records in those ends
        self._born = time.time()  # what other nodes recorded as running before may be stale
        self.record_bytes: Counter[int] = Counter()  # records held by live runs, per owner uid

    # -- events ------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if isinstance(event, RunPlanned) and event.run.node == self.node.name:
            now = time.time()
            if _stale(event.run, now):
                self._late[event.run.id] = now - event.run.instant
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
                    live.cancel.set()
        elif isinstance(event, StateRestored):
            self._spawn(self.backfill())

    def arm(self, run: Run) -> None:
        if run.id in self._armed:
            return
        self._armed.add(run.id)
        self._prepared[run.id] = asyncio.ensure_future(self._prepare(run))
        delay = max(0.0, run.instant - time.time())
        self.node.loop.call_later(delay, self._fire, run.id)

    def _fire(self, run_id: str) -> None:
        self._spawn(self._launch(run_id))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reconcile(self) -> None:
        """After a restart: arm what was planned here, and mark what was running as lost."""
        now = time.time()
        with self.node.lock:
            mine = [r for r in self.node.state.active_runs() if r.node == self.node.name]
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
        with self.node.lock:
            finished = [r for r in self.node.state.runs.values() if r.status.finished]
        missing = await asyncio.to_thread(self.store.missing_runs, [r.id for r in finished])
        for run in finished:
            if run.id in missing:
                self.store.later(self.store.save_run, run)

    # -- one launch --------------------------------------------------------

    async def _launch(self, run_id: str) -> None:
        try:
            await self._launch_now(run_id)
        finally:
            await _discard(self._prepared.pop(run_id, None))

    async def _launch_now(self, run_id: str) -> None:
        with self.node.lock:
            run = self.node.state.runs.get(run_id)
            job = self.node.state.jobs.get(run.job_id) if run else None
            needed = job is not None and (job.overlap == "skip" or run_id in self._late)
            siblings = list(self.node.state.runs_of(job.id)) if job and needed else []
        late_by = self._late.pop(run_id, None)
        if run is None or run.status is not RunStatus.PLANNED or run.node != self.node.name:
            return  # ended, or moved to another node while this one could not start it
        if job is None:
            await self._finish(run, RunStatus.CANCELLED, "the job was removed", time.time())
            return
        if late_by is not None:
            now = time.time()
            newer_due = any(
                r.reason is RunReason.SCHEDULE and run.instant < r.instant <= now for r in siblings
            )
            verdict = late_verdict(job.catchup, late_by, newer_due)
            if verdict is not None:
                await self._finish(run, RunStatus.SKIPPED, verdict, now)
                return
        if job.overlap == "skip" and await self._going(run, siblings):
            msg = "skipped: the previous run was still running (overlap: skip)"
            await self._finish(run, RunStatus.SKIPPED, msg, time.time())
            return
        if job.overlap == "queue":
            await self._queued(job, run)
        else:
            await self._execute(job, run)

    async def _going(self, run: Run, siblings: list[Run]) -> bool:
        """Whether another run of the job is going (``another_going``), for ``overlap: skip``.

        A run another node recorded as running before this engine started may be what a
        crash left (every node restarted at once, say): its node marks it lost when it is
        back, or the leader when it is not. Such a run is waited on, at most
        ``NODE_LEASE_S`` and a second, before it is taken as going.
        """
        deadline = time.time() + config.NODE_LEASE_S + 1
        while True:
            live = [live.run for live in self.live.values()]
            doubtful = leftovers(siblings, self.node.name, self._born)
            sure = [r for r in siblings if r not in doubtful]
            if another_going(run, sure, self.node.name, live):
                return True
            if not doubtful:
                return False
            if time.time() > deadline:
                return another_going(run, siblings, self.node.name, live)
            await asyncio.sleep(config.NODE_WATCH_S)
            with self.node.lock:
                siblings = list(self.node.state.runs_of(run.job_id))

    async def _queued(self, job: Job, run: Run) -> None:
        """Start ``run`` once the job's earlier runs here have ended (``overlap: queue``).

        Nothing is held for a run while it waits (its process is made at its turn), the
        queue is bounded per job and per owner, and the job is read again at the turn: a
        run of a job removed or paused meanwhile does not start.
        """
        lock = self._queues.setdefault(job.id, asyncio.Lock())
        keys = (job.id, f"uid:{job.owner_uid}")
        if lock.locked():
            verdict = queue_verdict(self._waiting[keys[0]], self._waiting[keys[1]])
            if verdict is not None:
                await self._finish(run, RunStatus.SKIPPED, verdict, time.time())
                return
            await _discard(self._prepared.pop(run.id, None))
        self._waiting.update(keys)
        try:
            await lock.acquire()
        finally:
            self._waiting.subtract(keys)
            for key in keys:
                if self._waiting[key] <= 0:
                    del self._waiting[key]
        try:
            with self.node.lock:
                current = self.node.state.jobs.get(job.id)
                now_run = self.node.state.runs.get(run.id)
            if now_run is None or now_run.status is not RunStatus.PLANNED:
                return
            turn = turn_verdict(current)
            if turn is not None:
                await self._finish(run, *turn, time.time())
            elif current is not None:  # the job as it is now: a redeploy's code runs
                await self._execute(current, run)
        finally:
            lock.release()

    async def _prepare(self, run: Run, *, at_turn: bool = False) -> Prepared:
        """Everything a launch needs, made ahead of the instant: files, identity, environment,
        and, shortly before the instant, the process itself, held at its start gate (for a
        queued run that will have to wait its turn, only when the turn comes)."""
        with self.node.lock:
            job = self.node.state.jobs.get(run.job_id)
        if job is None:
            raise ExecutionError(f"job {run.job_id} was removed")
        token = _tokens.take()
        spec = await self._spec(job, run, token)
        wait = run.instant - config.HOLD_AHEAD_S - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        lock = self._queues.get(job.id)
        if not at_turn and job.overlap == "queue" and lock is not None and lock.locked():
            raise ExecutionError(f"run {run.id} waits its turn: its process is made then")
        return Prepared(job.version, token, await hold(spec))

    async def _prepared_for(self, job: Job, run: Run) -> Prepared:
        future = self._prepared.pop(run.id, None)
        prepared = None
        if future is not None:
            with contextlib.suppress(OdinError):
                prepared = await future
        if prepared is not None and prepared.version != job.version:
            await prepared.held.discard()  # made for the job as it was: make it again
            prepared = None
        if prepared is None:
            prepared = await self._prepare(run, at_turn=True)
        return prepared

    async def _execute(self, job: Job, run: Run) -> None:
        while True:
            try:
                prepared = await self._prepared_for(job, run)
            except OdinError as error:
                await self._finish(run, RunStatus.FAILED, f"could not start: {error}", time.time())
                return
            if self._may_start(run.id):
                break
            await prepared.held.discard()  # nothing is held while the lease is out
            if not await self._lease_back(run.id):
                return  # moved to another node meanwhile, or ended: not this node's to start
        if self.started.due():
            self.started.rewrite(self._unsettled)
        try:
            self.started.add(run.id)  # before the start: a restart must never start it again
        except ExecutionError as error:
            await prepared.held.discard()
            await self._finish(run, RunStatus.FAILED, f"could not start: {error}", time.time())
            return
        live = LiveRun(run=run, token=prepared.token)
        self.live[run.id] = live
        self._unsettled.add(run.id)
        try:
            outcome = await prepared.held.run(
                on_start=lambda pid, at: self._started(live, pid, at),
                on_output=lambda chunk: self._output(live, chunk),
                cancel=live.cancel,
            )
        except OdinError as error:
            self._forget(live)
            await self._finish(run, RunStatus.FAILED, f"could not start: {error}", time.time())
            return
        await self._report(live, outcome)

    def _forget(self, live: LiveRun) -> None:
        """A run is no longer live here: its records no longer count in its owner's bytes."""
        self.live.pop(live.run.id, None)
        owner = live.run.owner_uid
        self.record_bytes[owner] -= sum(live.sizes)
        if self.record_bytes[owner] <= 0:
            del self.record_bytes[owner]

    def _may_start(self, run_id: str) -> bool:
        """The lease rule (``odin.cluster.lease``), checked right before a gate opens: this
        node holds its lease and, in a state caught up with it, the run is still its own."""
        if not self.node.holds_lease():
            return False
        with self.node.lock:
            run = self.node.state.runs.get(run_id)
        return run is not None and run.status is RunStatus.PLANNED and run.node == self.node.name

    async def _lease_back(self, run_id: str) -> bool:
        """Wait until this node may start ``run_id`` again (True), or it is no longer this
        node's to start (False): moved away while the lease was out, or ended."""
        while not self._may_start(run_id):
            with self.node.lock:
                run = self.node.state.runs.get(run_id)
            if run is None or run.status is not RunStatus.PLANNED or run.node != self.node.name:
                return False
            await asyncio.sleep(config.NODE_WATCH_S)
        return True

    async def _spec(self, job: Job, run: Run, token: str) -> LaunchSpec:
        from odin.engine.users import owner_of

        owner = owner_of(job)
        if job.language == "go":
            program = str(await self.context.build_go(job))
        else:
            known = self._code.known(job.code_sha, job.filename, uid=owner.uid, job_id=job.id)
            program = (
                known
                if known is not None
                else await asyncio.to_thread(
                    self._code.write,
                    job.code,
                    job.code_sha,
                    job.filename,
                    uid=owner.uid,
                    gid=owner.gid,
                    job_id=job.id,
                )
            )
        env = interpreters.job_env(
            user=owner.user,
            home=owner.home,
            uid=owner.uid,
            extra=job.env,
            odin_vars={
                "ODIN_SOCKET": self.context.socket_path,
                "ODIN_JOB_ID": job.id,
                "ODIN_JOB_NAME": job.name,
                "ODIN_RUN_ID": run.id,
                "ODIN_RUN_TOKEN": token,
                "ODIN_NODE": self.node.name,
            },
            sdk_python_path=self.context.sdk_python,
            sdk_node_path=self.context.sdk_node,
        )
        return LaunchSpec(
            run_id=run.id,
            argv=interpreters.command_for(job.language, program),
            early_argv=early.command_for(job.language, program, self.context.python_start),
            uid=owner.uid,
            gid=owner.gid,
            groups=owner.groups,
            env=env,
            cwd=job.workdir or owner.home,
            timeout_s=job.timeout_s,
        )

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
        command = c.StartRun(live.run.id, self.node.name, live.pgid, live.started_at or time.time())
        self._spawn(self._propose_quietly(command))

    def _output(self, live: LiveRun, chunk: bytes) -> None:
        live.recent += chunk
        if len(live.recent) > config.LIVE_OUTPUT_KEPT_BYTES:
            del live.recent[: len(live.recent) - config.LIVE_OUTPUT_KEPT_BYTES]
        for watcher in list(live.watchers):
            watcher(live.run.id, chunk)

    async def _report(self, live: LiveRun, outcome: RunOutcome) -> None:
        run = live.run
        self._forget(live)
        status, message = _status_of(outcome, live.records)
        self.store.later(
            self.store.save_output,
            run.id,
            run.job_id,
            outcome.output,
            outcome.output_bytes,
            outcome.dropped_bytes,
            run.owner_uid,
        )
        if live.records:
            self.store.later(
                self.store.save_records, run.id, run.job_id, run.owner_uid, tuple(live.records)
            )
        tail = outcome.output[-config.OUTPUT_TAIL_BYTES :].decode("utf-8", errors="replace")
        command = c.FinishRun(
            run_id=run.id,
            status=status,
            finished_at=outcome.finished_at,
            exit_code=outcome.exit_code,
            message=message,
            started_at=outcome.started_at,
            output_tail=tail,
            output_bytes=outcome.output_bytes,
            dropped_bytes=outcome.dropped_bytes,
            records=summarize(live.records, live.sizes, config.RECORDS_SUMMARY_BYTES),
            record_count=len(live.records),
            pid=live.pgid,
        )
        for watcher in list(live.watchers):
            watcher(run.id, None)
        await self._end(command)

    async def _finish(self, run: Run, status: RunStatus, message: str, at: float) -> None:
        await self._end(c.FinishRun(run_id=run.id, status=status, finished_at=at, message=message))

    async def _end(self, command: c.FinishRun) -> None:
        """Commit a run's end together with the others that end within ``FINISH_BATCH_S``:
        one log entry (one proposal, one journal write, one apply) for all of them."""
        records = len(command.records)  # each up to MAX_RECORD_BYTES: they bound an entry's size
        if records > config.FINISH_BATCH_RECORDS:
            await self._propose_quietly(command)  # a big end goes alone
            return
        if self._ending_records + records > config.FINISH_BATCH_RECORDS:
            self._send_ends()
        done: asyncio.Future[None] = self.node.loop.create_future()
        self._ending.append((command, done))
        self._ending_records += records
        if len(self._ending) >= config.FINISH_BATCH_MAX:
            self._send_ends()
        elif len(self._ending) == 1:
            self.node.loop.call_later(config.FINISH_BATCH_S, self._send_ends)
        await done

    def _send_ends(self) -> None:
        batch, self._ending, self._ending_records = self._ending, [], 0
        if not batch:  # sent already, when the batch filled up
            return
        ends = tuple(command for command, _ in batch)
        command = ends[0] if len(ends) == 1 else c.FinishRuns(ends)
        self._spawn(self._propose_ends(command, [done for _, done in batch]))

    async def _propose_ends(
        self, command: c.FinishRun | c.FinishRuns, waiting: list[asyncio.Future[None]]
    ) -> None:
        try:
            await self._propose_quietly(command)
        finally:
            for done in waiting:
                if not done.done():
                    done.set_result(None)

    async def _propose_quietly(self, command: c.Command) -> None:
        """Propose, retrying a few times; a failure is logged, never raised into a run."""
        for attempt in range(5):
            try:
                await self.node.propose(command)
                return
            except OdinError as error:
                log.warning(
                    "proposing %s failed (%s), attempt %d", type(command).__name__, error, attempt
                )
                await asyncio.sleep(0.2 * (attempt + 1))

    async def stop(self) -> None:
        for live in self.live.values():
            live.cancel.set()
        for run_id in list(self._prepared):
            await _discard(self._prepared.pop(run_id, None))
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)


async def _discard(future: asyncio.Future[Prepared] | None) -> None:
    """Give up a launch that was prepared but will not run (its held process exits)."""
    if future is None:
        return
    if not future.done():
        future.cancel()  # a spawn cut short is cleaned up by asyncio itself
        return
    if not future.cancelled() and future.exception() is None:
        await future.result().held.discard()


def leftovers(siblings: list[Run], here: str, born: float) -> list[Run]:
    """Runs another node recorded as running that started before this engine did: they may
    be a crash's leftovers, not runs going on."""
    return [
        r
        for r in siblings
        if r.status is RunStatus.RUNNING and r.node != here and (r.started_at or 0.0) < born
    ]


def another_going(run: Run, siblings: list[Run], here: str, live_here: list[Run]) -> bool:
    """Whether another run of ``run``'s job is going.

    This node knows its own runs first hand (``live_here``): one started here is going until
    its process ends, whether or not the cluster has heard of its start (a short run is
    replicated as running only after ``START_REPORT_DELAY_S``) or of its end (its
    ``FinishRun`` may still be on its way). A run on another node is going while the log
    says it is running.
    """
    if any(r.status is RunStatus.RUNNING and r.node != here and r.id != run.id for r in siblings):
        return True
    return any(r.job_id == run.job_id and r.id != run.id for r in live_here)


def _stale(run: Run, now: float) -> bool:
    """A scheduled run whose plan took effect long after it was made, and after its instant.

    That happens when the leader could not reach a quorum for a while (its plans
    commit once it can again) or when the cluster is badly overloaded. Such a
    run is a missed tick, and the job's ``catchup`` decides its fate.
    """
    if run.reason is not RunReason.SCHEDULE:
        return False
    return now - run.planned_at > config.PLAN_STALE_S and now > run.instant + config.PLAN_STALE_S


def queue_verdict(waiting_for_job: int, waiting_for_owner: int) -> str | None:
    """Why a run that must wait its turn (``overlap: queue``) is skipped, or None to queue it."""
    if waiting_for_job >= config.MAX_QUEUED_PER_JOB:
        return (
            f"skipped: {waiting_for_job} runs of this job already wait their turn "
            f"(overlap: queue keeps at most {config.MAX_QUEUED_PER_JOB} per job)"
        )
    if waiting_for_owner >= config.MAX_QUEUED_PER_USER:
        return (
            f"skipped: {waiting_for_owner} runs of this user's jobs already wait their turn "
            f"(overlap: queue keeps at most {config.MAX_QUEUED_PER_USER} per user)"
        )
    return None


def turn_verdict(job: Job | None) -> tuple[RunStatus, str] | None:
    """How a queued run ends instead of starting when its turn comes, or None to start it."""
    if job is None:
        return RunStatus.CANCELLED, "cancelled: the job was removed while this run waited its turn"
    if job.paused:
        return RunStatus.SKIPPED, "skipped: the job was paused while this run waited its turn"
    return None


def late_verdict(catchup: str, late_by: float, newer_due: bool) -> str | None:
    """Why a tick whose plan took effect ``late_by`` seconds late is skipped, or None to run it.

    ``none`` skips every late tick, ``latest`` runs a late tick only when no later
    tick of the job is also due, ``all`` runs them all.
    """
    late = f"its plan took effect {late_by:.1f} s after its instant"
    if catchup == "none":
        return f"skipped: {late} (catchup: none)"
    if catchup == "latest" and newer_due:
        return f"skipped: {late} and a later tick is also due (catchup: latest)"
    return None


def _status_of(outcome: RunOutcome, records: list[Record]) -> tuple[RunStatus, str]:
    if outcome.timed_out:
        return RunStatus.TIMED_OUT, "timed out: the process group was killed"
    if outcome.cancelled:
        return RunStatus.CANCELLED, "cancelled: the job was removed while it ran"
    if outcome.exit_code == 0:
        return RunStatus.SUCCEEDED, "exec"
    if outcome.signal is not None:
        return RunStatus.FAILED, f"failed: killed by signal {outcome.signal}"
    results = [r for r in records if r.type == "result"]
    detail = f" ({results[-1].desc})" if results else ""
    return RunStatus.FAILED, f"failed: exit code {outcome.exit_code}{detail}"


RECORD_TYPES = frozenset({"watch", "condition", "result"})
RECORD_SLACK_BYTES = 256
"""SDKs format timestamps a little differently; the bound they enforce is exact, ours has slack."""


def check_record(raw: Any) -> Record:
    """A record from an SDK, checked for shape and size; InvalidInput/LimitExceeded otherwise."""
    if not isinstance(raw, dict):
        raise InvalidInput("a record is an object with seq, ts, type, desc and value")
    try:
        encoded = orjson.dumps(raw)
    except orjson.JSONEncodeError as error:
        raise InvalidInput(f"a record must be plain JSON with 64-bit integers ({error})") from None
    raw = orjson.loads(encoded)  # what every node will read back from the log
    size = len(encoded)
    if size > config.MAX_RECORD_BYTES + RECORD_SLACK_BYTES:
        raise LimitExceeded(
            f"a record is {size} bytes, over the limit of {config.MAX_RECORD_BYTES}"
        )
    kind, desc = raw.get("type"), raw.get("desc")
    seq, ts = raw.get("seq"), raw.get("ts")
    if kind not in RECORD_TYPES:
        raise InvalidInput(f"a record's type is watch, condition or result, not {kind!r}")
    if not isinstance(desc, str):
        raise InvalidInput("a record's desc must be a string")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(ts, int | float):
        raise InvalidInput("a record needs an integer seq and a numeric ts (seconds)")
    return Record(seq=seq, ts=float(ts), type=kind, desc=desc, value=raw.get("value"))


def add_records(launcher: Launcher, run_id: str, token: str, peer_pid: int | None, raw: Any) -> int:
    """Accept records for a live run from a process of that run holding its token."""
    live = launcher.live.get(run_id)
    if live is None or not secrets.compare_digest(live.token, token):
        raise PermissionDenied(f"no live run {run_id} with that token on this node")
    if peer_pid is None or live.pgid is None or not _in_run(peer_pid, live.pgid):
        raise PermissionDenied("records are accepted only from the run's own processes")
    if not isinstance(raw, list):
        raise InvalidInput("records must be a list")
    records = [check_record(item) for item in raw]
    seen = {(r.seq, r.ts, r.type, r.desc) for r in live.records}
    fresh = [r for r in records if (r.seq, r.ts, r.type, r.desc) not in seen]
    if len(live.records) + len(fresh) > config.MAX_RECORDS_PER_RUN:
        raise LimitExceeded(f"a run may make at most {config.MAX_RECORDS_PER_RUN} records")
    sizes = [record_size(r) for r in fresh]
    owner = live.run.owner_uid
    verdict = held_records_verdict(launcher.record_bytes[owner], sum(sizes), launcher.node.name)
    if verdict is not None:
        raise LimitExceeded(verdict)
    live.records.extend(fresh)
    live.sizes.extend(sizes)
    launcher.record_bytes[owner] += sum(sizes)
    return len(records)


def held_records_verdict(held: int, more: int, node: str) -> str | None:
    """Why ``more`` bytes of records are refused to a user whose live runs here hold ``held``
    (they are in memory until each run ends), or None."""
    quota = config.RECORD_BYTES_KEPT_PER_USER
    if held + more <= quota:
        return None
    return (
        f"over the quota of {quota} bytes ({human_bytes(quota)}) of records per user "
        f"(RECORD_BYTES_KEPT_PER_USER): your runs on node {node} hold {held} bytes of records "
        f"and these are {more} more"
    )


def _in_run(pid: int, pgid: int) -> bool:
    try:
        return bool(os.getpgid(pid) == pgid or os.getsid(pid) == pgid)
    except ProcessLookupError:
        return False
