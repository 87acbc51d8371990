"""Jitter drawn once by the leader, and pausing until an instant (issue #26): pure planner,
ticker and state, no engine."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from job_values import a_job
from odin.cluster import commands as c
from odin.cluster.model import Job, Run, RunReason, run_id
from odin.cluster.state import StateMachine
from odin.engine import rules
from odin.engine.jitter import draw_jitter
from odin.engine.pausing import CLEARED, pause_change
from odin.engine.planner import Due, Planner, upcoming_tick
from odin.engine.ticker import Ticker
from odin.engine.views import next_runs
from odin.errors import InvalidInput, ScheduleError
from odin.jobs.fields import Catchup
from odin.jobs.notify import AlertEvent, Notify
from odin.schedule.moment import parse_moment

T0 = 1_800_000_000.0  # divisible by 10: the ticks of "every 10 seconds" fall on it


def job(job_id: str = "aaaaaaaaaaaa", **changes: object) -> Job:
    return a_job(job_id, **{"schedule": "every 10 seconds", **changes})


# -- jitter ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    jitter=st.floats(0.0, 3600.0, allow_nan=False),
    instant=st.integers(1_500_000_000, 2_500_000_000).map(float),
    gap=st.floats(0.001, 7200.0, allow_nan=False),
    seed=st.integers(0, 2**32),
)
def test_a_jittered_run_never_starts_before_its_tick_nor_at_or_after_the_next(
    jitter: float, instant: float, gap: float, seed: int
) -> None:
    following = instant + gap
    drawn = draw_jitter(
        jitter, RunReason.SCHEDULE, instant, following, random.Random(seed).randrange
    )
    assert drawn == 0.0 or 0.0 < drawn < jitter  # never before its tick, within its jitter
    assert instant <= instant + drawn < following  # never at or after the next tick
    assert abs(round(drawn * 1000) - drawn * 1000) < 1e-6  # whole milliseconds


@given(below=st.sampled_from([lambda n: 0, lambda n: n - 1]))
def test_the_extremes_of_a_draw_stay_inside(below: Callable[[int], int]) -> None:
    for instant, following in ((T0, T0 + 2), (T0, T0 + 0.5), (T0, None)):
        drawn = draw_jitter(2.0, RunReason.SCHEDULE, instant, following, below)
        assert 0 <= drawn < 2.0 and (following is None or instant + drawn < following)


@pytest.mark.parametrize(
    "reason", [RunReason.CATCHUP, RunReason.MANUAL, RunReason.LINK, RunReason.RETRY]
)
def test_only_scheduled_runs_are_jittered(reason: RunReason) -> None:
    assert draw_jitter(30.0, reason, T0, T0 + 60, lambda n: n - 1) == 0.0
    assert draw_jitter(None, RunReason.SCHEDULE, T0, T0 + 60, lambda n: n - 1) == 0.0


def test_a_jittered_run_starts_late_by_its_jitter_and_keeps_its_tick_for_its_id() -> None:
    run = Run(
        id=run_id("aaaaaaaaaaaa", T0),
        job_id="aaaaaaaaaaaa",
        owner_uid=1000,
        instant=T0,
        reason=RunReason.SCHEDULE,
        node="n1",
        planned_at=T0 - 1,
        jitter_s=1.25,
        started_at=T0 + 1.26,
    )
    assert run.starts_at == T0 + 1.25 and run.lag is not None and abs(run.lag - 0.01) < 1e-6
    assert run.id.endswith("@2027-01-15T08:00:00Z")
    assert Run.from_dict(run.to_dict()) == run
    assert not rules.stale(run, T0 + 4)  # 2.75 s after its start: not yet a missed tick
    assert rules.stale(run, T0 + 4.5)


class FakeNode:
    """The state of a cluster for the ticker: it reads it, and proposes through the log's
    bytes (as a follower applies what the leader committed)."""

    def __init__(self, sm: StateMachine, raft_dir: Path) -> None:
        self.sm = sm
        self.raft_dir = raft_dir  # room on its disk is checked before planning

    def read(self, query: Callable[[Any], Any]) -> Any:
        return query(self.sm)

    async def propose(self, command: c.Command) -> Any:
        return self.sm.apply(c.decode(c.encode(command)))[0]


def ticker_on(sm: StateMachine, draw: Callable[[int], int], where: Path) -> Ticker:
    node = FakeNode(sm, where)
    ticker = Ticker(node, lambda job, load: "n1", Counter)  # type: ignore[arg-type]
    ticker.draw = draw
    return ticker


def test_a_new_leader_does_not_draw_the_jitter_again(tmp_path: Path) -> None:
    """The old leader plans the next ticks with its draws; a new leader rebuilt from the
    committed state plans none of them again, and re-proposing one changes nothing."""
    sm = StateMachine()
    j = job(schedule="every 10 seconds", jitter_s=8.0)
    sm.apply(c.PutJob(j))
    old = ticker_on(sm, lambda n: n - 1, tmp_path)  # the latest start it may draw
    old.planner.reset(list(sm.jobs.values()), dict(sm.ledger), T0)
    asyncio.run(old._propose(old.planner.due(T0 + 30)))
    planned = {r.id: r.jitter_s for r in sm.runs.values()}
    assert sorted(planned) == [run_id(j.id, T0 + 10 * k) for k in (1, 2, 3)]
    assert set(planned.values()) == {7.999}

    new = ticker_on(sm, lambda n: 0, tmp_path)  # would draw no delay at all
    catchups = new.planner.reset(list(sm.jobs.values()), dict(sm.ledger), T0 + 25)
    due = catchups + new.planner.due(T0 + 30)
    assert [d.instant for d in due] == []  # the ledger says they are planned
    asyncio.run(new._propose([Due(j.id, T0 + 20, RunReason.SCHEDULE, T0 + 30)]))
    assert {r.id: r.jitter_s for r in sm.runs.values()} == planned  # the plan stands
    asyncio.run(new._propose(new.planner.due(T0 + 40)))
    assert sm.runs[run_id(j.id, T0 + 40)].jitter_s == 0.0  # only its own ticks are its draws


def test_a_spread_job_is_planned_at_its_own_offset() -> None:
    j = job(schedule="every hour, spread over 10 minutes", id="a37b187f5930")
    planner = Planner()
    planner.update(j, T0)
    [due] = planner.due(T0 + 3600)
    assert 0 <= (due.instant - T0) % 3600 < 600 and due.following == due.instant + 3600


# -- pause until ----------------------------------------------------------------------------


def paused(catchup: Catchup = Catchup.LATEST, until: float = T0 + 65, **more: Any) -> Job:
    return job(catchup=catchup, paused_until=until, **more)


@pytest.mark.parametrize(
    ("policy", "caught_up"),
    [
        (Catchup.NONE, []),
        (Catchup.LATEST, [T0 + 60]),
        (Catchup.ALL, [T0 + 10 * k for k in range(1, 7)]),
    ],
)
def test_a_pause_until_an_instant_ends_by_itself_and_its_ticks_follow_catchup(
    policy: Catchup, caught_up: list[float]
) -> None:
    planner = Planner()
    planner.reset([job(catchup=policy)], {"aaaaaaaaaaaa": T0}, T0 + 1)
    planner.update(paused(policy), T0 + 5)  # odin modify --pause-until at T0 + 5
    assert planner.due(T0 + 64.9) == []  # nothing while it lasts, even with the lookahead
    assert planner.next_instant() == T0 + 65 + 1.0  # handed out at the end itself
    resumed = planner.due(T0 + 65 + 1.0)
    assert [(d.instant, d.reason) for d in resumed] == [(t, RunReason.CATCHUP) for t in caught_up]
    assert [(d.instant, d.reason) for d in planner.due(T0 + 71)] == [
        (T0 + 70, RunReason.SCHEDULE)  # then its ticks as ever
    ]


def test_a_tick_at_the_very_end_of_a_pause_runs_on_schedule() -> None:
    planner = Planner()
    planner.reset([job()], {"aaaaaaaaaaaa": T0}, T0 + 1)
    planner.update(paused(until=T0 + 60), T0 + 5)
    resumed = planner.due(T0 + 61)
    assert [(d.instant, d.reason) for d in resumed] == [
        (T0 + 50, RunReason.CATCHUP),
        (T0 + 60, RunReason.SCHEDULE),
    ]


def test_a_new_leader_during_a_pause_plans_as_the_old_one_would() -> None:
    jobs = [paused(Catchup.ALL)]
    old, new = Planner(), Planner()
    old.reset([job(catchup=Catchup.ALL)], {"aaaaaaaaaaaa": T0}, T0 + 1)
    old.update(jobs[0], T0 + 5)
    assert new.reset(jobs, {"aaaaaaaaaaaa": T0}, T0 + 30) == []  # no catch-up mid-pause
    assert new.passed == {}
    assert old.due(T0 + 66) == new.due(T0 + 66)


def test_a_pause_that_ended_while_no_leader_planned_is_caught_up_like_the_outage() -> None:
    planner = Planner()
    hook = Notify("https://example.org/hook", on=(AlertEvent.MISSED,))
    watched = paused(Catchup.LATEST, notify=(hook,))
    catchups = planner.reset([watched], {"aaaaaaaaaaaa": T0}, T0 + 95)
    assert [d.instant for d in catchups] == [T0 + 90]
    assert planner.passed == {"aaaaaaaaaaaa": [T0 + 70, T0 + 80, T0 + 90]}  # not the pause's


def test_resuming_early_drops_the_skipped_ticks_like_any_resume() -> None:
    planner = Planner()
    planner.reset([job()], {"aaaaaaaaaaaa": T0}, T0 + 1)
    planner.update(paused(), T0 + 5)
    planner.update(job(paused_until=None), T0 + 33)  # odin modify --resume
    assert [(d.instant, d.reason) for d in planner.due(T0 + 41)] == [(T0 + 40, RunReason.SCHEDULE)]


def test_the_next_runs_shown_start_at_the_end_of_the_pause() -> None:
    j = paused(until=T0 + 65)
    shown = next_runs(j, T0 + 5, 2)
    assert shown == [dt.datetime.fromtimestamp(T0 + t, dt.UTC).isoformat() for t in (70, 80)]
    assert upcoming_tick(j, T0 + 5) == T0 + 70
    assert upcoming_tick(j, T0 + 66) == T0 + 70
    assert next_runs(dataclasses.replace(j, paused_until=T0 + 60), T0 + 5, 1)[0].endswith(
        "08:01:00+00:00"
    )


def test_the_flags_of_odin_modify_become_a_patch() -> None:
    j = job()
    paused_flag, until = pause_change(j, None, "in 3 hours", T0)
    assert paused_flag is None and until == T0 + 3 * 3600
    assert pause_change(dataclasses.replace(j, paused=True), None, "in 1 hour", T0) == (
        False,
        T0 + 3600,
    )
    assert pause_change(j, True, None, T0) == (True, None)
    assert pause_change(paused(), False, None, T0) == (False, CLEARED)
    with pytest.raises(InvalidInput):
        pause_change(j, True, "in 1 hour", T0)
    with pytest.raises(ScheduleError, match="not in the future"):
        pause_change(j, None, "2020-01-01 00:00", T0)


def test_the_state_sets_and_clears_a_pause_until_an_instant_and_a_batch_keeps_it() -> None:
    sm = StateMachine()
    sm.apply(c.PutJob(job()))
    saved, _ = sm.apply(c.PatchJob("aaaaaaaaaaaa", T0 + 1, paused_until=T0 + 100))
    assert saved.paused_until == T0 + 100 and saved.to_dict()["paused_until"] == T0 + 100
    again, events = sm.apply(c.PatchJob("aaaaaaaaaaaa", T0 + 1, paused_until=T0 + 100))
    assert events == [] and again.version == saved.version
    sm.apply(c.PutJobs(jobs=(job(name="renamed"),), removed=(), owner_uid=1000))
    assert sm.jobs["aaaaaaaaaaaa"].paused_until == T0 + 100  # an apply keeps the pause
    cleared, _ = sm.apply(c.PatchJob("aaaaaaaaaaaa", T0 + 2, paused=False, paused_until=CLEARED))
    assert cleared.paused_until is None and "paused_until" not in cleared.to_dict()


def test_an_old_patch_entry_encodes_to_the_same_bytes() -> None:
    old = (
        b'{"v":1,"type":"PatchJob","body":{"job_id":"a37b187f5930","now":1800000000.0,'
        b'"name":null,"description":null,"schedule":null,"paused":true,"yaml":null}}'
    )
    command = c.decode(old)
    assert isinstance(command, c.PatchJob) and command.paused_until is None
    assert c.encode(command) == old
    new = c.decode(c.encode(dataclasses.replace(command, paused=None, paused_until=T0)))
    assert isinstance(new, c.PatchJob) and new.paused_until == T0


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=40)
    | st.from_regex(r"(in [0-9]{1,12} ?(s|m|h|d|days)|9999-12-31[ T]23:59(:59)?([+-]0[0-9]:00)?)")
    | st.sampled_from(["Monday", "next Sunday 23:59:59", "today", "tomorrow noon", "in 0s"]),
    zone=st.sampled_from(["UTC", "Europe/Dublin", "Pacific/Kiritimati", "No/Such_Zone"]),
)
def test_any_pause_until_text_is_a_moment_to_come_or_a_schedule_error(text: str, zone: str) -> None:
    now = dt.datetime.fromtimestamp(T0, dt.UTC)
    try:
        moment = parse_moment(text, zone, now)
    except ScheduleError:
        return
    assert moment > now and moment.timestamp() == int(moment.timestamp())
