"""The launcher's pure verdicts (``odin.engine.rules``) and its small collaborators, without
an engine: the proposer's retry rule, the finish batcher, the live-output buffer, the queues
and the records held per owner."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest

from odin import config
from odin.cluster import commands as c
from odin.cluster.model import Job, Record, Run, RunReason, RunStatus
from odin.engine import proposer as proposer_module
from odin.engine import rules
from odin.engine.finishes import FinishBatcher, finish_of
from odin.engine.liveoutput import LiveOutput
from odin.engine.liverun import LiveRun
from odin.engine.proposer import Proposer, run_ids
from odin.engine.queues import JobQueues
from odin.engine.records import HeldRecords
from odin.errors import LimitExceeded, OdinError, Unavailable
from odin.executor.spec import RunOutcome
from odin.jobs.spec import Catchup, Language, Overlap

T0 = 1_800_000_000.0
HERE = "n1"


def job(**changes: Any) -> Job:
    base = Job(
        id="abc",
        owner_uid=1000,
        owner_gid=1000,
        owner="alice",
        name="n",
        description="",
        language=Language.PYTHON,
        filename="n.py",
        schedule="every 10 seconds",
        timezone="UTC",
        code="print(1)",
        yaml="",
        code_sha="x",
    )
    return dataclasses.replace(base, **changes)


def run(offset: float = 0.0, **changes: Any) -> Run:
    base = Run(
        id=f"abc@{T0 + offset}",
        job_id="abc",
        owner_uid=1000,
        instant=T0 + offset,
        reason=RunReason.SCHEDULE,
        node=HERE,
        planned_at=T0 + offset - 1,
    )
    return dataclasses.replace(base, **changes)


def outcome(**changes: Any) -> RunOutcome:
    base = RunOutcome(
        exit_code=0,
        signal=None,
        timed_out=False,
        started_at=T0,
        finished_at=T0 + 1,
        pid=4242,
        output=b"hello\n",
        output_bytes=6,
        dropped_bytes=0,
    )
    return dataclasses.replace(base, **changes)


def record(seq: int, kind: str = "watch", desc: str = "d") -> Record:
    return Record(seq=seq, ts=T0, type=kind, desc=desc, value=seq)


# -- is it late -----------------------------------------------------------------


def test_stale_needs_both_a_late_commit_and_a_passed_instant() -> None:
    late = config.PLAN_STALE_S + 0.5
    assert rules.stale(run(planned_at=T0 - 1), T0 + late)
    assert not rules.stale(run(planned_at=T0 + late - 1), T0 + late)  # planned just now
    assert not rules.stale(run(planned_at=T0 - 60), T0 + 1)  # instant only just passed
    assert not rules.stale(run(reason=RunReason.MANUAL, planned_at=T0 - 60), T0 + 60)


def test_newer_tick_due_counts_scheduled_ticks_after_this_one_and_due_by_now() -> None:
    this = run(0)
    assert rules.newer_tick_due(this, [this, run(10)], now=T0 + 10)
    assert not rules.newer_tick_due(this, [this, run(10)], now=T0 + 9)  # not due yet
    assert not rules.newer_tick_due(this, [run(-10), this], now=T0 + 10)  # an older one
    manual = run(5, reason=RunReason.MANUAL)
    assert not rules.newer_tick_due(this, [this, manual], now=T0 + 10)


@pytest.mark.parametrize(
    ("catchup", "newer_due", "skipped"),
    [
        (Catchup.NONE, False, True),
        (Catchup.NONE, True, True),
        (Catchup.LATEST, False, False),
        (Catchup.LATEST, True, True),
        (Catchup.ALL, False, False),
        (Catchup.ALL, True, False),
    ],
)
def test_late_verdict_follows_catchup(catchup: Catchup, newer_due: bool, skipped: bool) -> None:
    verdict = rules.late_verdict(catchup, 12.34, newer_due)
    assert (verdict is not None) is skipped
    if verdict is not None:
        assert verdict.startswith("skipped: ") and "12.3 s" in verdict and str(catchup) in verdict


def test_siblings_are_read_for_late_ticks_and_overlap_skip_only() -> None:
    assert not rules.needs_siblings(None, late=True)
    assert rules.needs_siblings(job(overlap=Overlap.SKIP), late=False)
    assert not rules.needs_siblings(job(overlap=Overlap.QUEUE), late=False)
    assert not rules.needs_siblings(job(overlap=Overlap.ALLOW), late=False)
    assert rules.needs_siblings(job(overlap=Overlap.ALLOW), late=True)


# -- overlap ----------------------------------------------------------------------


def test_leftovers_are_other_nodes_running_runs_started_before_this_engine() -> None:
    born = T0 + 100
    old_there = run(0, node="n2", status=RunStatus.RUNNING, started_at=T0)
    new_there = run(200, node="n2", status=RunStatus.RUNNING, started_at=T0 + 200)
    old_here = run(10, status=RunStatus.RUNNING, started_at=T0 + 10)
    planned_there = run(20, node="n2")
    unknown_start = run(30, node="n2", status=RunStatus.RUNNING)
    siblings = [old_there, new_there, old_here, planned_there, unknown_start]
    assert rules.leftovers(siblings, HERE, born) == [old_there, unknown_start]


def test_another_going_counts_other_nodes_by_the_log_and_this_node_first_hand() -> None:
    this = run(10)
    running_there = run(0, node="n2", status=RunStatus.RUNNING)
    assert rules.another_going(this, [running_there, this], HERE, live_here=[])
    running_here_in_log = run(0, status=RunStatus.RUNNING)  # ended here: not live any more
    assert not rules.another_going(this, [running_here_in_log, this], HERE, live_here=[])
    assert rules.another_going(this, [this], HERE, live_here=[run(0)])
    assert not rules.another_going(this, [this], HERE, live_here=[this])
    other_job = run(0, job_id="def", id=f"def@{T0}")
    assert not rules.another_going(this, [this], HERE, live_here=[other_job])


def test_overlap_verdict_is_sure_without_leftovers() -> None:
    this = run(10)
    going = run(0, node="n2", status=RunStatus.RUNNING, started_at=T0 + 5)
    args: dict[str, Any] = {"born": T0, "now": T0 + 10, "deadline": T0 + 16}
    assert rules.overlap_verdict(this, [going, this], HERE, [], **args) is True
    assert rules.overlap_verdict(this, [this], HERE, [], **args) is False
    assert rules.overlap_verdict(this, [this], HERE, [run(0)], **args) is True


def test_overlap_verdict_waits_on_a_leftover_until_its_deadline() -> None:
    this = run(10)
    leftover = run(0, node="n2", status=RunStatus.RUNNING, started_at=T0 - 50)
    born, deadline = T0, T0 + 10 + rules.LEFTOVER_WAIT_S
    before = rules.overlap_verdict(
        this, [leftover, this], HERE, [], born=born, now=T0 + 10, deadline=deadline
    )
    assert before is None
    after = rules.overlap_verdict(
        this, [leftover, this], HERE, [], born=born, now=deadline + 0.1, deadline=deadline
    )
    assert after is True
    # a sure run going decides at once, leftover or not
    live = [run(5)]
    sure = rules.overlap_verdict(
        this, [leftover, this], HERE, live, born=born, now=T0, deadline=deadline
    )
    assert sure is True


def test_queue_verdict_bounds_waiting_runs_per_job_then_per_owner() -> None:
    assert rules.queue_verdict(0, 0) is None
    assert (
        rules.queue_verdict(config.MAX_QUEUED_PER_JOB - 1, config.MAX_QUEUED_PER_USER - 1) is None
    )
    per_job = rules.queue_verdict(config.MAX_QUEUED_PER_JOB, 0)
    assert per_job is not None and "per job" in per_job
    per_user = rules.queue_verdict(0, config.MAX_QUEUED_PER_USER)
    assert per_user is not None and "per user" in per_user


def test_turn_verdict_ends_runs_of_removed_or_paused_jobs() -> None:
    removed = rules.turn_verdict(None)
    assert removed is not None and removed[0] is RunStatus.CANCELLED
    paused = rules.turn_verdict(job(paused=True))
    assert paused is not None and paused[0] is RunStatus.SKIPPED
    assert rules.turn_verdict(job()) is None


# -- the start gate ------------------------------------------------------------------


def test_a_run_may_start_only_planned_here_with_the_lease_held() -> None:
    assert rules.may_start(run(), HERE, holds_lease=True)
    assert not rules.may_start(run(), HERE, holds_lease=False)
    assert not rules.may_start(None, HERE, holds_lease=True)
    assert not rules.may_start(run(node="n2"), HERE, holds_lease=True)
    assert not rules.may_start(run(status=RunStatus.RUNNING), HERE, holds_lease=True)
    assert rules.still_ours(run(), HERE)
    assert not rules.still_ours(run(status=RunStatus.SKIPPED), HERE)


# -- how it ended ----------------------------------------------------------------------


def test_end_verdict_names_how_a_process_ended() -> None:
    assert rules.end_verdict(outcome(), []) == (RunStatus.SUCCEEDED, "exec")
    timed_out = rules.end_verdict(outcome(timed_out=True, exit_code=None, signal=9), [])
    assert timed_out[0] is RunStatus.TIMED_OUT
    cancelled = rules.end_verdict(outcome(cancelled=True, exit_code=None, signal=15), [])
    assert cancelled[0] is RunStatus.CANCELLED
    killed = rules.end_verdict(outcome(exit_code=None, signal=9), [])
    assert killed == (RunStatus.FAILED, "failed: killed by signal 9")
    assert rules.end_verdict(outcome(exit_code=3), []) == (RunStatus.FAILED, "failed: exit code 3")
    results = [record(1, "result", "first"), record(2, "watch"), record(3, "result", "last")]
    failed = rules.end_verdict(outcome(exit_code=3), results)
    assert failed == (RunStatus.FAILED, "failed: exit code 3 (last)")


# -- the proposer ---------------------------------------------------------------------


class FlakyCluster:
    """Fails the first ``failures`` proposals with ``error``, then commits."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or Unavailable("no quorum")
        self.tries: list[c.Command] = []
        self.pauses: list[float] = []

    async def propose(self, command: c.Command) -> None:
        self.tries.append(command)
        if len(self.tries) <= self.failures:
            raise self.error

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


