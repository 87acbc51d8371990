"""The replicated state machine and the planner: pure logic, no I/O."""

from __future__ import annotations

import dataclasses
from collections import Counter

import orjson
import pytest

from job_values import a_job
from odin.cluster import commands as c
from odin.cluster.model import Job, NodeInfo, Record, Run, RunReason, RunStatus, run_id
from odin.cluster.state import JobRemoved, RunFinished, RunPlanned, StateMachine, retry_delay
from odin.engine.planner import Planner
from odin.errors import Conflict, InvalidInput, NotFound
from odin.jobs.fields import Catchup, Delivery, Overlap
from odin.jobs.language import Language

T0 = 1_800_000_000.0  # a fixed instant, divisible by 2 and 10


def job(job_id: str = "aaaaaaaaaaaa", **changes: object) -> Job:
    return a_job(job_id, **{"schedule": "every 10 seconds", **changes})


def plan(sm: StateMachine, j: Job, instant: float, node: str = "n1") -> Run:
    run = Run(
        id=run_id(j.id, instant),
        job_id=j.id,
        owner_uid=j.owner_uid,
        instant=instant,
        reason=RunReason.SCHEDULE,
        node=node,
        planned_at=instant - 1,
    )
    sm.apply(c.PlanRuns(runs=(run,), ledger={j.id: instant}))
    return run


def finish(sm: StateMachine, run: Run, status: RunStatus, at: float) -> list[object]:
    _, events = sm.apply(c.FinishRun(run_id=run.id, status=status, finished_at=at))
    return list(events)


def test_put_job_creates_then_updates_and_guards_the_owner() -> None:
    sm = StateMachine()
    sm.apply(c.PutJob(job()))
    saved, _ = sm.apply(c.PutJob(job(name="renamed", created_at=T0 + 50)))
    assert saved.version == 2 and saved.created_at == T0 and saved.name == "renamed"
    with pytest.raises(Conflict):
        sm.apply(c.PutJob(job(owner_uid=1001)))
    assert sm.jobs["aaaaaaaaaaaa"].owner_uid == 1000


def test_plan_runs_is_idempotent_and_the_ledger_only_moves_forward() -> None:
    sm = StateMachine()
    j = job()
    sm.apply(c.PutJob(j))
    run = plan(sm, j, T0 + 10)
    ids, events = sm.apply(c.PlanRuns(runs=(run,), ledger={j.id: T0}))
    assert ids == [] and events == []
    assert sm.ledger[j.id] == T0 + 10


def test_links_fire_by_outcome_and_retries_back_off() -> None:
    sm = StateMachine()
    a, b, f = job("aaaaaaaaaaaa", retries=1), job("bbbbbbbbbbbb"), job("ffffffffffff")
    for item in (a, b, f):
        sm.apply(c.PutJob(item))
    sm.apply(c.AddLink(a.id, b.id, "success"))
    sm.apply(c.AddLink(a.id, f.id, "failure"))
    first = plan(sm, a, T0)
    events = finish(sm, first, RunStatus.FAILED, T0 + 1)
    planned = [e.run for e in events if isinstance(e, RunPlanned)]
    # A failure with a retry left plans the retry only: links wait for the final attempt.
    assert [(r.job_id, r.reason, r.attempt) for r in planned] == [(a.id, RunReason.RETRY, 1)]
    assert planned[0].instant == T0 + 1 + retry_delay(0)
    events = finish(sm, planned[0], RunStatus.SUCCEEDED, T0 + 5)
    linked = [e.run for e in events if isinstance(e, RunPlanned)]
    assert [(r.job_id, r.reason, r.trigger) for r in linked] == [
        (b.id, RunReason.LINK, planned[0].id)
    ]
    assert any(isinstance(e, RunFinished) for e in events)


def test_a_finished_run_cannot_finish_twice() -> None:
    sm = StateMachine()
    j = job()
    sm.apply(c.PutJob(j))
    run = plan(sm, j, T0)
    assert finish(sm, run, RunStatus.SUCCEEDED, T0 + 1)
    assert finish(sm, run, RunStatus.FAILED, T0 + 2) == []
    assert sm.runs[run.id].status is RunStatus.SUCCEEDED


