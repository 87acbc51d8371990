"""Counting what ran from a ledger that the jobs write themselves, independent of Odin's records.

Each run of a job appends one line ``<run id> <node> <start time>`` to a shared file; a run
id is ``<job>@<instant>`` (``~N`` after it for a retry), so every line names the tick it
executed. From those lines and the faults applied, these pure functions tell, for every
tick that was due, how many times it ran (none: lost; more than once: doubled), how late
its first execution started, and how long after each fault another node first started a
run. The tests and the benchmarks share them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

Tick = tuple[str, float]
"""A job's id and the instant (epoch seconds) one of its runs was due."""


@dataclass(frozen=True)
class Execution:
    """One line of the ledger: a run that started, where and when."""

    job: str
    instant: float
    attempt: int
    node: str
    started: float

    @property
    def tick(self) -> Tick:
        """The tick this execution ran, whatever its attempt."""
        return (self.job, self.instant)


@dataclass(frozen=True)
class Fault:
    """A fault applied to ``nodes`` from ``start`` to its heal at ``end``; ``down`` marks a
    whole-cluster outage, whose ticks (until it answered again) follow ``catchup``: apart."""

    label: str
    nodes: tuple[str, ...]
    role: str
    start: float
    end: float
    down: bool = False


@dataclass(frozen=True)
class Tally:
    """How the ticks of one window fared: how many were due, lost, doubled, and the worst lag."""

    ticks: int
    lost: list[Tick] = field(default_factory=list)
    doubled: list[Tick] = field(default_factory=list)
    worst_lag: float | None = None


@dataclass(frozen=True)
class FaultRow:
    """One fault's line of the report: its tally and how soon work went on elsewhere."""

    fault: Fault
    tally: Tally
    first_elsewhere: float | None
    down_tally: Tally | None = None


def parse_run_id(run_id: str) -> tuple[str, float, int]:
    """Split ``<job>@<ISO 8601 instant>[~attempt]`` into job, instant (epoch s) and attempt."""
    job, _, rest = run_id.partition("@")
    label, _, attempt = rest.partition("~")
    if not job or not label:
        raise ValueError(f"not a run id: {run_id!r}")
    moment = dt.datetime.fromisoformat(label)
    if moment.tzinfo is None:
        raise ValueError(f"run id without a time zone: {run_id!r}")
    return job, round(moment.timestamp(), 3), int(attempt) if attempt else 0


def parse_ledger(text: str) -> list[Execution]:
    """Every whole line of the ledger as an execution (a line still being written is left out)."""
    found = []
    for line in text.splitlines(keepends=True):
        fields = line.split()
        if not line.endswith("\n") or len(fields) != 3:
            continue
        job, instant, attempt = parse_run_id(fields[0])
        found.append(Execution(job, instant, attempt, fields[1], float(fields[2])))
    return found


def inside(instant: float, windows: Iterable[tuple[float, float]]) -> bool:
    """Whether ``instant`` falls in one of the closed intervals ``windows``."""
    return any(start <= instant <= end for start, end in windows)


def expected_ticks(
    jobs: Iterable[str],
    start: float,
    end: float,
    *,
    step: float = 1.0,
    excluded: Sequence[tuple[float, float]] = (),
) -> list[Tick]:
    """Every tick of each job (multiples of ``step`` seconds) in ``[start, end]``, but those
    in an ``excluded`` window."""
    first, last = math.ceil(start / step), math.floor(end / step)
    instants = [round(k * step, 3) for k in range(first, last + 1)]
    kept = [t for t in instants if not inside(t, excluded)]
    return [(job, t) for job in jobs for t in kept]


def executions_per_tick(executions: Iterable[Execution]) -> Counter[Tick]:
    """How many times each tick ran (retries count: each is one more execution of the tick)."""
    return Counter(e.tick for e in executions)


def first_starts(executions: Iterable[Execution]) -> dict[Tick, float]:
    """When each tick first started."""
    starts: dict[Tick, float] = {}
    for e in executions:
        starts[e.tick] = min(e.started, starts.get(e.tick, math.inf))
    return starts


