"""Alerts decided by the state machine: streaks, recovery, alarms, delivery outcomes, and
that the same log gives the same alerts (replays, snapshots) on every node."""

from __future__ import annotations

from odin import config
from odin.cluster import commands as c
from odin.cluster.model import Alert, DeliveryState, Job, RunStatus
from odin.cluster.state import AlertRaised, StateMachine
from odin.jobs.notify import AlertEvent, Notify
from test_state import T0, finish, job, plan

HOOK = "https://hooks.example.org/odin"
MAIL = "mailto:ops@example.org"


def alerts_of(events: list[object]) -> list[Alert]:
    return [e.alert for e in events if isinstance(e, AlertRaised)]


def machine(**changes: object) -> tuple[StateMachine, Job]:
    sm = StateMachine()
    j = job(**changes)
    sm.apply(c.PutJob(j))
    return sm, j


def test_twenty_failures_with_after_three_give_one_alert_then_one_recovery() -> None:
    sm, j = machine(notify=(Notify(HOOK, after=3),))
    raised: list[Alert] = []
    for i in range(20):
        run = plan(sm, j, T0 + 10 * i)
        raised += alerts_of(finish(sm, run, RunStatus.FAILED, T0 + 10 * i + 1))
    assert [a.event for a in raised] == [AlertEvent.FAILURE]
    assert raised[0].key.endswith(":failure") and raised[0].run_id == f"{j.id}@2027-01-15T08:00:20Z"
    assert sm.streaks[j.id] == 20
    run = plan(sm, j, T0 + 300)
    recovered = alerts_of(finish(sm, run, RunStatus.SUCCEEDED, T0 + 301))
    assert [a.event for a in recovered] == [AlertEvent.RECOVERY]
    assert j.id not in sm.streaks
    run = plan(sm, j, T0 + 310)
    assert alerts_of(finish(sm, run, RunStatus.SUCCEEDED, T0 + 311)) == []


def test_a_short_streak_gives_no_recovery_and_each_destination_has_its_own_threshold() -> None:
    sm, j = machine(notify=(Notify(HOOK, after=3), Notify(MAIL, on=(AlertEvent.FAILURE,))))
    first = plan(sm, j, T0)
    got = alerts_of(finish(sm, first, RunStatus.TIMED_OUT, T0 + 1))
    assert [(a.to, a.event) for a in got] == [(MAIL, AlertEvent.FAILURE)]
    second = plan(sm, j, T0 + 10)
    assert alerts_of(finish(sm, second, RunStatus.SUCCEEDED, T0 + 11)) == []  # streak 1 < 3


def test_a_failure_with_a_retry_left_is_not_told_until_the_last_try() -> None:
    sm, j = machine(notify=(Notify(HOOK),), retries=1)
    run = plan(sm, j, T0)
    assert alerts_of(finish(sm, run, RunStatus.FAILED, T0 + 1)) == []
    retry = next(r for r in sm.active_runs())
    got = alerts_of(finish(sm, retry, RunStatus.FAILED, T0 + 5))
    assert [a.event for a in got] == [AlertEvent.FAILURE]
    assert got[0].key == f"{retry.id}:failure"


def test_lost_is_told_to_whoever_asks_and_counts_as_a_failure() -> None:
    sm, j = machine(notify=(Notify(HOOK, on=(AlertEvent.LOST,)), Notify(MAIL)))
    run = plan(sm, j, T0)
    got = alerts_of(finish(sm, run, RunStatus.LOST, T0 + 1))
    assert sorted((a.to, str(a.event)) for a in got) == [(HOOK, "lost"), (MAIL, "failure")]


def test_skipped_and_cancelled_runs_neither_fail_nor_recover() -> None:
    sm, j = machine(notify=(Notify(HOOK),))
    run = plan(sm, j, T0)
    finish(sm, run, RunStatus.FAILED, T0 + 1)
    for i, status in enumerate((RunStatus.SKIPPED, RunStatus.CANCELLED)):
        other = plan(sm, j, T0 + 10 * (i + 1))
        assert alerts_of(finish(sm, other, status, T0 + 10 * (i + 1))) == []
    assert sm.streaks[j.id] == 1


def test_missed_and_overdue_alarms_are_checked_and_made_once() -> None:
    sm, j = machine(
        notify=(Notify(HOOK, on=(AlertEvent.MISSED, AlertEvent.OVERDUE)),),
        grace_s=30.0,
        warn_after_s=60.0,
    )
    late = plan(sm, j, T0)
    early = c.Alarm(AlertEvent.MISSED, j.id, late.id, late.id, T0 + 29)
    assert sm.apply(c.RaiseAlarms((early,)))[1] == []  # within its grace: nothing
    alarm = c.Alarm(AlertEvent.MISSED, j.id, late.id, late.id, T0 + 31)
    assert [a.event for a in alerts_of(sm.apply(c.RaiseAlarms((alarm,)))[1])] == [AlertEvent.MISSED]
    assert sm.apply(c.RaiseAlarms((alarm,)))[1] == []  # a new leader raising it again
    sm.apply(c.StartRun(late.id, "n1", 42, T0 + 40))
    soon = c.Alarm(AlertEvent.OVERDUE, j.id, late.id, late.id, T0 + 99)
    assert sm.apply(c.RaiseAlarms((soon,)))[1] == []
    over = c.Alarm(AlertEvent.OVERDUE, j.id, late.id, late.id, T0 + 100)
    got = alerts_of(sm.apply(c.RaiseAlarms((over, over)))[1])
    assert [a.event for a in got] == [AlertEvent.OVERDUE]