def test_a_lost_run_is_retried_on_another_node() -> None:
    sm = StateMachine()
    for name in ("n1", "n2", "n3"):
        sm.apply(c.AddNode(NodeInfo(name, f"h{name}", f"r{name}")))
    j = job(retries=2)
    sm.apply(c.PutJob(j))
    run = plan(sm, j, T0, node="n2")
    events = finish(sm, run, RunStatus.LOST, T0 + 6)
    retry = next(e.run for e in events if isinstance(e, RunPlanned))
    assert retry.node != "n2" and retry.attempt == 1


def test_a_lost_run_is_retried_only_on_a_member_the_job_may_run_on() -> None:
    """A retry keeps to the job's ``nodes:``; with none of them a member, none is planned."""
    sm = StateMachine()
    for name in ("n1", "n2", "n3"):
        sm.apply(c.AddNode(NodeInfo(name, f"h{name}", f"r{name}")))
    j = job(retries=2, nodes=("n3", "n1"))
    sm.apply(c.PutJob(j))
    events = finish(sm, plan(sm, j, T0, node="n1"), RunStatus.LOST, T0 + 6)
    assert [e.run.node for e in events if isinstance(e, RunPlanned)] == ["n3"]

    gone = job("bbbbbbbbbbbb", retries=2, nodes=("n4",))
    sm.apply(c.PutJob(gone))
    events = finish(sm, plan(sm, gone, T0, node="n4"), RunStatus.LOST, T0 + 6)
    assert [e for e in events if isinstance(e, RunPlanned)] == []
    assert gone.id not in sm.active_of


def test_cycles_are_refused_and_nothing_changes() -> None:
    sm = StateMachine()
    ids = ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"]
    for job_id in ids:
        sm.apply(c.PutJob(job(job_id)))
    sm.apply(c.AddLink(ids[0], ids[1], "success"))
    sm.apply(c.AddLink(ids[1], ids[2], "always"))
    before = {k: dict(v) for k, v in sm.links.items()}
    with pytest.raises(Conflict):
        sm.apply(c.AddLink(ids[2], ids[0], "success"))
    with pytest.raises(Conflict):
        sm.apply(c.AddLink(ids[0], ids[0], "success"))
    with pytest.raises(NotFound):
        sm.apply(c.RemoveLink(ids[2], ids[0]))
    assert sm.links == before


def test_remove_job_drops_its_links_and_runs() -> None:
    sm = StateMachine()
    a, b = job("aaaaaaaaaaaa"), job("bbbbbbbbbbbb")
    sm.apply(c.PutJob(a))
    sm.apply(c.PutJob(b))
    sm.apply(c.AddLink(a.id, b.id, "success"))
    finish(sm, plan(sm, b, T0), RunStatus.SUCCEEDED, T0 + 1)
    _, events = sm.apply(c.RemoveJob(b.id))
    assert isinstance(events[0], JobRemoved)
    assert sm.links == {} and not any(r.job_id == b.id for r in sm.runs.values())


def test_same_log_same_state_and_snapshots_round_trip() -> None:
    log: list[c.Command] = [c.PutJob(job()), c.AddNode(NodeInfo("n1", "h", "r"))]
    for k in range(3):
        run = Run(
            id=run_id("aaaaaaaaaaaa", T0 + k),
            job_id="aaaaaaaaaaaa",
            owner_uid=1000,
            instant=T0 + k,
            reason=RunReason.SCHEDULE,
            node="n1",
            planned_at=T0,
        )
        log += [
            c.PlanRuns(runs=(run,), ledger={"aaaaaaaaaaaa": T0 + k}),
            c.StartRun(run.id, "n1", 10 + k, T0 + k),
            c.FinishRun(run_id=run.id, status=RunStatus.SUCCEEDED, finished_at=T0 + k + 0.5),
        ]
    one, two = StateMachine(), StateMachine()
    for command in log:
        one.apply(c.decode(c.encode(command)))
        two.apply(command)
    assert one.snapshot() == two.snapshot()
    three = StateMachine()
    three.restore(one.snapshot())
    assert three.snapshot() == one.snapshot()


