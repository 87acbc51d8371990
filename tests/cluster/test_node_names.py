"""A job's ``nodes:`` names only members: a deploy naming another node is refused, and a
node that leaves the cluster takes no runs with it: its pending runs are lost, a job pinned
to it alone gets no more runs and says why, a job with another node moves there (real
engines and real users; needs root)."""

from __future__ import annotations

import time
from collections.abc import Iterator
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

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root to run engines and jobs as users"),
    pytest.mark.slow,
]

ALICE = "odin-alice"
ACTIVE = ("planned", "running")


def test_deploy_naming_an_unknown_node_is_refused(engine: Engine, world_dir: Path) -> None:
    """Exit 2 naming the unknown node and listing the members; nothing is deployed or changed."""
    home = user_dir(world_dir, ALICE)
    kept = write_job(home, "kept", "print(1)\n", extra="  nodes: [master-node]\n")
    odin("deploy", "-f", str(kept), engine=engine, user=ALICE)
    kept_id = job_id_of(kept)
    changed = write_job(
        home, "kept", "print(2)\n", job_id=kept_id, extra="  nodes: [master-node, ghost]\n"
    )
    ghost = write_job(
        home, "ghost", "print(3)\n", schedule="every 1 second", extra="  nodes: [ghost]\n"
    )
    for path in (changed, ghost):
        refused = odin("deploy", "-f", str(path), engine=engine, user=ALICE, check=False)
        assert refused.returncode == 2, refused.stderr
        assert "job.nodes names ghost, which is not a node of this cluster" in refused.stderr
        assert "its nodes are master-node" in refused.stderr
    listed = odin("list", "-o", "json", engine=engine, user=ALICE).json()
    assert [j["id"] for j in listed] == [kept_id]
    described = odin("describe", "-i", kept_id, "-o", "json", engine=engine, user=ALICE).json()
    assert (described["nodes"], described["version"]) == (["master-node"], 1)
    assert described["not_planned"] is None


@pytest.fixture
def cluster(world_dir: Path) -> Iterator[Cluster]:
    primary = Engine(root=world_dir).start()
    made = Cluster(primary)
    try:
        made.add("worker1")
        made.add("worker2")
        yield made
    finally:
        made.stop_all()


def runs_of(cluster: Cluster, job_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = odin(
        "log", "-i", job_id, "-o", "json", "-n", "500", engine=cluster.primary, user=ALICE
    ).json()
    return result


def deploy(cluster: Cluster, home: Path, name: str, nodes: str) -> str:
    """Deploy a job ticking every second on ``nodes``; its id."""
    path = write_job(
        home, name, f"print({name!r})\n", schedule="every 1 second", extra=f"  nodes: {nodes}\n"
    )
    odin("deploy", "-f", str(path), engine=cluster.primary, user=ALICE)
    return job_id_of(path)


def active_on(runs: list[dict[str, Any]], node: str) -> list[dict[str, Any]]:
    return [r for r in runs if r["node"] == node and r["status"] in ACTIVE]


def test_a_removed_node_keeps_no_runs(cluster: Cluster, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    pinned = deploy(cluster, home, "pinned", "[worker2]")
    both = deploy(cluster, home, "both", "[worker2, worker1]")
    wait_for(
        lambda: len([r for r in runs_of(cluster, pinned) if r["status"] == "succeeded"]) >= 3,
        what="runs of the pinned job",
    )
    assert {r["node"] for r in runs_of(cluster, pinned) if r["status"] == "succeeded"} == {
        "worker2"
    }

    odin("nodes", "remove", "-n", "worker2", engine=cluster.primary, timeout=120)
    removed_at = time.time()
    pending = {r["id"] for r in active_on(runs_of(cluster, pinned), "worker2")}

    # What worker2 had pending ends (lost, as the runs of an unreachable node are) ...
    def settled() -> list[dict[str, Any]]:
        runs = runs_of(cluster, pinned)
        return [] if active_on(runs, "worker2") else runs

    by_id = {
        r["id"]: r
        for r in wait_for(settled, timeout=20, what="no run left planned or running on worker2")
    }
    for run_id in pending:
        assert by_id[run_id]["status"] == "lost", by_id[run_id]
    # ... and nothing more is planned for a job whose only node has left: the count stays.
    time.sleep(4)
    later = runs_of(cluster, pinned)
    assert {r["id"] for r in later} == set(by_id), "runs were planned after worker2 left"
    assert not [r for r in later if r["status"] in ACTIVE]

    described = odin("describe", "-i", pinned, "-o", "json", engine=cluster.primary, user=ALICE)
    detail = described.json()
    assert detail["next_run"] is None and detail["next_runs"] == []
    assert "worker2" in detail["not_planned"]
    text = odin("describe", "-i", pinned, engine=cluster.primary, user=ALICE).stdout
    assert "(none: none of its nodes (worker2) is a member of the cluster" in text

    # A job that may also run on worker1 goes on there.
    wait_for(
        lambda: [
            r
            for r in runs_of(cluster, both)
            if r["status"] == "succeeded" and float(r["instant"]) > removed_at + 2
        ],
        what="runs of the other job on worker1",
    )
    after = [r for r in runs_of(cluster, both) if float(r["instant"]) > removed_at + 2]
    assert {r["node"] for r in after} == {"worker1"}
