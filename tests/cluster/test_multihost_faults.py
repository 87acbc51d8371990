"""Every tick runs exactly once while the hosts of a 3-node cluster fail one after another.

Three nodes, each in a network namespace of its own (tests/hosts_harness.py). Five jobs of
odin-alice fire every second with ``catchup: all``; each run appends ``<run id> <node>
<start time>`` to a file of the test, the ground truth of what ran (tests/tick_ledger.py
counts it). Then, with a few seconds of calm between: (a) SIGKILL of the leader, restarted
8 s later; (b) the same for a follower; (c) SIGSTOP of the leader for 6 s; (d) the leader
cut off for 8 s; (e) a follower cut off for 8 s; (g) the leader frozen 0.3 s (shorter than its
lease); (h) the leader cut off 1.5 s (past its lease, about an election); (f) SIGKILL of every
node, all restarted.
From 2 s before the first fault to 2 s after the last heal, every tick of every job must
have run once: none lost, none twice. The ticks due while the whole cluster was down (f)
are counted apart: with ``catchup: all`` each of them must run once too, late.
ODIN_FAULT_ROUNDS=N repeats the sequence N times (for longer runs from bench or by hand).
"""

from __future__ import annotations

import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from fault_drills import (
    ROUNDS,
    apply_faults,
    deploy_jobs,
    judge,
    make_ledger,
    settle,
    warm_up,
)
from hosts_harness import HostCluster, host_cluster

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
def hosts(world_dir: Path, alice: pwd.struct_passwd) -> Iterator[HostCluster]:
    """A formed 3-node cluster, one network namespace per node, removed afterwards."""
    with host_cluster(world_dir, size=3) as cluster:
        yield cluster


def test_every_tick_runs_once_through_host_faults(hosts: HostCluster, world_dir: Path) -> None:
    """No tick of the window is lost or doubled through faults (a) to (f), nor in the outages."""
    ledger = make_ledger(world_dir)
    jobs = deploy_jobs(hosts, world_dir, ledger)
    warm_up(ledger, jobs)
    faults = apply_faults(hosts, ROUNDS)
    verdict = judge(hosts, jobs, faults, settle(ledger, jobs, faults))
    print(f"\n{verdict.table}\n{verdict.records}")
    assert not verdict.wrong, (
        f"{len(verdict.whole.lost)} ticks lost and {len(verdict.whole.doubled)} doubled in the "
        f"window, {len(verdict.down.lost)} lost and {len(verdict.down.doubled)} doubled of the "
        f"outages:\n{verdict.table}\n{verdict.records}"
    )