def test_planner_hands_each_tick_out_once() -> None:
    planner = Planner()
    j = job(schedule="every 2 seconds")
    planner.update(j, T0)
    due = planner.due(T0 + 10)
    assert [d.instant for d in due] == [T0 + 2 * k for k in range(1, 6)]
    assert planner.due(T0 + 10) == []


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Catchup.NONE, []),
        (Catchup.LATEST, [T0 + 90]),
        (Catchup.ALL, [T0 + 10 * k for k in range(1, 10)]),
    ],
)
def test_planner_catch_up_policies(policy: Catchup, expected: list[float]) -> None:
    planner = Planner()
    j = job(catchup=policy)
    catchups = planner.reset([j], {j.id: T0}, now=T0 + 95)
    assert [d.instant for d in catchups] == expected
    assert all(d.reason is RunReason.CATCHUP for d in catchups)
    assert planner.next_instant() == T0 + 100


def test_planner_ignores_paused_and_never_jobs() -> None:
    planner = Planner()
    planner.update(job("aaaaaaaaaaaa", paused=True), T0)
    planner.update(job("bbbbbbbbbbbb", schedule="never"), T0)
    assert planner.next_instant() is None


def test_a_short_run_finishes_straight_from_planned_with_its_start_and_pid() -> None:
    sm = StateMachine()
    j = job()
    sm.apply(c.PutJob(j))
    run = plan(sm, j, T0 + 10)
    sm.apply(
        c.FinishRun(
            run_id=run.id,
            status=RunStatus.SUCCEEDED,
            finished_at=T0 + 10.2,
            started_at=T0 + 10.01,
            pid=4242,
        )
    )
    done = sm.runs[run.id]
    assert (done.status, done.started_at, done.pid) == (RunStatus.SUCCEEDED, T0 + 10.01, 4242)
    assert run.id not in sm.active


def test_commands_round_trip_through_their_encoding() -> None:
    record = Record(seq=1, ts=T0, type="result", desc="r", value={"nested": [1, 2]})
    finish_cmd = c.FinishRun(
        run_id="a@b", status=RunStatus.FAILED, finished_at=T0, records=(record,), pid=7
    )
    other = c.FinishRun(run_id="a@c", status=RunStatus.SUCCEEDED, finished_at=T0 + 1)
    batch = c.FinishRuns((finish_cmd, other))
    for command in (finish_cmd, batch, c.PutJob(job()), c.StartRun("a@b", "n1", 7, T0)):
        assert c.decode(c.encode(command)) == command


def test_a_batch_of_ends_applies_as_its_ends_one_by_one() -> None:
    """FinishRuns (a node's runs that ended together) is the same as each FinishRun in turn,
    follow-ups included: a link fires for the run it follows."""
    a, b = job("aaaaaaaaaaaa"), job("bbbbbbbbbbbb")
    machines = StateMachine(), StateMachine()
    for sm in machines:
        sm.apply(c.PutJob(a))
        sm.apply(c.PutJob(b))
        sm.apply(c.AddLink(a.id, b.id, "success"))
    runs = [plan(sm, a, T0 + k) for sm in machines for k in (1, 2)][2:]  # same ids on both
    ends = (
        c.FinishRun(run_id=runs[0].id, status=RunStatus.SUCCEEDED, finished_at=T0 + 1.5),
        c.FinishRun(run_id=runs[1].id, status=RunStatus.FAILED, finished_at=T0 + 2.5),
        c.FinishRun(run_id="nosuch@run", status=RunStatus.FAILED, finished_at=T0 + 3),
    )
    one_by_one = [event for end in ends for event in machines[0].apply(end)[1]]
    _, together = machines[1].apply(c.FinishRuns(ends))
    assert together == one_by_one and len(together) == 3  # two ends and one linked run
    assert _without_count(machines[0]) == _without_count(machines[1])


