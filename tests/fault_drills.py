"""Fault drills on a cluster of hosts (network namespaces), with a ledger the jobs write.

Shared by tests/cluster/test_multihost_faults.py (one short round in CI) and bench/bench_faults.py
(many rounds, faults of varied lengths): deploy jobs that append ``<run id> <node> <start>``
to a ledger, apply faults (kill, freeze, cut off; leader or follower), then judge every
tick of the window from the ledger alone (tests/tick_ledger.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine_harness import job_id_of, user_dir, wait_for, write_job
from hosts_harness import HostCluster
from tick_ledger import (
    Execution,
    Fault,
    Tally,
    Tick,
    down_windows,
    expected_ticks,
    fault_rows,
    format_table,
    parse_ledger,
    parse_run_id,
    tally,
    whole_window,
)

ALICE = "odin-alice"
JOBS = 5
ROUNDS = int(os.environ.get("ODIN_FAULT_ROUNDS", "1"))
DOWN_S = 8.0  # a killed node is restarted, a cut one healed, this long after the fault
FREEZE_S = 6.0
ALL_DOWN_S = 3.0  # from SIGKILL of every node to their restart
CALM_S = 3.0  # once every node is healthy again, before the next fault
MARGIN_S = 2.0
SETTLE_S = 20.0  # at most, after the window, for late runs to land

LEDGER_CODE = """\
import os, time
started = time.time()
line = f"{{os.environ['ODIN_RUN_ID']}} {{os.environ['ODIN_NODE']}} {{started!r}}\\n"
fd = os.open({path!r}, os.O_APPEND | os.O_CREAT | os.O_WRONLY, 0o666)
try:
    os.write(fd, line.encode())
finally:
    os.close(fd)
"""


# -- the jobs and their ledger ------------------------------------------------------


def make_ledger(world_dir: Path) -> Path:
    """An empty ledger in a directory every job user may write in."""
    folder = world_dir / "ledger"
    folder.mkdir()
    os.chmod(folder, 0o777)
    ledger = folder / "ran"
    ledger.touch()
    os.chmod(ledger, 0o666)
    return ledger


def deploy_jobs(hosts: HostCluster, world_dir: Path, ledger: Path) -> list[str]:
    """Deploy the jobs as odin-alice through n1; their ids."""
    home = user_dir(world_dir, ALICE)
    code = LEDGER_CODE.format(path=str(ledger))
    ids = []
    for k in range(JOBS):
        path = write_job(
            home, f"tick{k}", code, schedule="every 1 second", extra="  catchup: all\n"
        )
        result = hosts.cli("n1", "deploy", "-f", str(path), user=ALICE, timeout=60)
        assert result is not None and result.returncode == 0, result
        ids.append(job_id_of(path))
    return ids


def ran(ledger: Path) -> list[Execution]:
    """What the ledger says ran so far."""
    return parse_ledger(ledger.read_text())


def warm_up(ledger: Path, jobs: list[str]) -> None:
    """Wait until every job has run a few times."""

    def started() -> bool:
        counts = {job: 0 for job in jobs}
        for e in ran(ledger):
            counts[e.job] = counts.get(e.job, 0) + 1
        return min(counts.values()) >= 3

    wait_for(started, timeout=30, interval=0.5, what="3 runs of every job")


# -- the faults -----------------------------------------------------------------------


def calm(hosts: HostCluster) -> None:
    """Wait until every node answers and the leader sees all healthy, then a few seconds more."""
    for name in hosts.nodes:
        hosts.wait_answers(name)
    wait_for(hosts.healthy, timeout=60, interval=0.5, what="every node healthy")
    time.sleep(CALM_S)


def leader_and_follower(hosts: HostCluster) -> tuple[str, str]:
    """The leader now, and one follower."""
    leader = hosts.wait_leader()
    return leader, next(name for name in hosts.nodes if name != leader)


def kill_leader(hosts: HostCluster) -> Fault:
    """(a) SIGKILL the leader, restart it 8 s later."""
    name, _ = leader_and_follower(hosts)
    return killed(hosts, "(a) SIGKILL, restart 8 s later", name, "leader")


def kill_follower(hosts: HostCluster) -> Fault:
    """(b) SIGKILL a follower, restart it 8 s later."""
    _, name = leader_and_follower(hosts)
    return killed(hosts, "(b) SIGKILL, restart 8 s later", name, "follower")


def killed(hosts: HostCluster, label: str, name: str, role: str, down_s: float = DOWN_S) -> Fault:
    """SIGKILL ``name``, wait ``down_s``, restart it (same command line) and wait until it answers."""
    start = time.time()
    hosts.kill(name)
    time.sleep(down_s)
    end = time.time()
    hosts.restart(name)
    return Fault(label, (name,), role, start, end)


def freeze_leader(hosts: HostCluster) -> Fault:
    """(c) SIGSTOP the leader for 6 s, then SIGCONT."""
    name, _ = leader_and_follower(hosts)
    return frozen(hosts, "(c) SIGSTOP 6 s, SIGCONT", name, "leader", FREEZE_S)


def frozen(hosts: HostCluster, label: str, name: str, role: str, for_s: float) -> Fault:
    """SIGSTOP ``name`` for ``for_s``, then SIGCONT."""
    start = time.time()
    hosts.freeze(name)
    try:
        time.sleep(for_s)
    finally:
        end = time.time()
        hosts.thaw(name)
    return Fault(label, (name,), role, start, end)


def blink_leader(hosts: HostCluster) -> Fault:
    """(g) SIGSTOP the leader for 0.3 s: shorter than its start lease."""
    name, _ = leader_and_follower(hosts)
    return frozen(hosts, "(g) SIGSTOP 0.3 s, SIGCONT", name, "leader", 0.3)


def cut_leader_briefly(hosts: HostCluster) -> Fault:
    """(h) Cut the leader off for 1.5 s: past its lease, shorter than an election's end."""
    name, _ = leader_and_follower(hosts)
    return cut_off(hosts, "(h) cut off 1.5 s, healed", name, "leader", 1.5)