def finish(run_id: str, records: int = 0) -> c.FinishRun:
    kept = tuple(record(i) for i in range(records))
    return c.FinishRun(run_id=run_id, status=RunStatus.SUCCEEDED, finished_at=T0, records=kept)


def test_the_proposer_commits_at_once_when_it_can() -> None:
    cluster = FlakyCluster(0)
    assert asyncio.run(Proposer(cluster.propose, cluster.sleep).propose(finish("a")))
    assert len(cluster.tries) == 1 and cluster.pauses == []


def test_the_proposer_retries_with_a_growing_pause() -> None:
    cluster = FlakyCluster(3)
    assert asyncio.run(Proposer(cluster.propose, cluster.sleep).propose(finish("a")))
    assert len(cluster.tries) == 4
    assert cluster.pauses == pytest.approx([0.2, 0.4, 0.6])


def test_the_proposer_gives_up_loudly_after_its_last_try(caplog: pytest.LogCaptureFixture) -> None:
    cluster = FlakyCluster(100)
    command = c.FinishRuns((finish("a"), finish("b")))
    with caplog.at_level(logging.WARNING, logger="odin.launcher"):
        committed = asyncio.run(Proposer(cluster.propose, cluster.sleep).propose(command))
    assert not committed
    assert len(cluster.tries) == proposer_module.TRIES == 5
    assert cluster.pauses == pytest.approx([0.2, 0.4, 0.6, 0.8])  # none after the last
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "a, b" in errors[0].getMessage()
    assert "NOT recorded" in errors[0].getMessage()