def test_runs_of_a_job_agree_with_a_full_scan_through_plans_finishes_removal_and_restore() -> None:
    sm = StateMachine()
    a, b = job("aaaaaaaaaaaa"), job("bbbbbbbbbbbb")
    sm.apply(c.PutJob(a))
    sm.apply(c.PutJob(b))
    runs = [plan(sm, j, T0 + k) for k in range(4) for j in (a, b)]
    for run in runs[::3]:
        finish(sm, run, RunStatus.SUCCEEDED, run.instant + 1)

    def agree(machine: StateMachine) -> None:
        for j in (a, b):
            scanned = {r.id for r in machine.runs.values() if r.job_id == j.id}
            assert {r.id for r in machine.runs_of(j.id)} == scanned
            active = {r.id for r in machine.active_runs() if r.job_id == j.id}
            assert machine.active_of.get(j.id, set()) == active

    agree(sm)
    copy = StateMachine()
    copy.restore(sm.snapshot())
    agree(copy)
    sm.apply(c.RemoveJob(b.id))
    agree(sm)
    assert b.id not in sm.active_of and all(r.job_id == a.id for r in sm.active_runs())


def test_a_command_that_json_cannot_hold_is_refused_with_a_clear_error() -> None:
    record = Record(seq=1, ts=T0, type="result", desc="r", value=10**30)
    command = c.FinishRun(run_id="a@b", status=RunStatus.FAILED, finished_at=T0, records=(record,))
    with pytest.raises(InvalidInput, match="cannot be stored"):
        c.encode(command)


def _without_count(sm: StateMachine) -> bytes:
    snapshot = StateMachine()
    snapshot.restore(sm.snapshot())
    snapshot.applied = 0
    return snapshot.snapshot()


def test_a_replayable_command_applied_twice_leaves_the_state_of_one() -> None:
    """What a proposer may resend after a change of leader changes nothing the second time."""
    base, other = job(), job("bbbbbbbbbbbb")
    run = Run(
        id=run_id(base.id, T0 + 10),
        job_id=base.id,
        owner_uid=base.owner_uid,
        instant=T0 + 10,
        reason=RunReason.SCHEDULE,
        node="n1",
        planned_at=T0 + 9,
    )
    later = dataclasses.replace(run, id=run_id(base.id, T0 + 20), instant=T0 + 20)
    node = NodeInfo(name="n2", raft="127.0.0.1:2", http="127.0.0.1:3")
    steps: list[c.Command] = [
        c.PutJob(base),
        c.PutJob(dataclasses.replace(base, code="print(2)", updated_at=T0 + 1)),
        c.PutJob(other),
        c.PatchJob(job_id=base.id, now=T0 + 2, paused=True, name="renamed"),
        c.AddLink(base.id, other.id, "success"),
        c.PlanRuns(runs=(run,), ledger={base.id: run.instant}),
        c.StartRun(run_id=run.id, node="n1", pid=42, started_at=T0 + 10),
        c.FinishRun(run_id=run.id, status=RunStatus.SUCCEEDED, finished_at=T0 + 11),
        c.PlanRuns(runs=(later,), ledger={base.id: later.instant}),
        c.FinishRuns(
            (
                c.FinishRun(run_id=later.id, status=RunStatus.FAILED, finished_at=T0 + 21),
                c.FinishRun(run_id=run.id, status=RunStatus.FAILED, finished_at=T0 + 22),
            )
        ),
        c.AddNode(node),
    ]
    once, twice = StateMachine(), StateMachine()
    for step in steps:
        assert c.replayable(step)
        first, _ = once.apply(step)
        twice.apply(step)
        again, events = twice.apply(step)
        assert _without_count(once) == _without_count(twice), step
        if isinstance(step, (c.PutJob, c.PatchJob)):
            assert again == first and events == []  # the job as saved, no second version
    assert twice.jobs[base.id].version == 3 and twice.jobs[other.id].version == 1


def test_removals_are_not_replayable() -> None:
    for step in (c.RemoveJob("aaaaaaaaaaaa"), c.RemoveLink("a", "b"), c.RemoveNode("n2")):
        assert not c.replayable(step)


