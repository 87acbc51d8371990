"""The planner with exceptions (``except:``): which ticks it hands out, moved runs, and
re-planning when a calendar changes. Pure: no engine, the ``now`` is given."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from job_values import a_job
from odin.cluster.calendars import Calendar
from odin.cluster.model import Job
from odin.engine.planner import Planner, next_tick
from odin.jobs.fields import OnExcluded


def ts(text: str) -> float:
    """A UTC wall time as an instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def job(**changes: object) -> Job:
    return a_job(**{"schedule": "every day at 09:00", **changes})


def closed(*rules: str, owner_uid: int = 1000) -> Calendar:
    return Calendar(owner_uid, "alice", "closed", "", tuple(rules))


def handed_out(planner: Planner, until: str) -> list[str]:
    found = planner.due(ts(until))
    return [datetime.fromtimestamp(d.instant, UTC).isoformat()[:16] for d in found]


def test_excluded_ticks_are_not_handed_out() -> None:
    planner = Planner()
    planner.update(job(exceptions=("on weekends",)), ts("2026-12-10T12:00"))
    assert handed_out(planner, "2026-12-15T12:00") == [
        "2026-12-11T09:00",
        "2026-12-14T09:00",
        "2026-12-15T09:00",
    ]


def test_moved_ticks_are_handed_out_once_at_the_end_of_the_exception() -> None:
    planner = Planner()
    planner.update(
        job(exceptions=("on weekends",), on_excluded=OnExcluded.NEXT), ts("2026-12-10T12:00")
    )
    assert handed_out(planner, "2026-12-15T12:00") == [
        "2026-12-11T09:00",
        "2026-12-14T00:00",  # Saturday's and Sunday's ticks, once
        "2026-12-14T09:00",
        "2026-12-15T09:00",
    ]


def test_a_calendar_the_job_names_excludes_and_its_change_re_plans_the_job() -> None:
    planner = Planner()
    planner.exceptions.reset({1000: {"closed": ("2026-12-11",)}})
    named = job(exceptions=("calendar: closed",))
    planner.reset([named], {}, ts("2026-12-10T12:00"))
    assert planner.next_instant() == ts("2026-12-12T09:00")
    planner.calendar_changed(closed("2026-12-11 to 2026-12-13"), [named], ts("2026-12-10T12:30"))
    assert planner.next_instant() == ts("2026-12-14T09:00")
    planner.calendar_changed(closed("2027-01-01"), [named], ts("2026-12-10T13:00"))
    assert planner.next_instant() == ts("2026-12-11T09:00")


def test_another_owners_calendar_of_the_same_name_is_not_the_jobs() -> None:
    planner = Planner()
    planner.exceptions.reset({1001: {"closed": ("2026-12-11",)}})
    planner.reset([job(exceptions=("calendar: closed",))], {}, ts("2026-12-10T12:00"))
    assert planner.next_instant() == ts("2026-12-11T09:00")


def test_a_change_during_an_exception_keeps_the_run_its_ticks_moved_to() -> None:
    planner = Planner()
    moving = job(exceptions=("2026-12-11",), on_excluded=OnExcluded.NEXT)
    planner.reset([moving], {moving.id: ts("2026-12-10T09:00")}, ts("2026-12-11T10:00"))
    assert planner.next_instant() == ts("2026-12-12T00:00")
    planner.update(dataclasses.replace(moving, name="renamed"), ts("2026-12-11T11:00"))
    assert planner.next_instant() == ts("2026-12-12T00:00")


def test_a_day_excluded_after_its_tick_ran_moves_nothing() -> None:
    planner = Planner()
    moving = job(on_excluded=OnExcluded.NEXT)
    planner.update(moving, ts("2026-12-11T08:00"))
    assert handed_out(planner, "2026-12-11T09:30") == ["2026-12-11T09:00"]
    changed = dataclasses.replace(moving, exceptions=("2026-12-11",))
    planner.update(changed, ts("2026-12-11T10:00"))
    assert planner.next_instant() == ts("2026-12-12T09:00")


def test_catch_up_after_an_outage_skips_the_excluded_ticks() -> None:
    planner = Planner()
    skipping = job(exceptions=("2026-12-12",))
    catchups = planner.reset(
        [skipping], {skipping.id: ts("2026-12-11T09:00")}, ts("2026-12-12T12:00")
    )
    assert catchups == []  # the one tick missed was excluded
    assert planner.next_instant() == ts("2026-12-13T09:00")


def test_next_tick_without_exclusions_is_the_schedules() -> None:
    plain = job()
    assert next_tick(plain, ts("2026-12-10T12:00")) == ts("2026-12-11T09:00")
    assert next_tick(plain, ts("2026-12-10T12:00"), None) == ts("2026-12-11T09:00")
