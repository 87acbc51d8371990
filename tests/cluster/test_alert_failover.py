"""Alerts on a 3-node cluster of real engines: a node down past the grace gives one
``missed`` alert per missed tick, and a leader killed before an alert was delivered
leaves it to the next leader, which delivers it once (needs root)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine_harness import (
    Cluster,
    free_port,
    job_id_of,
    needs_root,
    odin,
    user_dir,
    wait_for,
    write_job,
)
from receivers import Receiver

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root to run engines and jobs as users"),
    pytest.mark.slow,
]

ALICE = "odin-alice"


def cli(cluster: Cluster, via: str, *args: str, check: bool = True) -> Any:
    result = odin(
        *args, "-p", cluster.port_of(via), engine=cluster.primary, user=ALICE, check=check
    )
    return result


def deploy(cluster: Cluster, world_dir: Path, name: str, code: str, extra: str, **kw: str) -> str:
    home = user_dir(world_dir, ALICE)
    path = write_job(home, name, code, extra=extra, **kw)
    cli(cluster, "master-node", "deploy", "-f", str(path))
    return job_id_of(path)


def alerts(cluster: Cluster, via: str, job_id: str) -> list[dict[str, Any]]:
    result = cli(cluster, via, "alerts", "-i", job_id, "-o", "json", check=False)
    return list(result.json()) if result.returncode == 0 else []


def test_a_node_down_past_the_grace_gives_one_missed_alert_per_tick(
    cluster: Cluster, world_dir: Path
) -> None:
    receiver = Receiver(free_port()).start()
    try:
        extra = (
            "  nodes: [worker1]\n  grace: 2s\n"
            f"  notify:\n    - to: {receiver.url}\n      on: [missed]\n"
        )
        job_id = deploy(
            cluster, world_dir, "pinned", "print('hi')\n", extra, schedule="every 5 seconds"
        )
        cluster.kill("worker1")
        wait_for(lambda: receiver.got, timeout=40, what="a missed alert")
        cli(cluster, "master-node", "modify", "-i", job_id, "--pause")
        time.sleep(4.0)  # the watch passes every second: a repeat would come now
        keys = Counter(receiver.keys())
        assert keys and all(key.endswith(":missed") for key in keys)
        assert set(keys.values()) == {1}, keys  # each missed tick told once
        assert all(r.json()["event"] == "missed" for r in receiver.got)
        listed = alerts(cluster, "master-node", job_id)
        assert Counter(a["key"] for a in listed) == keys
    finally:
        receiver.stop()


def test_a_leader_killed_before_delivery_leaves_one_delivery_to_the_next(
    cluster: Cluster, world_dir: Path
) -> None:
    assert cluster.leader("worker1") == "master-node"
    port = free_port()  # nothing listens there yet: every attempt is refused
    extra = (
        f"  nodes: [worker1]\n  notify:\n    - to: http://127.0.0.1:{port}/hook\n"
        "      on: [failure]\n"
    )
    job_id = deploy(cluster, world_dir, "failing", "import sys\nsys.exit(1)\n", extra)
    cli(cluster, "worker1", "run", "-i", job_id)
    wait_for(
        lambda: [a for a in alerts(cluster, "worker1", job_id) if a["attempts"] >= 1],
        timeout=30,
        what="a first, refused attempt",
    )
    cluster.kill("master-node")
    receiver = Receiver(port).start()
    try:
        wait_for(lambda: receiver.got, timeout=60, what="the delivery by the next leader")
        time.sleep(3.0)
        (alert,) = wait_for(
            lambda: [a for a in alerts(cluster, "worker1", job_id) if a["state"] == "sent"],
            timeout=30,
            what="the delivery recorded",
        )
        assert receiver.keys() == [alert["key"]]  # delivered once, with its key
        assert alert["key"].endswith(":failure") and alert["attempts"] >= 2
        assert cluster.leader("worker1") in ("worker1", "worker2")
    finally:
        receiver.stop()