def test_list_rows_with_a_shared_next_run_memo_match_rows_computed_alone() -> None:
    import datetime as dt

    from odin.engine.views import NextRunMemo, job_summary

    kinds = [
        ("every 10 minutes", "UTC", False),
        ("every day at 03:00", "Europe/Paris", False),
        ("every day at 03:00", "UTC", False),
        ("every 10 minutes", "UTC", True),
        ("never", "UTC", False),
    ]
    jobs = [
        job(f"{i:012x}", schedule=kinds[i % 5][0], timezone=kinds[i % 5][1], paused=kinds[i % 5][2])
        for i in range(50)
    ]
    now = dt.datetime.fromtimestamp(T0 + 7, dt.UTC)
    memo: NextRunMemo = {}
    shared = [job_summary(j, {}, None, now, memo) for j in jobs]
    alone = [job_summary(j, {}, None, now) for j in jobs]
    assert shared == alone
    assert {r.next_run for r in shared if r.id == jobs[1].id} != {
        r.next_run for r in shared if r.id == jobs[2].id
    }  # same words, other timezone: another instant
    assert len(memo) == 4  # one lookup per (schedule, timezone) pair; a paused job needs none


# What an engine before the policies were enums wrote (the same bytes as now): a deploy
# in the journal, and a dump's snapshot. The wire keeps the policies' plain strings.
OLD_PUT_JOB = (
    b'{"v":1,"type":"PutJob","body":{"job":{"id":"a37b187f5930","owner_uid":1000,'
    b'"owner_gid":1000,"owner":"alice","name":"stocks","description":"","language":"go",'
    b'"filename":"stocks.go","schedule":"every hour","timezone":"UTC",'
    b'"code":"package main\\n","yaml":"","code_sha":"x","timeout_s":30.0,"retries":1,'
    b'"overlap":"queue","catchup":"all","delivery":"at-least-once","env":{"A":"1"},'
    b'"workdir":null,"nodes":["n1"],"paused":false,"created_at":1800000000.0,'
    b'"updated_at":1800000000.0,"version":1},"quotas":null}}'
)
OLD_SNAPSHOT = (
    b'{"v":1,"jobs":[{"id":"a37b187f5930","owner_uid":1000,"owner_gid":1000,"owner":"alice",'
    b'"name":"stocks","description":"","language":"python","filename":"stocks.py",'
    b'"schedule":"every hour","timezone":"UTC","code":"print(1)\\n","yaml":"","code_sha":"x",'
    b'"timeout_s":null,"retries":0,"overlap":"allow","catchup":"none",'
    b'"delivery":"at-most-once","env":{},"workdir":null,"nodes":[],"paused":false,'
    b'"created_at":1800000000.0,"updated_at":1800000000.0,"version":2}],"links":{},'
    b'"ledger":{"a37b187f5930":1800000000.0},"runs":[{"id":"a37b187f5930@2027-01-15T08:00:00Z",'
    b'"job_id":"a37b187f5930","owner_uid":1000,"instant":1800000000.0,"reason":"catchup",'
    b'"node":"n1","planned_at":1799999999.0,"attempt":0,"status":"succeeded",'
    b'"started_at":1800000000.5,"finished_at":1800000001.0,"exit_code":0,"pid":42,'
    b'"message":"","output_tail":"1\\n","output_bytes":2,"dropped_bytes":0,"records":[],'
    b'"record_count":0,"trigger":null,"moved_from":null,"moved_why":"","unsure":false}],'
    b'"finished":{"a37b187f5930":["a37b187f5930@2027-01-15T08:00:00Z"]},'
    b'"nodes":[{"name":"n1","http":"127.0.0.1:3939","raft":"127.0.0.1:12000","added_at":0.0}],'
    b'"applied":7}'
)


