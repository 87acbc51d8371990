"""Three nodes: lag, CLI latency through a follower, and failover after SIGKILL of the leader.

Every figure here needs ``odin nodes add`` and ``odin-engine --join``; when the
cluster cannot be formed, each figure is reported as skipped with the reason.
Failover: jobs firing every second append their run id, node and clock to a
shared file (every node runs on this machine); the leader is SIGKILLed, and once
another node has launched a run the killed node is restarted, and so on. Runs are
placed on every node and committed a second ahead of their instant, so a run
launched just after a kill may have been planned by the dead leader: the failover
time counts only runs whose plan was committed after the kill (the run's
``planned_at``), i.e. that the new leader planned, from the kill to the first
line of the first of them in that file; the time to the new leader's first plan
is given too. At the end each tick of the window must appear exactly once in
the file: absent ones are missed, repeated ones doubled.
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.bench_scale import cli_through, deploy_times
from bench.common import Figure, skipped
from bench.harness import (
    BenchError,
    Engine,
    JobDef,
    deploy,
    engines,
    job_id,
    leader_of,
    runs_of,
    wait_for,
)
from bench.odin_runner import run_odin
from bench.workload import PY_CODE, dispatch_lags, instants, spread_jobs, stats
from odin.cluster.model import run_id

NODES = 3
FAILOVER_JOBS = 5
FAILOVER_FIGURE = "failover: leader SIGKILL to the first launch the new leader planned, median"
MARK_CODE = """import os, time
t = time.time()
with open({path!r}, "a") as out:
    out.write(f"{{os.environ['ODIN_RUN_ID']}} {{os.environ['ODIN_NODE']}} {{t!r}}\\n")
print("T", repr(t), flush=True)
"""


def run(quick: bool = False) -> list[Figure]:
    try:
        with engines(NODES, "cluster") as nodes:
            return _measure(nodes, quick)
    except BenchError as error:
        why = f"no {NODES}-node cluster yet ({error})"[:300]
        return [
            skipped("dispatch lag p99, spread, 3 nodes", "ms", "<= 15 ms", why),
            skipped("odin list wall time, 100 jobs, 3 nodes, through a follower", "ms", "", why),
            skipped(FAILOVER_FIGURE, "s", "<= 2 s", why),
            skipped("failover: missed ticks", "ticks", "0", why),
            skipped("failover: doubled ticks", "ticks", "0", why),
        ]


def _measure(nodes: list[Engine], quick: bool) -> list[Figure]:
    leader = wait_for(lambda: leader_of(nodes), 30, "a leader")
    follower = next(n for n in nodes if n is not leader)
    load = 100 if quick else 1000
    repeat = 2 if quick else 5
    deploy(
        leader,
        [JobDef(job_id(0x50, i), f"l{i}", "never", "print(1)\n") for i in range(100 - repeat)],
    )
    cli = _cli_figures(leader, follower, repeat)
    deploy(
        leader,
        [JobDef(job_id(0x50, i), f"l{i}", "never", "print(1)\n") for i in range(100, load)],
    )
    odin = run_odin(leader, spread_jobs(0x51, 5, PY_CODE), 3.0 if quick else 15.0)
    lag = stats(dispatch_lags(odin))
    figures = [
        Figure(
            f"dispatch lag p99, spread, 3 nodes, {load:,} jobs",
            lag.p99 * 1e3,
            "ms",
            "<= 15 ms",
            lag.ms(),
            lag.p99 * 1e3 <= 15,
        ),
    ]
    return figures + cli + _failover(nodes, 1 if quick else 10)


def _cli_figures(leader: Engine, follower: Engine, repeat: int) -> list[Figure]:
    """``odin list`` at 100 jobs and ``odin deploy``, through the leader and a follower
    (``repeat`` jobs are deployed first, to reach 100: the timed deploys change them)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-cli-"))
    try:
        deploy_times(leader, repeat, workdir, 0)
        return cli_through(leader, follower, workdir, 0, repeat, repeat, 100)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _failover(nodes: list[Engine], kills: int) -> list[Figure]:
    marks = Path(tempfile.mkdtemp(prefix="bench-failover-")) / "marks"
    marks.touch(mode=0o666)
    code = MARK_CODE.format(path=str(marks))
    jobs = [
        JobDef(job_id(0x52, k), f"fo{k}", "every 1 second", code, extra="  catchup: all\n")
        for k in range(FAILOVER_JOBS)
    ]
    leader = wait_for(lambda: leader_of(nodes), 30, "a leader")
    deploy(leader, jobs)
    time.sleep(3.0)
    begin = float(math.ceil(time.time()))
    kill_times = [_kill_leader(nodes, marks) for _ in range(kills)]
    end = float(math.floor(time.time())) - 1.0
    time.sleep(3.0)
    leader = wait_for(lambda: leader_of(nodes), 30, "a leader")
    for job in jobs:
        leader.client().request("PATCH", f"/v1/jobs/{job.jid}", {"paused": True})
    time.sleep(2.0)
    lines = [line.split() for line in marks.read_text().splitlines() if line.strip()]
    seen = Counter(rid for rid, _, _ in lines)
    first_line: dict[str, float] = {}
    for rid, _, at in lines:
        first_line[rid] = min(float(at), first_line.get(rid, math.inf))
    runs = [r for job in jobs for r in runs_of(leader, job.jid)]
    took, planned = _after_kills(kill_times, runs, first_line)
    lateness = [
        first_line[r["id"]] - r["instant"]
        for r in runs
        if begin <= r["instant"] < end and r["id"] in first_line
    ]
    expected = [run_id(job.jid, t) for job in jobs for t in instants(job, begin, end)]
    missing = [rid for rid in expected if seen[rid] == 0]
    missed = len(missing)
    doubled = sum(1 for rid in expected if seen[rid] > 1)
    note = f"{kills} kills; " + ", ".join(f"{t:.2f}" for t in took) + " s"
    why = _what_odin_says(leader, jobs, missing)
    return [
        Figure(
            FAILOVER_FIGURE,
            statistics.median(took),
            "s",
            "<= 2 s",
            note + "; runs are committed 1 s ahead of their instant",
            statistics.median(took) <= 2,
        ),
        Figure(
            "failover: leader SIGKILL to the new leader's first plan, median",
            statistics.median(planned),
            "s",
            "",
            ", ".join(f"{t:.2f}" for t in planned) + " s",
        ),
        Figure(
            "failover: start lag of the ticks around the kills, max",
            max(lateness, default=math.nan) * 1e3,
            "ms",
            "",
            f"instant to first line, {len(lateness)} ticks; "
            f"median {statistics.median(lateness) * 1e3 if lateness else math.nan:.0f} ms",
        ),
        Figure(
            "failover: missed ticks",
            missed,
            "ticks",
            "0",
            f"of {len(expected)}" + (f"; Odin's record of each: {why}" if missing else ""),
            missed == 0,
        ),
        Figure("failover: doubled ticks", doubled, "ticks", "0", "", doubled == 0),
    ]


