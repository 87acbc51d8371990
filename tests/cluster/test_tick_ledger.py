"""The ledger counting of tests/tick_ledger.py on synthetic lines: lost, doubled, lag, failover."""

from __future__ import annotations

import pytest

from tick_ledger import (
    Execution,
    Fault,
    expected_ticks,
    fault_rows,
    format_table,
    parse_ledger,
    parse_run_id,
    tally,
    whole_window,
)

T0 = 1_796_676_916.0  # 2026-12-07T20:55:16Z
JOB = "a1b2c3d4e5f6"


def line(instant: float, node: str, started: float, job: str = JOB, suffix: str = "") -> str:
    """A ledger line as a job writes it, with the instant in both forms Odin's ids use."""
    label = f"{instant - T0 + 16:02.0f}Z" if instant % 2 else f"{instant - T0 + 16:06.3f}Z"
    return f"{job}@2026-12-07T20:55:{label}{suffix} {node} {started!r}\n"


def test_run_ids_parse_with_and_without_milliseconds() -> None:
    assert parse_run_id(f"{JOB}@2026-12-07T20:55:16.000Z") == (JOB, T0, 0)
    assert parse_run_id(f"{JOB}@2026-12-07T20:55:16Z") == (JOB, T0, 0)
    assert parse_run_id(f"{JOB}@2026-12-07T20:55:16.250Z~2") == (JOB, T0 + 0.25, 2)
    with pytest.raises(ValueError):
        parse_run_id("no-instant")


def test_a_torn_last_line_is_left_out() -> None:
    text = line(T0, "n1", T0 + 0.01) + f"{JOB}@2026-12-07T20:55:17Z n2"
    assert parse_ledger(text) == [Execution(JOB, T0, 0, "n1", T0 + 0.01)]


def test_expected_ticks_are_whole_seconds_outside_the_excluded_windows() -> None:
    ticks = expected_ticks(["j", "k"], T0 - 0.5, T0 + 4.2, excluded=[(T0 + 1, T0 + 2)])
    assert ticks == [
        ("j", T0),
        ("j", T0 + 3),
        ("j", T0 + 4),
        ("k", T0),
        ("k", T0 + 3),
        ("k", T0 + 4),
    ]


def test_lost_doubled_and_lag_are_counted_per_tick() -> None:
    text = "".join(
        [
            line(T0, "n1", T0 + 0.02),
            line(T0 + 1, "n2", T0 + 1.5),
            line(T0 + 1, "n3", T0 + 3.0),  # the same tick again: doubled
            line(T0 + 3, "n3", T0 + 3.1, suffix="~1"),  # a retry is an execution of its tick
            line(T0 + 3, "n1", T0 + 3.05),
            line(T0 + 4, "n1", T0 + 4.7, job="ffffffffffff"),  # another job
        ]
    )
    result = tally(expected_ticks([JOB], T0, T0 + 4), parse_ledger(text))
    assert result.ticks == 5
    assert result.lost == [(JOB, T0 + 2), (JOB, T0 + 4)]
    assert result.doubled == [(JOB, T0 + 1), (JOB, T0 + 3)]
    assert result.worst_lag == pytest.approx(0.5)


def test_fault_rows_measure_failover_and_keep_an_outage_apart() -> None:
    kill = Fault("SIGKILL leader", ("n1",), "leader", T0 + 1.2, T0 + 5.0)
    outage = Fault("SIGKILL all", ("n1", "n2", "n3"), "all", T0 + 10.5, T0 + 13.5, down=True)
    text = "".join(
        [line(T0 + k, "n1", T0 + k + 0.01) for k in range(0, 2)]
        + [line(T0 + 1, "n2", T0 + 1.3)]  # started after the kill, but due before it
        + [line(T0 + 2, "n2", T0 + 3.8), line(T0 + 3, "n2", T0 + 3.9)]  # the failover
        + [line(T0 + k, "n2", T0 + k + 0.01) for k in range(4, 11)]
        + [line(T0 + k, "n3", T0 + 13.6 + k / 100) for k in range(11, 14)]  # caught up late
        + [line(T0 + k, "n3", T0 + k + 0.01) for k in range(14, 18)]
    )
    executions = parse_ledger(text)
    rows = fault_rows([kill, outage], executions, [JOB], ["n1", "n2", "n3"])
    assert rows[0].first_elsewhere == pytest.approx(T0 + 3.8 - kill.start)
    assert rows[0].tally.worst_lag == pytest.approx(1.8)
    assert rows[0].tally.doubled == [(JOB, T0 + 1)]
    assert rows[0].down_tally is None
    # Around the outage: ticks 9, 10 and 14, 15; its own ticks 11 to 13 are tallied apart.
    assert rows[1].tally.ticks == 4 and rows[1].tally.lost == []
    assert rows[1].first_elsewhere == pytest.approx(13.71 - 10.5)
    assert rows[1].down_tally is not None
    assert rows[1].down_tally.ticks == 3 and rows[1].down_tally.lost == []
    assert rows[1].down_tally.worst_lag == pytest.approx(13.71 - 11)

    window = whole_window([kill, outage])
    assert window == (kill.start - 2, outage.end + 2)
    whole = tally(expected_ticks([JOB], *window, excluded=[(outage.start, outage.end)]), executions)
    table = format_table(rows, whole, window)
    assert "SIGKILL leader" in table and "whole cluster down" in table
    assert f"{whole.ticks} ticks, 0 lost, 1 doubled" in table