def test_an_old_journal_entry_loads_its_policies_as_enums_and_encodes_to_the_same_bytes() -> None:
    command = c.decode(OLD_PUT_JOB)
    assert isinstance(command, c.PutJob)
    loaded = command.job
    assert loaded.language is Language.GO
    assert loaded.overlap is Overlap.QUEUE
    assert loaded.catchup is Catchup.ALL
    assert loaded.delivery is Delivery.AT_LEAST_ONCE
    assert c.encode(command) == OLD_PUT_JOB
    plain = loaded.to_dict()  # the API's shape: plain strings, not enum members
    assert [type(plain[name]) for name in ("language", "overlap", "catchup", "delivery")] == [
        str
    ] * 4


def test_an_old_snapshot_restores_its_policies_as_enums_and_dumps_the_same_values() -> None:
    sm = StateMachine()
    sm.restore(OLD_SNAPSHOT)
    restored = sm.jobs["a37b187f5930"]
    assert restored.language is Language.PYTHON
    assert restored.overlap is Overlap.ALLOW
    assert restored.catchup is Catchup.NONE
    assert restored.delivery is Delivery.AT_MOST_ONCE
    run = sm.runs["a37b187f5930@2027-01-15T08:00:00Z"]
    assert (run.reason, run.status) == (RunReason.CATCHUP, RunStatus.SUCCEEDED)
    dumped = orjson.loads(sm.snapshot())
    for added in ("alerts", "alerts_of", "streaks"):  # newer than the snapshot: empty
        assert not dumped.pop(added)
    for job in dumped["jobs"]:
        for added in ("notify", "warn_after_s", "grace_s"):
            assert not job.pop(added)
        for added in ("jitter_s", "paused_until"):  # issue #26
            assert not job.pop(added)
        assert not job.pop("exceptions")  # issue #26: except: and on_excluded
        assert job.pop("on_excluded") == "skip"
    for run in dumped["runs"]:
        assert not run.pop("jitter_s")  # newer than the snapshot: 0.0
    assert dumped == orjson.loads(OLD_SNAPSHOT)


def test_a_job_entry_from_before_a_policy_existed_gets_its_default() -> None:
    body = orjson.loads(OLD_PUT_JOB)
    del body["body"]["job"]["delivery"]
    command = c.decode(orjson.dumps(body))
    assert isinstance(command, c.PutJob) and command.job.delivery is Delivery.AT_MOST_ONCE


def test_a_job_entry_with_a_policy_no_version_knows_is_refused_as_input() -> None:
    body = orjson.loads(OLD_PUT_JOB)
    body["body"]["job"]["overlap"] = "sometimes"
    with pytest.raises(InvalidInput, match="not a valid PutJob command"):
        c.decode(orjson.dumps(body))


def test_each_nodes_count_of_active_runs_follows_plans_starts_moves_ends_and_removals() -> None:
    """``active_on`` (what placement reads instead of counting every active run) always equals
    the count made from scratch, and a snapshot restores it."""
    sm = StateMachine()
    a, b = job("aaaaaaaaaaaa"), job("bbbbbbbbbbbb")
    sm.apply(c.PutJob(a))
    sm.apply(c.PutJob(b))

    def counted() -> dict[str, int]:
        return dict(Counter(r.node for r in sm.active_runs()))

    runs = [plan(sm, a, T0 + i, node=f"n{i % 3}") for i in range(6)]
    other = plan(sm, b, T0, node="n1")
    assert dict(sm.active_on) == counted() == {"n0": 2, "n1": 3, "n2": 2}
    sm.apply(c.StartRun(runs[0].id, "n2", 42, T0))  # started on another node than planned
    sm.apply(c.MoveRuns((c.Move(runs[1].id, "n1", "n0", "lease"),)))
    finish(sm, runs[2], RunStatus.SUCCEEDED, T0 + 3)
    finish(sm, runs[0], RunStatus.FAILED, T0 + 4)
    assert dict(sm.active_on) == counted()
    sm.apply(c.RemoveJob(a.id))
    assert dict(sm.active_on) == counted() == {"n1": 1}
    copy = StateMachine()
    copy.restore(sm.snapshot())
    assert copy.active_on == sm.active_on and other.id in copy.active