def test_a_missed_alarm_about_a_run_that_started_meanwhile_makes_nothing() -> None:
    sm, j = machine(notify=(Notify(HOOK, on=(AlertEvent.MISSED,)),))
    run = plan(sm, j, T0)
    sm.apply(c.StartRun(run.id, "n1", 42, T0 + 0.5))
    alarm = c.Alarm(AlertEvent.MISSED, j.id, run.id, run.id, T0 + 3600)
    assert sm.apply(c.RaiseAlarms((alarm,)))[1] == []


def test_delivery_outcomes_back_off_then_settle_and_a_replayed_outcome_counts_once() -> None:
    sm, j = machine(notify=(Notify(HOOK),))
    run = plan(sm, j, T0)
    (alert,) = alerts_of(finish(sm, run, RunStatus.FAILED, T0 + 1))
    assert alert.id in sm.undelivered and alert.next_at == T0 + 1
    sm.apply(c.RecordDelivery(alert.id, 1, False, True, "HTTP 500", T0 + 2))
    again = c.RecordDelivery(alert.id, 1, False, True, "HTTP 500", T0 + 2)
    assert sm.apply(again)[0] is None
    after_one = sm.alerts[alert.id]
    assert (after_one.state, after_one.attempts, after_one.next_at) == (
        DeliveryState.RETRYING,
        1,
        T0 + 3,
    )
    sm.apply(c.RecordDelivery(alert.id, 2, False, True, "HTTP 500", T0 + 4))
    assert sm.alerts[alert.id].next_at == T0 + 6
    sm.apply(c.RecordDelivery(alert.id, 3, True, False, "HTTP 200", T0 + 7))
    assert sm.alerts[alert.id].state is DeliveryState.SENT
    assert alert.id not in sm.undelivered


def test_a_refusal_or_the_last_attempt_fails_the_alert_and_the_wait_is_capped() -> None:
    sm, j = machine(notify=(Notify(HOOK), Notify(MAIL)))
    run = plan(sm, j, T0)
    hook, mail = alerts_of(finish(sm, run, RunStatus.FAILED, T0 + 1))
    sm.apply(c.RecordDelivery(hook.id, 1, False, False, "HTTP 404", T0 + 2))
    assert sm.alerts[hook.id].state is DeliveryState.FAILED
    for attempt in range(1, config.ALERT_MAX_ATTEMPTS + 1):
        sm.apply(c.RecordDelivery(mail.id, attempt, False, True, "refused", T0 + attempt))
        if attempt < config.ALERT_MAX_ATTEMPTS:
            waited = sm.alerts[mail.id].next_at - (T0 + attempt)
            assert 0 < waited <= config.ALERT_BACKOFF_MAX_S
    assert sm.alerts[mail.id].state is DeliveryState.FAILED
    assert not sm.undelivered


def test_alerts_survive_a_snapshot_and_the_window_is_bounded() -> None:
    sm, j = machine(notify=(Notify(HOOK, on=(AlertEvent.FAILURE,)),))
    for i in range(config.ALERTS_KEPT_PER_JOB + 5):
        run = plan(sm, j, T0 + 10 * i)
        finish(sm, run, RunStatus.FAILED, T0 + 10 * i + 1)
        run = plan(sm, j, T0 + 10 * i + 5)
        finish(sm, run, RunStatus.SUCCEEDED, T0 + 10 * i + 6)
    assert len(sm.alerts) == config.ALERTS_KEPT_PER_JOB
    copy = StateMachine()
    copy.restore(sm.snapshot())
    assert copy.alerts == sm.alerts and copy.undelivered == sm.undelivered
    assert copy.streaks == sm.streaks and copy.alerts_of == sm.alerts_of
    assert copy.jobs == sm.jobs


def test_commands_about_alerts_cross_the_wire_unchanged() -> None:
    alarm = c.Alarm(AlertEvent.MISSED, "aaaaaaaaaaaa", None, "aaaaaaaaaaaa@x", T0, "3 ticks")
    for command in (
        c.RaiseAlarms((alarm,)),
        c.RecordDelivery("k#0", 2, False, True, "HTTP 503", T0),
    ):
        assert c.decode(c.encode(command)) == command
    assert c.replayable(c.RaiseAlarms((alarm,)))


def test_removing_a_job_drops_its_alerts_and_streak() -> None:
    sm, j = machine(notify=(Notify(HOOK),))
    run = plan(sm, j, T0)
    finish(sm, run, RunStatus.FAILED, T0 + 1)
    sm.apply(c.RemoveJob(j.id))
    assert not sm.alerts and not sm.undelivered and not sm.streaks and not sm.alerts_of


def test_a_tick_skipped_past_its_grace_was_missed_but_an_overlap_skip_was_not() -> None:
    sm, j = machine(notify=(Notify(HOOK, on=(AlertEvent.MISSED,)),), grace_s=30.0)
    prompt = plan(sm, j, T0)
    assert alerts_of(finish(sm, prompt, RunStatus.SKIPPED, T0 + 0.1)) == []
    late = plan(sm, j, T0 + 10)
    got = alerts_of(finish(sm, late, RunStatus.SKIPPED, T0 + 100))
    assert [a.event for a in got] == [AlertEvent.MISSED]
