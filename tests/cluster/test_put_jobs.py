"""``PutJobs`` (``odin apply``) in the state machine: all of a batch or none of it.

Every command goes through its wire form first, as every node applies it; the state is
compared whole (its snapshot) before and after a refused batch.
"""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from odin.cluster import commands as c
from odin.cluster.model import Job, Run, RunReason, run_id
from odin.cluster.quotas import UserQuotas
from odin.cluster.state import JobChanged, JobRemoved, StateMachine
from odin.errors import Conflict, InvalidInput, LimitExceeded
from odin.jobs.language import Language

T0 = 1_800_000_000.0
ALICE, BOB = 1000, 1001


def job(job_id: str, owner: int = ALICE, **changes: object) -> Job:
    base = Job(
        id=job_id,
        owner_uid=owner,
        owner_gid=owner,
        owner="alice" if owner == ALICE else "bob",
        name=f"job {job_id}",
        description="",
        language=Language.PYTHON,
        filename="n.py",
        schedule="every hour",
        timezone="UTC",
        code="print(1)",
        yaml=f"name: {job_id}\n",
        code_sha="x",
        created_at=T0,
        updated_at=T0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def apply(
    sm: StateMachine,
    jobs: tuple[Job, ...],
    removed: tuple[str, ...] = (),
    quotas: UserQuotas | None = None,
    owner: int = ALICE,
) -> tuple[tuple[tuple[Job, ...], tuple[Job, ...]], list[object]]:
    command = c.PutJobs(jobs=jobs, removed=removed, owner_uid=owner, quotas=quotas)
    decoded = c.decode(c.encode(command))
    assert decoded == command
    result, events = sm.apply(decoded)
    return result, list(events)


def test_a_batch_creates_updates_and_removes_with_an_event_for_each() -> None:
    sm = StateMachine()
    sm.apply(c.PutJob(job("aaaaaaaaaaa1")))
    sm.apply(c.PutJob(job("aaaaaaaaaaa2")))
    sm.apply(c.PutJob(job("aaaaaaaaaaa3")))
    changed = job("aaaaaaaaaaa1", code="print(2)", updated_at=T0 + 10)
    same = job("aaaaaaaaaaa2", updated_at=T0 + 10)
    new = job("aaaaaaaaaaa4", created_at=T0 + 10, updated_at=T0 + 10)
    (puts, gone), events = apply(sm, (changed, same, new), removed=("aaaaaaaaaaa3",))
    assert [j.id for j in puts] == ["aaaaaaaaaaa1", "aaaaaaaaaaa4"]
    assert [j.id for j in gone] == ["aaaaaaaaaaa3"]
    assert [type(e) for e in events] == [JobChanged, JobChanged, JobRemoved]
    assert sm.jobs["aaaaaaaaaaa1"].version == 2 and sm.jobs["aaaaaaaaaaa1"].created_at == T0
    assert sm.jobs["aaaaaaaaaaa2"].version == 1  # as deployed: left alone
    assert set(sm.jobs) == {"aaaaaaaaaaa1", "aaaaaaaaaaa2", "aaaaaaaaaaa4"}
    assert sm.owned[ALICE] == 3 and sm.code_owned[ALICE] == 3 * len("print(1)") + 0


def _state(sm: StateMachine) -> dict[str, object]:
    """The whole state but the count of entries applied."""
    data: dict[str, object] = orjson.loads(sm.snapshot())
    data.pop("applied")
    return data


def test_a_second_application_changes_nothing() -> None:
    """A proposer may send the command again when it cannot tell it was committed."""
    sm = StateMachine()
    sm.apply(c.PutJob(job("aaaaaaaaaaa1")))
    batch = (job("aaaaaaaaaaa2"), job("aaaaaaaaaaa3", code="print(3)"))
    apply(sm, batch, removed=("aaaaaaaaaaa1",))
    before = _state(sm)
    (puts, gone), events = apply(sm, batch, removed=("aaaaaaaaaaa1",))
    assert puts == () and gone == () and events == []
    assert _state(sm) == before
    assert c.replayable(c.PutJobs((), (), ALICE))


def test_an_update_keeps_the_pause() -> None:
    sm = StateMachine()
    sm.apply(c.PutJob(job("aaaaaaaaaaa1")))
    sm.apply(c.PatchJob("aaaaaaaaaaa1", now=T0 + 1, paused=True))
    (puts, _), _ = apply(sm, (job("aaaaaaaaaaa1", updated_at=T0 + 5),))
    assert puts == ()  # the files are as deployed: the pause is no change to them
    apply(sm, (job("aaaaaaaaaaa1", schedule="every day", updated_at=T0 + 5),))
    assert sm.jobs["aaaaaaaaaaa1"].paused and sm.jobs["aaaaaaaaaaa1"].schedule == "every day"


def _refused_changes_nothing(sm: StateMachine, error: type[Exception], **kwargs: object) -> None:
    before = sm.snapshot()
    owned, code = dict(sm.owned), dict(sm.code_owned)
    with pytest.raises(error):
        apply(sm, **kwargs)  # type: ignore[arg-type]
    assert sm.snapshot() == before
    assert dict(sm.owned) == owned and dict(sm.code_owned) == code


def test_one_bad_job_refuses_the_whole_batch() -> None:
    sm = StateMachine()
    sm.apply(c.PutJob(job("aaaaaaaaaaa1")))
    sm.apply(c.PutJob(job("bbbbbbbbbbb1", owner=BOB)))
    good = (job("aaaaaaaaaaa1", code="print(9)"), job("aaaaaaaaaaa2"))
    # Bob's id among Alice's good jobs, at the end: nothing of the batch is applied.
    _refused_changes_nothing(sm, Conflict, jobs=(*good, job("bbbbbbbbbbb1")))
    # A job of Bob's in a batch of Alice's.
    _refused_changes_nothing(sm, Conflict, jobs=(*good, job("aaaaaaaaaaa3", owner=BOB)))
    # Removing Bob's job.
    _refused_changes_nothing(sm, Conflict, jobs=good, removed=("bbbbbbbbbbb1",))
    # One id twice, or both written and removed.
    _refused_changes_nothing(sm, InvalidInput, jobs=(*good, job("aaaaaaaaaaa2")))
    _refused_changes_nothing(sm, InvalidInput, jobs=good, removed=("aaaaaaaaaaa2",))


def test_the_quotas_count_the_whole_batch() -> None:
    sm = StateMachine()
    sm.apply(c.PutJob(job("aaaaaaaaaaa1")))
    two = UserQuotas(jobs=2, code_bytes=100)
    batch = (job("aaaaaaaaaaa2"), job("aaaaaaaaaaa3"))
    _refused_changes_nothing(sm, LimitExceeded, jobs=batch, quotas=two)
    # Removing one in the same batch makes room for the two.
    apply(sm, batch, removed=("aaaaaaaaaaa1",), quotas=two)
    assert sm.owned[ALICE] == 2
    big = (job("aaaaaaaaaaa2", code="x" * 60), job("aaaaaaaaaaa3", code="y" * 60))
    _refused_changes_nothing(sm, LimitExceeded, jobs=big, quotas=two)
    assert sm.code_owned[ALICE] == 2 * len("print(1)")


def test_a_removal_in_a_batch_drops_the_jobs_runs_and_links() -> None:
    sm = StateMachine()
    sm.apply(c.PutJob(job("aaaaaaaaaaa1")))
    sm.apply(c.PutJob(job("aaaaaaaaaaa2")))
    sm.apply(c.AddLink("aaaaaaaaaaa2", "aaaaaaaaaaa1", "success"))
    run = Run(
        id=run_id("aaaaaaaaaaa1", T0 + 5),
        job_id="aaaaaaaaaaa1",
        owner_uid=ALICE,
        instant=T0 + 5,
        reason=RunReason.SCHEDULE,
        node="n1",
        planned_at=T0,
    )
    sm.apply(c.PlanRuns(runs=(run,), ledger={"aaaaaaaaaaa1": T0 + 5}))
    apply(sm, (), removed=("aaaaaaaaaaa1", "cccccccccccc"))  # an id already gone: left alone
    assert "aaaaaaaaaaa1" not in sm.jobs and run.id not in sm.runs and not sm.active
    assert sm.links == {} and "aaaaaaaaaaa1" not in sm.ledger
    assert sm.owned[ALICE] == 1
