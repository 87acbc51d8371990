"""The launcher (``odin.engine.launcher``) end to end on one node, with no process made: a real
single-node Raft log and SQLite run store, and the in-memory executor (``fake_executor``).

Each test commits real commands (``PutJob``, ``PlanRuns``, ``RemoveJob``) and reads what
followed in the replicated state and in the fake's records of what it prepared, opened,
discarded and killed. Runs are planned a moment ahead, as the ticker plans them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pwd
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from engine_harness import free_port
from fake_executor import FakeExecutor, FakeHeld, Script
from odin import config
from odin.cluster import commands as c
from odin.cluster.model import Job, Run, RunReason, RunStatus, run_id
from odin.engine import rules
from odin.engine.admission import Admission, Ticket
from odin.engine.launcher import LaunchContext, Launcher
from odin.engine.node import EngineNode
from odin.engine.started import StartedFile
from odin.engine.users import Owners
from odin.executor.spec import LaunchSpec
from odin.jobs.spec import Language, Overlap
from odin.store.sqlite import Store

T = TypeVar("T")

HERE = "n1"
OWNER = pwd.getpwuid(os.geteuid())  # Owners.of looks the owner up: one that exists
EARLY_S = 0.01  # the loop's timers and the wall clock may disagree by this much


@dataclass
class ClockedExecutor(FakeExecutor):
    """The fake executor, also keeping when each run was last prepared (wall clock) and
    every held run it made, by run id."""

    prepared_at: dict[str, float] = field(default_factory=dict)
    helds: dict[str, list[FakeHeld]] = field(default_factory=dict)
    most_held: int = 0  # the most processes held (made, not yet opened or thrown away) at once

    async def prepare(self, spec: LaunchSpec) -> FakeHeld:
        self.prepared_at[spec.run_id] = time.time()
        held = await super().prepare(spec)
        self.helds.setdefault(spec.run_id, []).append(held)
        waiting = sum(1 for hs in self.helds.values() for h in hs if not (h.opened or h.discarded))
        self.most_held = max(self.most_held, waiting)
        return held


@dataclass
class World:
    """One node: its loop, Raft log, store, launcher and fake executor."""

    loop: asyncio.AbstractEventLoop
    node: EngineNode
    launcher: Launcher
    fake: ClockedExecutor

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def put(self, name: str, **changes: Any) -> Job:
        job = Job(
            id=name,
            owner_uid=OWNER.pw_uid,
            owner_gid=OWNER.pw_gid,
            owner=OWNER.pw_name,
            name=name,
            description="",
            language=Language.PYTHON,
            filename=f"{name}.py",
            schedule="every 1 hour",
            timezone="UTC",
            code="print('hi')",
            yaml="",
            code_sha=f"sha-{name}",
        )
        job = dataclasses.replace(job, **changes)
        await self.node.propose(c.PutJob(job))
        return job

    def new_run(self, job: Job, in_s: float, node: str = HERE) -> Run:
        """A run of ``job`` on ``node``, ``in_s`` seconds from now, as the ticker makes it
        (whole milliseconds: run ids keep no more)."""
        instant = round(time.time() + in_s, 3)
        return Run(
            id=run_id(job.id, instant),
            job_id=job.id,
            owner_uid=job.owner_uid,
            instant=instant,
            reason=RunReason.SCHEDULE,
            node=node,
            planned_at=time.time(),
        )

    async def commit(self, *runs: Run) -> None:
        """Plan ``runs`` in one ``PlanRuns``, as the ticker commits a batch."""
        ledger: dict[str, float] = {}
        for run in runs:
            ledger[run.job_id] = max(run.instant, ledger.get(run.job_id, run.instant))
        planned = await self.node.propose(c.PlanRuns(runs=runs, ledger=ledger))
        assert planned == [run.id for run in runs]

    async def plan(self, job: Job, in_s: float, node: str = HERE) -> Run:
        run = self.new_run(job, in_s, node)
        await self.commit(run)
        return run

    async def ended(self, run: Run, timeout: float = 3.0) -> Run:
        """``run`` as the state holds it once it finished."""

        def finished() -> Run | None:
            now = self.node.run(run.id)
            return now if now is not None and now.status.finished else None

        return await until(finished, timeout, f"run {run.id} to finish")


async def until(condition: Callable[[], T | None], timeout: float = 3.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}: last={last!r}")


async def _no_go(job: Job) -> Path:
    raise AssertionError(f"no Go job here ({job.id})")


class RecordedAdmission(Admission):
    """The admission control, also keeping the run ids in the order they got a slot."""

    granted: list[str]

    async def enter(self, ticket: Ticket) -> None:
        await super().enter(ticket)
        self.granted.append(ticket.run_id)

    def submit(self, ticket: Ticket, start: Callable[[], None]) -> None:
        def granted() -> None:
            self.granted.append(ticket.run_id)
            start()

        super().submit(ticket, granted)


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    loop = asyncio.new_event_loop()
    raft_dir = tmp_path / "raft"
    raft_dir.mkdir()
    store = Store(tmp_path / "store.db")
    started = StartedFile(raft_dir / "started-runs")
    node = EngineNode(
        name=HERE,
        raft_addr=f"127.0.0.1:{free_port()}",
        partners=[],
        data_dir=raft_dir,
        secret="launcher-test-secret",
        loop=loop,
    )
    context = LaunchContext(
        socket_path=str(tmp_path / "odin.sock"),
        code_root=tmp_path / "code",
        sdk_python=None,
        sdk_node=None,
        build_go=_no_go,
    )
    fake = ClockedExecutor()
    admission = RecordedAdmission(getattr(request, "param", config.LAUNCH_SLOTS), time.time)
    admission.granted = []
    launcher = Launcher(node, store, context, started, fake, Owners(), admission, clock=time.time)
    node.on_event(launcher.handle)
    try:
        node.start()
        assert loop.run_until_complete(node.wait_ready(timeout=10)), "the Raft log is not ready"
        loop.run_until_complete(launcher.reconcile())
        yield World(loop, node, launcher, fake)
    finally:
        try:
            loop.run_until_complete(launcher.stop())
        finally:
            node.stop()
            started.close()
            store.close()
            loop.run_until_complete(_cancel_the_rest())
            loop.close()


async def _cancel_the_rest() -> None:
    """Cancel what is left on the loop (a timer's task the test did not wait for)."""
    me = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def per_run(scripts: dict[str, Script]) -> Callable[[LaunchSpec], Script]:
    """A script for each run id (the default script for the others)."""
    return lambda spec: scripts.get(spec.run_id, Script())


# -- 1. prepared ahead, opened on time, ended -------------------------------------


def test_a_planned_run_is_prepared_ahead_opened_at_its_instant_and_succeeds(
    world: World,
) -> None:
    world.fake.script = Script(chunks=(b"hello\n", b"world\n"))
    store = world.launcher.store

    async def scenario() -> None:
        job = await world.put("ok")
        run = await world.plan(job, in_s=1.3)  # its process is made HOLD_AHEAD_S before
        await until(lambda: world.fake.prepared, what="the prepare ahead")
        assert world.fake.opened == []  # held at its gate until the instant
        assert world.node.run(run.id).status is RunStatus.PLANNED  # type: ignore[union-attr]
        done = await world.ended(run)

        prepared_at = world.fake.prepared_at[run.id]
        assert prepared_at < run.instant - config.HOLD_AHEAD_S / 2  # ahead, not at the instant
        assert world.fake.opened == [run.id]
        assert world.fake.discarded == []
        assert done.started_at is not None and done.started_at >= run.instant - EARLY_S
        assert done.started_at - run.instant < 1.0  # on time (on a loaded host too)
        assert done.status is RunStatus.SUCCEEDED
        assert done.exit_code == 0
        assert done.message == "exec"
        assert done.output_tail == "hello\nworld\n"
        assert done.output_bytes == len(b"hello\nworld\n")
        assert done.pid == 10_001  # the fake's first pid, carried by the FinishRun
        assert done.node == HERE
        assert world.node.runs_of(job.id) == [done]

        spec = world.fake.prepared[0]
        assert spec.run_id == run.id
        assert (spec.uid, spec.gid) == (OWNER.pw_uid, OWNER.pw_gid)
        assert spec.env["ODIN_RUN_ID"] == run.id and spec.env["ODIN_NODE"] == HERE
        assert Path(spec.argv[-1]).read_text() == job.code  # the code, written for its owner

        # kept here too: the whole output, and the run in the node's history
        assert await asyncio.to_thread(store.output, run.id) == (b"hello\nworld\n", 12, 0)
        saved = await until(lambda: store.run(run.id), what="the run in the history")
        assert saved.status is RunStatus.SUCCEEDED

    world.run(scenario())


def test_a_run_whose_script_exits_3_ends_failed_with_its_exit_code(world: World) -> None:
    world.fake.script = Script(chunks=(b"oops\n",), exit_code=3)

    async def scenario() -> None:
        job = await world.put("bad")
        run = await world.plan(job, in_s=0.3)
        done = await world.ended(run)
        assert done.status is RunStatus.FAILED
        assert done.exit_code == 3
        assert done.message == "failed: exit code 3"
        assert done.output_tail == "oops\n"
        assert world.fake.opened == [run.id]

    world.run(scenario())


# -- 2. overlap --------------------------------------------------------------------


def test_overlap_skip_skips_a_run_while_the_previous_one_is_live(world: World) -> None:
    async def scenario() -> None:
        job = await world.put("skipper", overlap=Overlap.SKIP)
        first, second = world.new_run(job, in_s=0.2), world.new_run(job, in_s=0.5)
        world.fake.script = per_run({first.id: Script(chunks=(b"1\n",), until_killed=True)})
        await world.commit(first, second)  # both prepared at once (within HOLD_AHEAD_S)

        skipped = await world.ended(second)
        assert skipped.status is RunStatus.SKIPPED
        assert skipped.message == rules.OVERLAP_SKIPPED
        assert skipped.message == "skipped: the previous run was still running (overlap: skip)"
        assert world.fake.opened == [first.id]
        # its held process is given up once the skip is committed
        await until(lambda: world.fake.discarded, what="the skipped run's held process")
        assert world.fake.discarded == [second.id]
        assert first.id in world.launcher.live

        assert world.launcher.executor.kill(first.id)
        ended = await world.ended(first)
        assert ended.status is RunStatus.CANCELLED
        assert ended.output_tail == "1\n"
        assert world.fake.killed == [first.id]
        assert world.launcher.live == {}

    world.run(scenario())


def test_a_manual_run_is_never_skipped_it_waits_for_the_live_one(world: World) -> None:
    async def scenario() -> None:
        job = await world.put("asked-skipper", overlap=Overlap.SKIP)
        first = world.new_run(job, in_s=0.2)
        manual = dataclasses.replace(world.new_run(job, in_s=0.4), reason=RunReason.MANUAL)
        world.fake.script = per_run(
            {
                first.id: Script(chunks=(b"1\n",), until_killed=True),
                manual.id: Script(chunks=(b"asked\n",)),
            }
        )
        await world.commit(first, manual)
        await until(lambda: world.fake.opened, what="the first run to open")
        await asyncio.sleep(manual.instant + 0.3 - time.time())  # well past its instant
        waiting = world.node.run(manual.id)
        assert waiting is not None and waiting.status is RunStatus.PLANNED
        assert world.launcher.admission.view().busy == 0  # neither holds a launch slot

        assert world.launcher.executor.kill(first.id)
        ended = await world.ended(manual, timeout=5.0)
        assert ended.status is RunStatus.SUCCEEDED, ended
        assert ended.output_tail == "asked\n"

    world.run(scenario())


def test_overlap_queue_holds_the_second_run_until_the_first_ends(world: World) -> None:
    async def scenario() -> None:
        job = await world.put("queued", overlap=Overlap.QUEUE)
        first, second = world.new_run(job, in_s=0.2), world.new_run(job, in_s=0.4)
        world.fake.script = per_run(
            {
                first.id: Script(chunks=(b"first\n",), until_killed=True),
                second.id: Script(chunks=(b"second\n",)),
            }
        )
        await world.commit(first, second)

        await until(lambda: world.fake.opened, what="the first run to open")
        await asyncio.sleep(second.instant + 0.3 - time.time())  # well past its instant
        assert world.fake.opened == [first.id]  # the second waits its turn
        assert world.node.run(second.id).status is RunStatus.PLANNED  # type: ignore[union-attr]
        # nothing is held while it waits (what was made ahead, if anything, was discarded)
        assert all(held.discarded for held in world.fake.helds.get(second.id, []))

        # past START_REPORT_DELAY_S the first is replicated as running
        def reported() -> Run | None:
            now = world.node.run(first.id)
            return now if now is not None and now.status is RunStatus.RUNNING else None

        running = await until(reported, what="the first run to be reported running")
        assert running.pid is not None

        assert world.launcher.executor.kill(first.id)
        ended = await world.ended(first)
        done = await world.ended(second)
        assert ended.status is RunStatus.CANCELLED
        assert done.status is RunStatus.SUCCEEDED
        assert done.output_tail == "second\n"
        assert world.fake.opened == [first.id, second.id]
        assert ended.finished_at is not None and done.started_at is not None
        assert done.started_at >= ended.finished_at  # its turn came once the first ended
        assert world.fake.prepared_at[second.id] >= ended.finished_at - EARLY_S  # made at its turn
        assert world.fake.helds[second.id][-1].opened

    world.run(scenario())


# -- 3. a job removed --------------------------------------------------------------


def test_a_run_of_a_job_removed_before_its_instant_is_discarded_never_opened(
    world: World,
) -> None:
    async def scenario() -> None:
        job = await world.put("gone")
        run = await world.plan(job, in_s=1.2)
        await until(lambda: world.fake.prepared, what="the prepare ahead")  # held at its gate
        await world.node.propose(c.RemoveJob(job.id))

        await asyncio.sleep(run.instant + 0.3 - time.time())
        await until(lambda: world.fake.discarded, what="the held run to be discarded")
        assert world.fake.discarded == [run.id]
        assert world.fake.opened == []
        assert world.launcher.live == {}
        # RemoveJob drops the job's active runs from the state with it: nothing is left to
        # mark cancelled (the launcher's "the job was removed" branch is not reached).
        assert world.node.run(run.id) is None
        assert world.node.runs_of(job.id) == []

    world.run(scenario())


def test_removing_a_job_kills_its_live_run(world: World) -> None:
    world.fake.script = Script(until_killed=True)

    async def scenario() -> None:
        job = await world.put("doomed")
        run = await world.plan(job, in_s=0.2)
        await until(lambda: world.fake.opened, what="the run to open")
        await world.node.propose(c.RemoveJob(job.id))
        await until(lambda: world.launcher.live == {}, what="the run to end")
        assert world.fake.killed == [run.id]
        assert world.node.run(run.id) is None

    world.run(scenario())


# -- 4. another node's run ---------------------------------------------------------


def test_a_run_planned_for_another_node_is_not_touched(world: World) -> None:
    async def scenario() -> None:
        job = await world.put("elsewhere")
        theirs = await world.plan(job, in_s=0.2, node="n2")
        mine = await world.plan(job, in_s=0.3)  # a witness that the launcher is working
        await world.ended(mine)
        await asyncio.sleep(theirs.instant + 0.1 - time.time())

        assert [s.run_id for s in world.fake.prepared] == [mine.id]
        assert world.fake.opened == [mine.id]
        assert theirs.id not in world.fake.discarded + world.fake.killed
        assert world.node.run(theirs.id) == theirs  # still planned, on n2, as committed

    world.run(scenario())


# -- 5. a prepare refused ----------------------------------------------------------


def test_a_prepare_the_executor_refuses_ends_the_run_failed(world: World) -> None:
    world.fake.script = Script(refused="no room for its process")

    async def scenario() -> None:
        job = await world.put("refused")
        run = await world.plan(job, in_s=0.2)
        done = await world.ended(run)
        assert done.status is RunStatus.FAILED
        assert done.message.startswith("could not start: ")
        assert "no room for its process" in done.message
        assert done.started_at is None and done.exit_code is None
        assert world.fake.opened == []
        assert world.launcher.live == {}
        # refused ahead, then asked once more at the instant before it is given up
        assert [s.run_id for s in world.fake.prepared] == [run.id, run.id]

    world.run(scenario())


# -- 6. a burst: a bounded number made at once, manual runs first --------------------


@pytest.mark.parametrize("world", [3], indirect=True)
def test_a_burst_is_made_a_few_at_a_time_manual_runs_first(world: World) -> None:
    async def scenario() -> list[Run]:
        jobs = [await world.put(f"burst{i}") for i in range(12)]
        runs = [world.new_run(job, 1.2) for job in jobs]
        manual = dataclasses.replace(
            world.new_run(await world.put("asked"), 1.2), reason=RunReason.MANUAL
        )
        await world.commit(*runs, manual)
        return [await world.ended(run, timeout=6.0) for run in [*runs, manual]]

    ended = world.run(scenario())
    assert all(run.status is RunStatus.SUCCEEDED for run in ended), ended
    assert world.fake.most_held <= 3
    granted = world.launcher.admission.granted  # type: ignore[attr-defined]
    assert [r.split("@")[0] for r in granted].index("asked") <= 3, granted
    assert world.launcher.admission.view().busy == 0