def test_the_proposer_does_not_swallow_what_is_no_odin_error() -> None:
    cluster = FlakyCluster(1, error=RuntimeError("bug"))
    with pytest.raises(RuntimeError):
        asyncio.run(Proposer(cluster.propose, cluster.sleep).propose(finish("a")))
    assert isinstance(Unavailable("x"), OdinError)


def test_run_ids_of_the_launchers_commands() -> None:
    assert run_ids(finish("a")) == ["a"]
    assert run_ids(c.StartRun("b", HERE, 1, T0)) == ["b"]
    assert run_ids(c.FinishRuns((finish("a"), finish("b")))) == ["a", "b"]


# -- the finish batcher ----------------------------------------------------------------


async def _batch(ends: list[c.FinishRun]) -> list[c.Command]:
    sent: list[c.Command] = []
    tasks: list[asyncio.Future[Any]] = []

    async def propose(command: c.Command) -> bool:
        sent.append(command)
        return True

    batcher = FinishBatcher(
        asyncio.get_running_loop(), propose, lambda aw: tasks.append(asyncio.ensure_future(aw))
    )
    await asyncio.gather(*(batcher.end(end) for end in ends))
    await asyncio.gather(*tasks)
    return sent


def test_ends_that_come_together_are_one_finish_runs() -> None:
    sent = asyncio.run(_batch([finish("a"), finish("b"), finish("c")]))
    assert sent == [c.FinishRuns((finish("a"), finish("b"), finish("c")))]


