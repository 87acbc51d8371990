"""The Raft cluster with real engine processes on loopback: membership, placement,
failover with no run lost or doubled, leases, restarts, quorum (needs root)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine_harness import (
    Cluster,
    Engine,
    job_id_of,
    needs_root,
    odin,
    user_dir,
    wait_for,
    write_job,
)
from odin.cluster.model import run_id

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root to run engines and jobs as users"),
    pytest.mark.slow,
]

ALICE = "odin-alice"


def runs_of(
    cluster: Cluster, job_id: str, via: str = "master-node", limit: int = 200
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = odin(
        "log",
        "-i",
        job_id,
        "-o",
        "json",
        "-n",
        str(limit),
        "-p",
        cluster.port_of(via),
        engine=cluster.primary,
        user=ALICE,
    ).json()
    return result


def deploy(cluster: Cluster, path: Path, via: str = "master-node") -> str:
    odin("deploy", "-f", str(path), "-p", cluster.port_of(via), engine=cluster.primary, user=ALICE)
    return job_id_of(path)


def test_members_placement_and_read_your_writes(cluster: Cluster, world_dir: Path) -> None:
    rows = wait_for(
        lambda: (
            [r for r in cluster.nodes() if r["status"] == "healthy"]
            if len([r for r in cluster.nodes() if r["status"] == "healthy"]) == 3
            else None
        ),
        what="3 healthy nodes",
    )
    assert sorted(r["name"] for r in rows) == ["master-node", "worker1", "worker2"]
    assert [r["role"] for r in rows].count("leader") == 1

    home = user_dir(world_dir, ALICE)
    job = write_job(home, "spread", "print('hi')\n", schedule="every 1 second")
    job_id = deploy(cluster, job, via="worker2")
    # Read-your-writes through the node that acknowledged the deploy.
    listed = odin(
        "list", "-o", "json", "-p", cluster.port_of("worker2"), engine=cluster.primary, user=ALICE
    ).json()
    assert [j["id"] for j in listed] == [job_id]
    for other in ("master-node", "worker1"):
        wait_for(
            lambda other=other: runs_of(cluster, job_id, other) is not None, what=f"{other} sees it"
        )

    def spread() -> Counter[str] | None:
        done = [r for r in runs_of(cluster, job_id) if r["status"] == "succeeded"]
        nodes = Counter(r["node"] for r in done)
        return nodes if len(nodes) == 3 else None

    placed = wait_for(spread, timeout=30, what="runs on every node")
    assert sum(placed.values()) >= 3
    # Output of a run kept on another node is fetched from there.
    remote = next(
        r
        for r in runs_of(cluster, job_id, "worker1")
        if r["status"] == "succeeded" and r["node"] != "worker1"
    )
    out = odin(
        "log",
        "-i",
        job_id,
        "--output",
        "-n",
        "50",
        "-p",
        cluster.port_of("worker1"),
        engine=cluster.primary,
        user=ALICE,
    ).stdout
    assert remote["id"] in out and "hi" in out
    [header] = [
        line for line in out.splitlines() if line.startswith(f"--- output of {remote['id']} ")
    ]
    assert "tail only" not in header, header  # fetched from its node by a signed call


def tick_window(runs: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    return [r for r in runs if start <= float(r["instant"]) <= end]


def test_leader_kill_fires_every_tick_exactly_once(cluster: Cluster, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    job_id = deploy(
        cluster,
        write_job(
            home, "tick", "print('tick')\n", schedule="every 1 second", extra="  catchup: all\n"
        ),
    )
    wait_for(
        lambda: len([r for r in runs_of(cluster, job_id) if r["status"] == "succeeded"]) >= 3,
        what="ticks before the kill",
    )
    leader = cluster.leader("master-node")
    assert leader is not None
    survivor = next(n for n in ("master-node", "worker1", "worker2") if n != leader)
    killed_at = time.time()
    cluster.kill(leader)

    new_leader = wait_for(
        lambda: (lambda found: found if found and found != leader else None)(
            cluster.leader(survivor)
        ),
        timeout=15,
        what="a new leader",
    )
    assert new_leader != leader
    wait_for(
        lambda: any(
            float(r["instant"]) > killed_at + 6 and r["status"] == "succeeded"
            for r in runs_of(cluster, job_id, survivor)
        ),
        timeout=30,
        what="runs after the failover",
    )
    runs = runs_of(cluster, job_id, survivor)
    window = tick_window(runs, killed_at - 3, killed_at + 6)
    instants = [float(r["instant"]) for r in window]
    assert len(instants) == len(set(instants)), "a tick ran twice"
    expected = {float(t) for t in range(int(killed_at - 3) + 1, int(killed_at + 6) + 1)}
    assert set(instants) >= expected - {killed_at + 6}, (
        f"missed ticks: {sorted(expected - set(instants))}"
    )
    assert {r["status"] for r in window} <= {"succeeded", "lost", "planned", "running"}


# Each execution appends "<run id> <node> <time>" to a file every node's jobs can write:
# what really ran, whatever Odin recorded.
LEDGER_JOB = """\
import os, time
line = f"{os.environ['ODIN_RUN_ID']} {os.environ['ODIN_NODE']} {time.time():.3f}\\n"
fd = os.open(os.environ["LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
os.write(fd, line.encode())
"""


def executions(ledger: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in ledger.read_text().splitlines() if line)


def test_every_tick_runs_exactly_once_when_the_leader_dies_and_returns(
    cluster: Cluster, world_dir: Path
) -> None:
    """Counting every tick in the window, whoever planned it: the dead leader's runs that
    were due after its lease are moved and run elsewhere; the ones it might have started
    wait for it (delivery: at-most-once) and run once it is back."""
    home = user_dir(world_dir, ALICE)
    ledger = world_dir / "ledger"
    ledger.touch()
    os.chmod(ledger, 0o666)
    jobs = [
        deploy(
            cluster,
            write_job(
                home, f"tick{i}", LEDGER_JOB, schedule="every 1 second",
                extra=f"  catchup: all\n  env:\n    LEDGER: {ledger}\n",
            ),
        )
        for i in range(3)
    ]  # fmt: skip
    wait_for(lambda: len(executions(ledger)) >= 9, what="ticks before the kill")
    leader = cluster.leader("master-node")
    assert leader is not None
    survivor = next(n for n in ("master-node", "worker1", "worker2") if n != leader)
    killed_at = time.time()
    cluster.kill(leader)
    time.sleep(6)
    cluster.restart(leader)
    end = killed_at + 8
    wait_for(
        lambda: all(
            any(float(r["instant"]) > end and r["status"] == "succeeded"
                for r in runs_of(cluster, job, survivor))
            for job in jobs
        ),
        timeout=60,
        what="runs after the restart",
    )  # fmt: skip
    ran = executions(ledger)
    for job in jobs:
        ticks = {run_id(job, float(t)) for t in range(int(killed_at) - 2, int(end))}
        lost = sorted(t for t in ticks if ran[t] == 0)
        doubled = sorted(t for t in ticks if ran[t] > 1)
        assert not lost and not doubled, f"lost {lost}, doubled {doubled}"
    elsewhere = [
        float(line.split()[2])
        for line in ledger.read_text().splitlines()
        if line.split()[1] != leader and float(line.split()[2]) > killed_at
    ]
    assert elsewhere and min(elsewhere) - killed_at < 3.0, "no run started elsewhere in time"


def test_a_deploy_through_a_follower_outlives_a_frozen_leader(
    cluster: Cluster, world_dir: Path
) -> None:
    """The leader stops answering while a follower forwards a deploy to it: the
    follower waits for the next leader and sends the deploy again. It succeeds,
    once (version 1), and every node lists it."""
    home = user_dir(world_dir, ALICE)
    leader = wait_for(lambda: cluster.leader("master-node"), what="a leader")
    via = next(n for n in ("master-node", "worker1", "worker2") if n != leader)
    path = write_job(home, "frozen", "print('f')\n")
    cluster.signal(leader, signal.SIGSTOP)
    try:
        result = odin(
            "deploy", "-f", str(path), "-p", cluster.port_of(via),
            engine=cluster.primary, user=ALICE, check=False, timeout=60,
        )  # fmt: skip
    finally:
        cluster.signal(leader, signal.SIGCONT)
    # Nothing commits while the leader is frozen: success means a new leader took the deploy.
    assert result.returncode == 0, result.stderr
    job_id = job_id_of(path)
    for name in ("master-node", "worker1", "worker2"):
        described = wait_for(
            lambda name=name: (lambda r: r if r.returncode == 0 else None)(odin(
                "describe", "-i", job_id, "-o", "json", "-p", cluster.port_of(name),
                engine=cluster.primary, user=ALICE, check=False,
            )),
            what=f"the job on {name}",
        )  # fmt: skip
        assert described.json()["version"] == 1


SLOW_ON_WORKER1 = """\
import os, time
if os.environ.get("ODIN_NODE") == "worker1":
    time.sleep(120)
print("ran on", os.environ.get("ODIN_NODE"))
"""


def test_follower_kill_loses_its_run_and_the_retry_runs_elsewhere(
    cluster: Cluster, world_dir: Path
) -> None:
    home = user_dir(world_dir, ALICE)
    job_id = deploy(cluster, write_job(home, "slow", SLOW_ON_WORKER1, extra="  retries: 1\n"))
    odin("run", "-i", job_id, "-p", cluster.port_of("worker1"), engine=cluster.primary, user=ALICE)
    wait_for(
        lambda: any(
            r["status"] == "running" and r["node"] == "worker1" for r in runs_of(cluster, job_id)
        ),
        what="the run on worker1",
    )
    cluster.kill("worker1")

    def settled() -> list[dict[str, Any]] | None:
        runs = runs_of(cluster, job_id)
        return runs if any(r["status"] == "succeeded" for r in runs) else None

    runs = wait_for(settled, timeout=60, what="the lost run and its retry")
    by_attempt = sorted(runs, key=lambda r: r["attempt"])
    assert by_attempt[0]["status"] == "lost" and by_attempt[0]["node"] == "worker1"
    assert by_attempt[1]["status"] == "succeeded" and by_attempt[1]["node"] != "worker1"
    assert by_attempt[1]["reason"] == "retry"


def test_a_run_marked_lost_gets_its_true_end_when_its_node_is_back(
    cluster: Cluster, world_dir: Path
) -> None:
    """worker1 freezes while its run goes on: the leader marks the run lost once worker1 has
    been silent for NODE_LEASE_S; thawed, worker1 reports how the run really ended, and the
    history says so instead of lost."""
    home = user_dir(world_dir, ALICE)
    job_id = deploy(
        cluster, write_job(home, "steady", "import time\ntime.sleep(3)\nprint('done')\n")
    )
    odin("run", "-i", job_id, "-p", cluster.port_of("worker1"), engine=cluster.primary, user=ALICE)
    wait_for(
        lambda: any(r["status"] == "running" for r in runs_of(cluster, job_id)),
        what="the run going on worker1",
    )
    cluster.signal("worker1", signal.SIGSTOP)
    try:
        lost = wait_for(
            lambda: [r for r in runs_of(cluster, job_id) if r["status"] == "lost"],
            timeout=30,
            what="the leader to mark the run lost",
        )
        assert "worker1" in lost[0]["message"], lost
    finally:
        cluster.signal("worker1", signal.SIGCONT)
    [run] = wait_for(
        lambda: [r for r in runs_of(cluster, job_id) if r["status"] == "succeeded"],
        timeout=30,
        what="worker1's own report of the run",
    )
    assert run["node"] == "worker1" and run["exit_code"] == 0
    assert "after it was marked lost" in run["message"], run
    assert len(runs_of(cluster, job_id)) == 1  # the same run, not a second one


def test_restart_of_every_node_loses_nothing(cluster: Cluster, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    ids = [
        deploy(cluster, write_job(home, f"keep{i}", "print(1)\n"), via=via)
        for i, via in enumerate(["master-node", "worker1", "worker2", "worker1"])
    ]
    odin(
        "link",
        "-f",
        ids[0],
        "-t",
        ids[1],
        "-p",
        cluster.port_of("worker2"),
        engine=cluster.primary,
        user=ALICE,
    )
    for name in ("worker1", "worker2", "master-node"):
        cluster.kill(name)
    for name in ("master-node", "worker1", "worker2"):
        cluster.restart(name, wait=False)
    for via in ("master-node", "worker1", "worker2"):
        wait_for(
            lambda via=via: (
                odin(
                    "list", "-p", cluster.port_of(via), engine=cluster.primary, check=False
                ).returncode
                == 0
            ),
            timeout=60,
            what=f"{via} back",
        )
        jobs = odin(
            "list", "-o", "json", "-p", cluster.port_of(via), engine=cluster.primary, user=ALICE
        ).json()
        assert sorted(j["id"] for j in jobs) == sorted(ids)
        links = {j["id"]: j["links"] for j in jobs}
        assert links[ids[0]] == {ids[1]: "success"}


def test_five_nodes_work_with_two_down(world_dir: Path) -> None:
    primary = Engine(root=world_dir).start()
    cluster = Cluster(primary)
    try:
        for name in ("worker1", "worker2", "worker3", "worker4"):
            cluster.add(name)
        leader = cluster.leader("master-node")
        followers = [
            n for n in ("master-node", "worker1", "worker2", "worker3", "worker4") if n != leader
        ]
        for name in followers[:2]:
            cluster.kill(name)
        via = followers[2]
        home = user_dir(world_dir, ALICE)
        job_id = deploy(cluster, write_job(home, "five", "print('five')\n"), via=via)
        odin("run", "-i", job_id, "-p", cluster.port_of(via), engine=primary, user=ALICE)
        wait_for(
            lambda: any(r["status"] == "succeeded" for r in runs_of(cluster, job_id, via)),
            what="a run with two nodes down",
        )
    finally:
        cluster.stop_all()


def test_minority_plans_nothing(cluster: Cluster, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    job_id = deploy(
        cluster,
        write_job(
            home, "quorum", "print('q')\n", schedule="every 1 second", extra="  catchup: none\n"
        ),
    )
    wait_for(lambda: len(runs_of(cluster, job_id)) >= 3, what="ticks")
    leader = cluster.leader("master-node")
    assert leader is not None
    others = [n for n in ("master-node", "worker1", "worker2") if n != leader]
    pids = [
        cluster.members[n].pid() if n != "master-node" else cluster.primary.proc.pid  # type: ignore[union-attr]
        for n in others
    ]
    stopped_at = time.time()
    for pid in pids:
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(9)  # the minority side is left alone for a while: what it does is the test
    finally:
        resumed_at = time.time()
        for pid in pids:
            os.kill(pid, signal.SIGCONT)  # type: ignore[arg-type]
    wait_for(lambda: cluster.leader(others[0]) is not None, timeout=20, what="a leader again")
    wait_for(
        lambda: any(
            float(r["instant"]) > resumed_at + 1 for r in runs_of(cluster, job_id, others[0])
        ),
        timeout=20,
        what="runs after the partition heals",
    )
    runs = runs_of(cluster, job_id, others[0])
    # The lone leader loses its quorum: nothing it planned for the middle of the window ran.
    # (The window ends before resumed_at minus the planner's late tolerance, 2 s: a tick that
    # recent when a leader is back is still planned on time, by the majority.)
    middle = tick_window(runs, stopped_at + 3, resumed_at - 3)
    assert all(r["status"] == "skipped" and r["started_at"] is None for r in middle), middle
    instants = [float(r["instant"]) for r in runs]
    assert len(instants) == len(set(instants))


def test_node_tags_and_removal(cluster: Cluster, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    pinned = deploy(
        cluster,
        write_job(
            home, "pinned", "print('p')\n", schedule="every 1 second", extra="  nodes: [worker2]\n"
        ),
    )
    wait_for(
        lambda: len([r for r in runs_of(cluster, pinned) if r["status"] == "succeeded"]) >= 3,
        what="pinned runs",
    )
    assert {r["node"] for r in runs_of(cluster, pinned) if r["status"] == "succeeded"} == {
        "worker2"
    }
    odin("rm", "-i", pinned, engine=cluster.primary, user=ALICE)

    leader = cluster.leader("master-node")
    assert leader is not None
    via = next(n for n in ("master-node", "worker1", "worker2") if n != leader)
    refused = odin(
        "nodes",
        "remove",
        "-n",
        via,
        "-p",
        cluster.port_of(via),
        engine=cluster.primary,
        check=False,
    )
    assert refused.returncode == 5 and "--port" in refused.stderr
    odin(
        "nodes",
        "remove",
        "-n",
        leader,
        "-p",
        cluster.port_of(via),
        engine=cluster.primary,
        timeout=120,
    )
    rows = cluster.nodes(via)
    assert sorted(r["name"] for r in rows) == sorted(
        n for n in ("master-node", "worker1", "worker2") if n != leader
    )
    assert [r["role"] for r in rows].count("leader") == 1
    job_id = deploy(cluster, write_job(home, "after", "print('after')\n"), via=via)
    odin("run", "-i", job_id, "-p", cluster.port_of(via), engine=cluster.primary, user=ALICE)
    wait_for(
        lambda: any(r["status"] == "succeeded" for r in runs_of(cluster, job_id, via)),
        what="a run after the leader was removed",
    )
    assert (
        odin("list", "-p", cluster.port_of(leader), engine=cluster.primary, check=False).returncode
        == 7
    )