def cut_leader(hosts: HostCluster) -> Fault:
    """(d) Cut the leader off for 8 s, then heal."""
    name, _ = leader_and_follower(hosts)
    return cut_off(hosts, "(d) cut off 8 s, healed", name, "leader")


def cut_follower(hosts: HostCluster) -> Fault:
    """(e) Cut a follower off for 8 s, then heal."""
    _, name = leader_and_follower(hosts)
    return cut_off(hosts, "(e) cut off 8 s, healed", name, "follower")


def cut_off(hosts: HostCluster, label: str, name: str, role: str, down_s: float = DOWN_S) -> Fault:
    """Take ``name``'s link down for ``down_s``, then up again."""
    start = time.time()
    hosts.cut(name)
    try:
        time.sleep(down_s)
    finally:
        end = time.time()
        hosts.heal(name)
    return Fault(label, (name,), role, start, end)


def kill_everyone(hosts: HostCluster) -> Fault:
    """SIGKILL every node, restart them all; the outage lasts until every one answers."""
    start = time.time()
    hosts.kill_all()
    time.sleep(ALL_DOWN_S)
    hosts.restart_all()
    end = time.time()
    return Fault("(f) SIGKILL all, restart all", tuple(hosts.nodes), "all", start, end, down=True)


SEQUENCE: list[Callable[[HostCluster], Fault]] = [
    kill_leader,
    kill_follower,
    freeze_leader,
    cut_leader,
    cut_follower,
    blink_leader,
    cut_leader_briefly,
    kill_everyone,
]