def test_a_lone_end_goes_as_its_finish_run() -> None:
    assert asyncio.run(_batch([finish("a")])) == [finish("a")]


def test_a_full_batch_goes_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "FINISH_BATCH_MAX", 2)
    sent = asyncio.run(_batch([finish("a"), finish("b"), finish("c")]))
    assert sent == [c.FinishRuns((finish("a"), finish("b"))), finish("c")]


def test_records_bound_a_batch_and_a_big_end_goes_alone() -> None:
    most = config.FINISH_BATCH_RECORDS
    big = finish("big", records=most + 1)
    half = finish("h1", records=most // 2 + 1)
    other = finish("h2", records=most // 2 + 1)
    sent = asyncio.run(_batch([finish("a"), big, half, other]))
    assert big in sent  # alone, at once
    assert c.FinishRuns((finish("a"), half)) in sent and other in sent
    assert len(sent) == 3


def test_finish_of_carries_the_outcome_and_a_record_summary() -> None:
    live = LiveRun(run=run(), token="t", pgid=77)
    live.records.extend([record(1), record(2, "result", "bad input")])
    live.sizes.extend([10, 10])
    command = finish_of(live, outcome(exit_code=2, output=b"x" * 10))
    assert command.status is RunStatus.FAILED and command.message.endswith("(bad input)")
    assert command.record_count == 2 and command.pid == 77 and command.output_tail == "x" * 10


# -- live output, queues, held records ---------------------------------------------------


def test_live_output_keeps_the_latest_bytes_and_feeds_its_watchers() -> None:
    output = LiveOutput(kept=5)
    seen: list[tuple[str, bytes | None]] = []
    output.add("r", b"abc")
    output.watchers.append(lambda run_id, chunk: seen.append((run_id, chunk)))
    output.add("r", b"defg")
    output.close("r")
    assert bytes(output.recent) == b"cdefg"
    assert seen == [("r", b"defg"), ("r", None)]
    live = LiveRun(run=run(), token="t")
    assert live.recent is live.output.recent and live.watchers is live.output.watchers


def test_queued_runs_take_their_turns_in_order() -> None:
    async def scenario() -> list[str]:
        queues, order = JobQueues(), []
        first = job()

        async def one(name: str) -> None:
            async with queues.turn(first):
                order.append(name)
                await asyncio.sleep(0)

        assert not queues.busy(first.id)
        async with queues.turn(first):
            assert queues.busy(first.id)
            waiting = [asyncio.ensure_future(one(n)) for n in ("b", "c")]
            await asyncio.sleep(0)
            assert queues.verdict(first) is None
        await asyncio.gather(*waiting)
        assert not queues.busy(first.id)
        return order

    assert asyncio.run(scenario()) == ["b", "c"]


def test_a_full_queue_refuses_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_QUEUED_PER_JOB", 1)

    async def scenario() -> str | None:
        queues, first = JobQueues(), job()
        async with queues.turn(first):
            waiting = asyncio.ensure_future(queues.turn(first).__aenter__())
            await asyncio.sleep(0)
            verdict = queues.verdict(first)
        await waiting
        return verdict

    verdict = asyncio.run(scenario())
    assert verdict is not None and "per job" in verdict


def test_held_records_are_counted_per_owner_and_given_back() -> None:
    held = HeldRecords(HERE)
    quota = config.RECORD_BYTES_KEPT_PER_USER
    held.take(1000, quota - 10)
    with pytest.raises(LimitExceeded):
        held.take(1000, 11)
    held.take(1001, 11)  # another owner
    live = LiveRun(run=run(), token="t", sizes=[quota - 10])
    held.release(live)
    assert 1000 not in held.bytes and held.bytes[1001] == 11