def tally(ticks: Sequence[Tick], executions: Sequence[Execution]) -> Tally:
    """The lost and doubled ticks among ``ticks``, and the worst start lag of those that ran."""
    counts = executions_per_tick(executions)
    starts = first_starts(executions)
    lags = [starts[t] - t[1] for t in ticks if t in starts]
    return Tally(
        ticks=len(ticks),
        lost=[t for t in ticks if counts[t] == 0],
        doubled=[t for t in ticks if counts[t] > 1],
        worst_lag=max(lags, default=None),
    )


def first_run_elsewhere(
    executions: Iterable[Execution], fault: Fault, all_nodes: Collection[str]
) -> float | None:
    """Seconds from the fault to the first start, by a node it spared, of a tick due after it
    (any node when it hit them all); None when there was none."""
    spared = set(all_nodes) - set(fault.nodes) or set(all_nodes)
    after = [
        e.started - fault.start
        for e in executions
        if e.node in spared and e.started > fault.start and e.instant > fault.start
    ]
    return min(after, default=None)


def down_windows(faults: Iterable[Fault]) -> list[tuple[float, float]]:
    """The windows in which the whole cluster was down."""
    return [(f.start, f.end) for f in faults if f.down]


def fault_rows(
    faults: Sequence[Fault],
    executions: Sequence[Execution],
    jobs: Sequence[str],
    all_nodes: Collection[str],
    margin: float = 2.0,
) -> list[FaultRow]:
    """One row per fault: the ticks from ``margin`` before it to ``margin`` after its heal
    (a whole-cluster outage's own ticks tallied apart), and the first run elsewhere."""
    downs = down_windows(faults)
    rows = []
    for fault in faults:
        around = expected_ticks(jobs, fault.start - margin, fault.end + margin, excluded=downs)
        down = expected_ticks(jobs, fault.start, fault.end) if fault.down else None
        rows.append(
            FaultRow(
                fault=fault,
                tally=tally(around, executions),
                first_elsewhere=first_run_elsewhere(executions, fault, all_nodes),
                down_tally=None if down is None else tally(down, executions),
            )
        )
    return rows


def whole_window(faults: Sequence[Fault], margin: float = 2.0) -> tuple[float, float]:
    """From ``margin`` before the first fault to ``margin`` after the last heal."""
    return min(f.start for f in faults) - margin, max(f.end for f in faults) + margin


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _row_text(row: FaultRow, origin: float) -> str:
    f, t = row.fault, row.tally
    nodes = ",".join(f.nodes) + f" ({f.role})"
    return (
        f"{f.label:<34} {nodes:<22} {f.start - origin:>7.1f} {f.end - f.start:>6.1f} "
        f"{_seconds(row.first_elsewhere):>10} {_seconds(t.worst_lag):>9} "
        f"{t.ticks:>6} {len(t.lost):>5} {len(t.doubled):>7}"
    )


def _down_text(row: FaultRow) -> str | None:
    t = row.down_tally
    if t is None:
        return None
    return (
        f"{'  whole cluster down (catchup: all)':<34} {'':<22} {'':>7} {'':>6} {'':>10} "
        f"{_seconds(t.worst_lag):>9} {t.ticks:>6} {len(t.lost):>5} {len(t.doubled):>7}"
    )


def legend(margin: float) -> str:
    """What the table's columns mean."""
    return (
        "at: s from the window's start; elsewhere: s from the fault to the first start, on a "
        "node it spared, of a tick due after it; worst lag: the latest first start after its "
        f"instant of the ticks from {margin:g} s before the fault to {margin:g} s after its heal"
    )


def format_table(
    rows: Sequence[FaultRow], whole: Tally, window: tuple[float, float], margin: float = 2.0
) -> str:
    """The per-fault table, then the totals over the whole window (times relative to its start)."""
    header = (
        f"{'fault':<34} {'node (role)':<22} {'at s':>7} {'for s':>6} "
        f"{'elsewhere':>10} {'worst lag':>9} {'ticks':>6} {'lost':>5} {'doubled':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(_row_text(row, window[0]))
        down = _down_text(row)
        if down is not None:
            lines.append(down)
    lines.append("-" * len(header))
    lines.append(
        f"whole window {window[1] - window[0]:.1f} s (first fault - {margin:g} s to last heal "
        f"+ {margin:g} s, "
        f"whole-cluster outages apart): {whole.ticks} ticks, {len(whole.lost)} lost, "
        f"{len(whole.doubled)} doubled, worst lag {_seconds(whole.worst_lag)} s"
    )
    lines.append(legend(margin))
    return "\n".join(lines)
