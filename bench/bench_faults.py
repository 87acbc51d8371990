"""Faults on three hosts: every tick counted, whoever planned it, through leader kills and partitions.

Three nodes in network namespaces of their own (tests/hosts_harness.py), set up as
docs/cluster.md tells an operator; five `every 1 second` jobs (`catchup: all`) write each
execution to a ledger, the only source of the counts. Faults, with calm between: SIGKILL of
the leader, restarted 1, 3 or 8 s later (in turn); the leader cut off for 1.5 or 8 s; and once
each a follower killed, a follower cut off, the leader frozen 0.3 and 6 s. Per kind of fault:
ticks lost and doubled (every tick from 2 s before each fault to 2 s after its heal), the time
from the fault to the first start of a tick due after it on a node it spared ("elsewhere"),
and the worst start lag.
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Figure, skipped

TESTS = Path(__file__).resolve().parents[1] / "tests"
if str(TESTS) not in sys.path:  # the drills and the ledger are shared with the tests
    sys.path.insert(0, str(TESTS))

import fault_drills as drills  # noqa: E402
from hosts_harness import HostCluster, host_cluster, why_not  # noqa: E402
from tick_ledger import Fault, FaultRow, Tally, expected_ticks, fault_rows, tally  # noqa: E402

Drill = Callable[[HostCluster], Fault]


def _kill_leader(down_s: float) -> Drill:
    def drill(hosts: HostCluster) -> Fault:
        name, _ = drills.leader_and_follower(hosts)
        return drills.killed(
            hosts, f"leader SIGKILL, back after {down_s:g} s", name, "leader", down_s
        )

    return drill


def _cut_leader(down_s: float) -> Drill:
    def drill(hosts: HostCluster) -> Fault:
        name, _ = drills.leader_and_follower(hosts)
        return drills.cut_off(hosts, f"leader cut off {down_s:g} s", name, "leader", down_s)

    return drill


def _freeze_leader(for_s: float) -> Drill:
    def drill(hosts: HostCluster) -> Fault:
        name, _ = drills.leader_and_follower(hosts)
        return drills.frozen(hosts, f"leader SIGSTOP {for_s:g} s", name, "leader", for_s)

    return drill


def _plan(quick: bool) -> list[Drill]:
    """The faults, in order: leader kills and partitions of varied lengths, and the others."""
    if quick:
        return [_kill_leader(3.0), _cut_leader(1.5)]
    kills = [_kill_leader((1.0, 3.0, 8.0)[k % 3]) for k in range(20)]
    cuts = [_cut_leader((1.5, 8.0)[k % 2]) for k in range(10)]
    others: list[Drill] = [
        drills.kill_follower,
        drills.cut_follower,
        _freeze_leader(0.3),
        _freeze_leader(6.0),
    ]
    mixed: list[Drill] = []
    for k, kill in enumerate(kills):  # interleaved, so that no kind meets only a fresh cluster
        mixed.append(kill)
        if k % 2 == 1 and cuts:
            mixed.append(cuts.pop())
        if k % 5 == 4 and others:
            mixed.append(others.pop())
    return mixed + cuts + others


def run(quick: bool = False) -> list[Figure]:
    reason = why_not()
    if reason is not None:
        return [skipped("faults on three hosts", "ticks", "0 lost, 0 doubled", reason)]
    base = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    base.chmod(0o755)
    with host_cluster(base, size=3) as hosts:
        ledger = drills.make_ledger(base)
        jobs = drills.deploy_jobs(hosts, base, ledger)
        drills.warm_up(ledger, jobs)
        faults = []
        began = time.monotonic()
        for drill in _plan(quick):
            drills.calm(hosts)
            faults.append(drill(hosts))
        executions = drills.settle(ledger, jobs, faults)
        took = time.monotonic() - began
    rows = fault_rows(faults, executions, jobs, ("n1", "n2", "n3"), drills.MARGIN_S)
    start, end = min(f.start for f in faults) - 2, max(f.end for f in faults) + 2
    whole = tally(expected_ticks(jobs, start, end), executions)
    return [*_totals(whole, len(faults), took), _failover(rows), *_per_kind(rows)]


def _kind(row: FaultRow) -> str:
    return row.fault.label


def _per_kind(rows: list[FaultRow]) -> list[Figure]:
    """Lost and doubled ticks per kind of fault, with the time to the first run elsewhere."""
    kinds: dict[str, list[FaultRow]] = {}
    for row in rows:
        kinds.setdefault(_kind(row), []).append(row)
    figures = []
    for kind, group in kinds.items():
        lost = sum(len(r.tally.lost) for r in group)
        doubled = sum(len(r.tally.doubled) for r in group)
        ticks = sum(r.tally.ticks for r in group)
        away = [r.first_elsewhere for r in group if r.first_elsewhere is not None]
        lags = [r.tally.worst_lag for r in group if r.tally.worst_lag is not None]
        note = (
            f"{len(group)}x, {ticks} ticks, {doubled} doubled; elsewhere median "
            f"{_s(statistics.median(away) if away else math.nan)}, max {_s(max(away, default=math.nan))}; "
            f"worst lag {_s(max(lags, default=math.nan))}"
        )
        figures.append(
            Figure(f"{kind}: ticks lost", lost, "ticks", "0", note, lost == 0 and doubled == 0)
        )
    return figures


def _totals(whole: Tally, faults: int, took: float) -> list[Figure]:
    lost, doubled = len(whole.lost), len(whole.doubled)
    note = f"{faults} faults in {took:.0f} s; every tick of the window, whoever planned it"
    return [
        Figure(
            "all faults: ticks lost", lost, "ticks", "0", f"of {whole.ticks}; {note}", lost == 0
        ),
        Figure(
            "all faults: ticks doubled", doubled, "ticks", "0", f"of {whole.ticks}", doubled == 0
        ),
    ]


def _failover(rows: list[FaultRow]) -> Figure:
    """Leader kills: from the SIGKILL to the first start elsewhere of a tick due after it."""
    away = [r.first_elsewhere for r in rows if "leader SIGKILL" in r.fault.label]
    found = [a for a in away if a is not None]
    median = statistics.median(found) if found else math.nan
    note = f"{len(away)} kills; " + ", ".join("-" if a is None else f"{a:.2f}" for a in away) + " s"
    return Figure(
        "leader SIGKILL to the first run started by another node, median",
        median,
        "s",
        "<= 1 s",
        note,
        median <= 1.0 if found else None,
    )


def _s(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f} s"
