"""A tick whose plan takes effect late is a missed tick: the job's catchup decides."""

from __future__ import annotations

import pytest

from odin.cluster.model import Run, RunReason
from odin.engine import rules
from odin.engine.rules import late_verdict
from odin.jobs.spec import Catchup

T0 = 1_800_000_000.0


def run(reason: RunReason = RunReason.SCHEDULE, planned_at: float = T0 - 1) -> Run:
    return Run(
        id=f"abc@{T0}",
        job_id="abc",
        owner_uid=1000,
        instant=T0,
        reason=reason,
        node="n1",
        planned_at=planned_at,
    )


@pytest.mark.parametrize(
    ("now", "stale"),
    [(T0 - 0.5, False), (T0 + 1, False), (T0 + 2.9, False), (T0 + 3.5, True), (T0 + 60, True)],
)
def test_a_scheduled_plan_is_stale_only_well_after_its_instant(now: float, stale: bool) -> None:
    assert rules.stale(run(), now) is stale


def test_a_plan_made_just_now_is_not_stale_even_for_an_old_instant() -> None:
    assert not rules.stale(run(planned_at=T0 + 59), T0 + 60)


@pytest.mark.parametrize("reason", [RunReason.MANUAL, RunReason.LINK, RunReason.RETRY])
def test_runs_asked_for_are_never_stale(reason: RunReason) -> None:
    assert not rules.stale(run(reason=reason), T0 + 600)


def test_catchup_none_skips_every_late_tick() -> None:
    for newer_due in (False, True):
        verdict = late_verdict(Catchup.NONE, 4.2, newer_due)
        assert verdict is not None and "4.2 s" in verdict and "catchup: none" in verdict


def test_catchup_latest_runs_the_newest_late_tick_only() -> None:
    assert late_verdict(Catchup.LATEST, 9.0, newer_due=False) is None
    skipped = late_verdict(Catchup.LATEST, 9.0, newer_due=True)
    assert skipped is not None and "later tick" in skipped


def test_catchup_all_runs_every_late_tick() -> None:
    assert late_verdict(Catchup.ALL, 9.0, newer_due=True) is None
    assert late_verdict(Catchup.ALL, 9.0, newer_due=False) is None
