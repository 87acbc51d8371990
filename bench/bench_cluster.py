"""Three nodes: lag, CLI latency through a follower, and failover after SIGKILL of the leader.

Every figure here needs ``odin nodes add`` and ``odin-engine --join``; when the
cluster cannot be formed, each figure is reported as skipped with the reason.
Failover: jobs firing every second append their run id, node and clock to a
shared file (every node runs on this machine); the leader is SIGKILLed, the
time to the first run launched by another node is taken from that file, the
killed node is restarted, and so on. At the end each tick of the window must
appear exactly once in the file: absent ones are missed, repeated ones doubled.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.common import Figure, skipped
from bench.harness import (
    BenchError,
    Engine,
    JobDef,
    deploy,
    engines,
    job_id,
    leader_of,
    odin_cli,
    runs_of,
    wait_for,
)
from bench.odin_runner import run_odin
from bench.workload import PY_CODE, dispatch_lags, instants, spread_jobs, stats
from odin.cluster.model import run_id

NODES = 3
FAILOVER_JOBS = 5
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
            skipped("odin list wall time through a follower", "ms", "", why),
            skipped("failover: leader SIGKILL to first launch, median", "s", "<= 2 s", why),
            skipped("failover: missed ticks", "ticks", "0", why),
            skipped("failover: doubled ticks", "ticks", "0", why),
        ]


def _measure(nodes: list[Engine], quick: bool) -> list[Figure]:
    leader = wait_for(lambda: leader_of(nodes), 30, "a leader")
    follower = next(n for n in nodes if n is not leader)
    load = 100 if quick else 1000
    deploy(
        leader,
        [JobDef(job_id(0x50, i), f"l{i}", "never", "print(1)\n") for i in range(load)],
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
        Figure("odin list wall time through a follower", odin_cli(follower, "list") * 1e3, "ms"),
        Figure("odin list wall time through the leader", odin_cli(leader, "list") * 1e3, "ms"),
    ]
    return figures + _failover(nodes, 1 if quick else 10)


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
    times = [_kill_leader(nodes, marks) for _ in range(kills)]
    end = float(math.floor(time.time())) - 1.0
    time.sleep(3.0)
    leader = wait_for(lambda: leader_of(nodes), 30, "a leader")
    for job in jobs:
        leader.client().request("PATCH", f"/v1/jobs/{job.jid}", {"paused": True})
    time.sleep(2.0)
    seen = Counter(line.split()[0] for line in marks.read_text().splitlines() if line.strip())
    expected = [run_id(job.jid, t) for job in jobs for t in instants(job, begin, end)]
    missing = [rid for rid in expected if seen[rid] == 0]
    missed = len(missing)
    doubled = sum(1 for rid in expected if seen[rid] > 1)
    note = f"{kills} kills; " + ", ".join(f"{t:.2f}" for t in times) + " s"
    why = _what_odin_says(leader, jobs, missing)
    return [
        Figure(
            "failover: leader SIGKILL to first launch, median",
            statistics.median(times),
            "s",
            "<= 2 s",
            note,
            statistics.median(times) <= 2,
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


def _kill_leader(nodes: list[Engine], marks: Path) -> float:
    """SIGKILL the leader; seconds until another node launched a run; restart the killed one."""
    leader = wait_for(lambda: leader_of(nodes), 30, "a leader")
    killed_at = time.time()
    leader.kill()

    def first_launch() -> float | None:
        for line in marks.read_text().splitlines():
            _, node, at = line.split()
            if node != leader.name and float(at) > killed_at:
                return float(at) - killed_at
        return None

    took = wait_for(first_launch, 60, "a launch by a new leader")
    others = tuple(n.raft_addr for n in nodes if n is not leader)
    leader.join = others
    leader.start()
    time.sleep(2.0)
    return took
