"""Named calendars in the replicated state: commands, replays, snapshots, owners."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from odin.cluster import calendars as calendars_module
from odin.cluster import commands as c
from odin.cluster.calendars import Calendar, CalendarChanged
from odin.cluster.model import Job
from odin.cluster.quotas import UserQuotas
from odin.cluster.state import JobChanged, StateMachine
from odin.errors import Conflict, LimitExceeded, NotFound
from odin.jobs.fields import OnExcluded
from odin.jobs.language import Language

T0 = 1_800_000_000.0
ALICE, BOB = 1000, 1001


def calendar(owner_uid: int = ALICE, name: str = "closed", *rules: str, at: float = T0) -> Calendar:
    owner = "alice" if owner_uid == ALICE else "bob"
    return Calendar(owner_uid, owner, name, "", rules or ("on weekends",), at, at)


def job(job_id: str = "aaaaaaaaaaaa", owner_uid: int = ALICE, **changes: object) -> Job:
    base = Job(
        id=job_id,
        owner_uid=owner_uid,
        owner_gid=owner_uid,
        owner="alice" if owner_uid == ALICE else "bob",
        name="report",
        description="",
        language=Language.PYTHON,
        filename="n.py",
        schedule="every day at 09:00",
        timezone="UTC",
        code="print(1)",
        yaml="",
        code_sha="x",
        exceptions=("calendar: closed",),
        created_at=T0,
        updated_at=T0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def deploy(j: Job) -> c.PutJob:
    """A deploy's command: it carries quotas, so its calendars are checked."""
    return c.PutJob(j, UserQuotas.configured())


def test_put_calendar_is_replay_safe_and_counts_versions() -> None:
    sm = StateMachine()
    command = c.PutCalendar(calendar())
    assert c.replayable(command) and not c.replayable(c.RemoveCalendar(ALICE, "closed"))
    saved, events = sm.apply(command)
    assert saved.version == 1 and [type(e) for e in events] == [CalendarChanged]
    again, events = sm.apply(command)
    assert again == saved and events == []
    changed, _ = sm.apply(c.PutCalendar(calendar(ALICE, "closed", "2026-12-25", at=T0 + 9)))
    assert (changed.version, changed.created_at, changed.updated_at) == (2, T0, T0 + 9)
    assert changed.rules == ("2026-12-25",)


def test_the_commands_cross_the_wire_unchanged() -> None:
    for command in (
        c.PutCalendar(calendar(BOB, "x", "on public holidays in IE")),
        c.RemoveCalendar(BOB, "x"),
    ):
        assert c.decode(c.encode(command)) == command


def test_a_change_names_the_owners_jobs_that_use_it() -> None:
    sm = StateMachine()
    sm.apply(c.PutCalendar(calendar(ALICE)))
    sm.apply(c.PutCalendar(calendar(BOB)))
    sm.apply(deploy(job("aaaaaaaaaaaa", ALICE)))
    sm.apply(deploy(job("bbbbbbbbbbbb", BOB)))
    sm.apply(deploy(job("cccccccccccc", ALICE, exceptions=("on weekends",))))
    _, events = sm.apply(c.PutCalendar(calendar(ALICE, "closed", "2026-12-25")))
    (changed,) = events
    assert isinstance(changed, CalendarChanged)
    assert [j.id for j in changed.jobs] == ["aaaaaaaaaaaa"]


def test_owners_have_their_own_calendars_of_one_name() -> None:
    sm = StateMachine()
    sm.apply(c.PutCalendar(calendar(ALICE, "closed", "2026-12-25")))
    sm.apply(c.PutCalendar(calendar(BOB, "closed", "2026-12-26")))
    assert sm.calendars.get(ALICE, "closed").rules == ("2026-12-25",)  # type: ignore[union-attr]
    assert sm.calendars.get(BOB, "closed").rules == ("2026-12-26",)  # type: ignore[union-attr]
    sm.apply(c.RemoveCalendar(ALICE, "closed"))
    assert sm.calendars.get(ALICE, "closed") is None
    assert sm.calendars.get(BOB, "closed") is not None
    with pytest.raises(NotFound):
        sm.apply(c.RemoveCalendar(ALICE, "closed"))


def test_a_deploy_may_name_only_a_calendar_its_owner_has() -> None:
    sm = StateMachine()
    sm.apply(c.PutCalendar(calendar(BOB)))
    with pytest.raises(NotFound, match="no calendar named closed"):
        sm.apply(deploy(job(owner_uid=ALICE)))
    with pytest.raises(NotFound, match="no calendar named closed"):
        sm.apply(c.PutJobs((job(owner_uid=ALICE),), (), ALICE, UserQuotas.configured()))
    assert sm.jobs == {}
    sm.apply(c.PutJob(job(owner_uid=ALICE)))  # a restore (no quotas) is not checked
    assert "aaaaaaaaaaaa" in sm.jobs


def test_a_calendar_in_use_cannot_be_removed_and_the_refusal_names_the_jobs() -> None:
    sm = StateMachine()
    sm.apply(c.PutCalendar(calendar()))
    _, events = sm.apply(deploy(job()))
    assert [type(e) for e in events] == [JobChanged]
    with pytest.raises(Conflict, match="aaaaaaaaaaaa \\(report\\)"):
        sm.apply(c.RemoveCalendar(ALICE, "closed"))
    assert sm.calendars.get(ALICE, "closed") is not None
    sm.apply(c.RemoveJob("aaaaaaaaaaaa"))
    removed, _ = sm.apply(c.RemoveCalendar(ALICE, "closed"))
    assert removed.name == "closed" and not sm.calendars


def test_calendars_per_user_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calendars_module, "MAX_CALENDARS_PER_USER", 2)
    sm = StateMachine()
    sm.apply(c.PutCalendar(calendar(ALICE, "a")))
    sm.apply(c.PutCalendar(calendar(ALICE, "b")))
    sm.apply(c.PutCalendar(calendar(ALICE, "b", "2026-12-25")))  # a change is not a new one
    with pytest.raises(LimitExceeded):
        sm.apply(c.PutCalendar(calendar(ALICE, "c")))
    sm.apply(c.PutCalendar(calendar(BOB, "c")))


def test_a_snapshot_keeps_the_calendars_and_one_without_them_restores() -> None:
    sm = StateMachine()
    bare = sm.snapshot()
    assert (
        b"calendars" not in bare
    )  # absent while there are none: older snapshots stay as they were
    sm.apply(c.PutCalendar(calendar(ALICE, "closed", "on public holidays in IE")))
    sm.apply(c.PutCalendar(calendar(BOB)))
    sm.apply(deploy(job(on_excluded=OnExcluded.NEXT)))
    copy = StateMachine()
    copy.restore(sm.snapshot())
    assert copy.calendars.all() == sm.calendars.all()
    assert copy.jobs == sm.jobs and copy.jobs["aaaaaaaaaaaa"].on_excluded is OnExcluded.NEXT
    assert orjson.loads(copy.snapshot()) == orjson.loads(sm.snapshot())
    old = StateMachine()
    old.restore(bare)
    assert not old.calendars


def test_a_job_without_exceptions_encodes_as_before() -> None:
    plain = job(exceptions=())
    data = plain.to_dict()
    assert "exceptions" not in data and "on_excluded" not in data
    moving = job(on_excluded=OnExcluded.NEXT)
    data = moving.to_dict()
    assert data["exceptions"] == ["calendar: closed"] and data["on_excluded"] == "next"
    assert Job.from_dict(data) == moving