def _what_odin_says(leader: Engine, jobs: list[JobDef], missing: list[str]) -> str:
    """Each missed run as the cluster recorded it: status, node and message."""
    said = []
    for job in jobs:
        runs = {r["id"]: r for r in runs_of(leader, job.jid)}
        for rid in missing:
            if rid.startswith(job.jid):
                run = runs.get(rid)
                said.append(
                    f"{rid} never planned"
                    if run is None
                    else f"{rid} {run['status']} on {run['node']} ({run.get('message') or 'no message'})"
                )
    return "; ".join(said)


def _after_kills(
    kill_times: list[float], runs: list[dict[str, Any]], first_line: dict[str, float]
) -> tuple[list[float], list[float]]:
    """For each kill, seconds from it to the first line of the first run planned after it
    (and before the next kill), and to that plan's commit; NaN when there is none."""
    took, planned = [], []
    for k, killed_at in enumerate(kill_times):
        until = kill_times[k + 1] if k + 1 < len(kill_times) else math.inf
        new = [r for r in runs if killed_at < r["planned_at"] < until]
        lines = [first_line[r["id"]] for r in new if r["id"] in first_line]
        took.append(min(lines, default=math.nan) - killed_at)
        planned.append(min((r["planned_at"] for r in new), default=math.nan) - killed_at)
    return took, planned


def _kill_leader(nodes: list[Engine], marks: Path) -> float:
    """SIGKILL the leader, wait until another node launched a run, restart the killed one;
    the time of the kill."""
    leader = wait_for(lambda: leader_of(nodes), 30, "a leader")
    killed_at = time.time()
    leader.kill()

    def first_launch() -> float | None:
        for line in marks.read_text().splitlines():
            _, node, at = line.split()
            if node != leader.name and float(at) > killed_at:
                return float(at) - killed_at
        return None

    survivors = [n for n in nodes if n is not leader]
    wait_for(lambda: leader_of(survivors), 60, "a new leader")
    wait_for(first_launch, 60, "a launch by another node")
    others = tuple(n.raft_addr for n in nodes if n is not leader)
    leader.join = others
    leader.start()
    time.sleep(2.0)
    return killed_at