def apply_faults(hosts: HostCluster, rounds: int) -> list[Fault]:
    """The whole sequence, ``rounds`` times, with calm before each fault."""
    faults = []
    for number in range(1, rounds + 1):
        for step in SEQUENCE:
            calm(hosts)
            fault = step(hosts)
            faults.append(replace(fault, label=f"r{number} {fault.label}") if rounds > 1 else fault)
    return faults


# -- the verdict ----------------------------------------------------------------------


def settle(ledger: Path, jobs: list[str], faults: list[Fault]) -> list[Execution]:
    """Wait past the window, then until every due tick ran or ``SETTLE_S`` passed; what ran."""
    start, end = whole_window(faults, MARGIN_S)
    time.sleep(max(0.0, end + 1.5 - time.time()))
    due = expected_ticks(jobs, start, end)
    deadline = time.monotonic() + SETTLE_S
    while True:
        executions = ran(ledger)
        seen = {e.tick for e in executions}
        if all(t in seen for t in due) or time.monotonic() > deadline:
            return executions
        time.sleep(0.5)


@dataclass(frozen=True)
class Verdict:
    """The table to print, the tallies, and Odin's own record of every tick that went wrong."""

    table: str
    whole: Tally
    down: Tally
    records: str

    @property
    def wrong(self) -> list[Tick]:
        """Every tick lost or doubled, in the window or in an outage."""
        return self.whole.lost + self.whole.doubled + self.down.lost + self.down.doubled


def judge(
    hosts: HostCluster, jobs: list[str], faults: list[Fault], executions: list[Execution]
) -> Verdict:
    """Tally the window (outages apart), each fault, and each outage."""
    window = whole_window(faults, MARGIN_S)
    downs = down_windows(faults)
    whole = tally(expected_ticks(jobs, *window, excluded=downs), executions)
    outage = [t for start, end in downs for t in expected_ticks(jobs, start, end)]
    down = tally(outage, executions)
    rows = fault_rows(faults, executions, jobs, list(hosts.nodes), MARGIN_S)
    table = format_table(rows, whole, window, MARGIN_S)
    table += (
        f"\nwhole-cluster outages (catchup: all): {down.ticks} ticks, {len(down.lost)} lost, "
        f"{len(down.doubled)} doubled"
    )
    verdict = Verdict(table, whole, down, records="")
    return replace(verdict, records=odin_records(hosts, jobs, verdict.wrong, window[0]))


def odin_records(hosts: HostCluster, jobs: list[str], ticks: list[Tick], since: float) -> str:
    """How Odin recorded each of ``ticks`` (status, node, message), the first 30 of them."""
    if not ticks:
        return ""
    limit = min(1000, int((time.time() - since + 30) * 1.2))
    runs: dict[Tick, list[dict[str, Any]]] = {}
    for job in jobs:
        for run in runs_of(hosts, job, limit):
            job_id, instant, _ = parse_run_id(run["id"])
            runs.setdefault((job_id, instant), []).append(run)
    lines = []
    for job, instant in ticks[:30]:
        told = "; ".join(said(run, instant) for run in runs.get((job, instant), []))
        when = time.strftime("%H:%M:%S", time.gmtime(instant))
        lines.append(f"  {job} {when}Z: {told or 'no run among its latest ' + str(limit)}")
    return "Odin's record of the wrong ticks:\n" + "\n".join(lines)


def said(run: dict[str, Any], instant: float) -> str:
    """One run as Odin recorded it: status, node, when it was planned, its message."""
    planned = run.get("planned_at")
    at = "" if planned is None else f", planned {planned - instant:+.1f} s"
    return f"{run['status']} on {run['node']}{at} {run.get('message') or ''}".rstrip()


def runs_of(hosts: HostCluster, job: str, limit: int) -> list[dict[str, Any]]:
    """The job's latest runs, from the first node that answers."""
    for name in hosts.reachable():
        result = hosts.cli(name, "log", "-i", job, "-o", "json", "-n", str(limit), user=ALICE)
        if result is not None and result.returncode == 0:
            found: list[dict[str, Any]] = result.json()
            return found
    return []
