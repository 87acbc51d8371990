"""Load on a 3-node cluster: many concurrent CLI clients, no errors, no lost writes (needs root).

``ODIN_LOAD_CLIENTS`` (default 100) clients run the real CLI as Alice or Bob
for ``ODIN_LOAD_SECONDS`` (default 10; ``make fuzz`` uses 60), spread over the
three nodes, while a job ticks every two seconds. Every deploy that returned
success must then be listed by every node.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine_harness import Engine, free_port, job_id_of, needs_root, odin, user_dir, wait_for
from engine_harness import write_job as write_job_file
from real_users import ALICE, BOB, deploy, finished, kill_pids, pids_with_arg

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root: real users and nodes"),
    pytest.mark.slow,
]

CLIENTS = int(os.environ.get("ODIN_LOAD_CLIENTS", "100"))
SECONDS = float(os.environ.get("ODIN_LOAD_SECONDS", "10"))


@pytest.fixture
def cluster(engine: Engine) -> Iterator[list[str]]:
    """The harness's engine plus two nodes it spawns; yields the three HTTP ports."""
    ports = [str(engine.http_port)]
    try:
        for name in ("worker1", "worker2"):
            http, raft = free_port(), free_port()
            odin("nodes", "add", "-n", name, "-a", f":{http}", "-r", f":{raft}", engine=engine)
            ports.append(str(http))
        rows = odin("nodes", "get", "-o", "json", engine=engine).json()
        assert len(rows) == 3 and all(r["status"] == "healthy" for r in rows), rows
        yield ports
    finally:
        kill_pids(pids_with_arg(str(engine.data_dir / "nodes")))


class Clients:
    """Threads that each run the CLI in a loop and remember what was acknowledged."""

    def __init__(self, homes: dict[str, Path], ports: list[str], engine: Engine) -> None:
        self.homes, self.ports, self.engine = homes, ports, engine
        self.acked: dict[str, set[str]] = {ALICE: set(), BOB: set()}
        self.errors: list[str] = []
        self.calls = 0
        self.lock = threading.Lock()

    def client(self, number: int, deadline: float) -> None:
        user = (ALICE, BOB)[number % 2]
        port = self.ports[number % len(self.ports)]
        step = 0
        while time.monotonic() < deadline:
            if step % 2 == 0:
                path = write_job_file(self.homes[user], f"c{number}-{step}", "print(1)\n")
                args: tuple[str, ...] = ("deploy", "-f", str(path), "-p", port)
            else:
                args = ("list", "-o", "json", "-p", port)
            result = odin(*args, engine=self.engine, user=user, check=False, timeout=120)
            with self.lock:
                self.calls += 1
                if result.returncode != 0:
                    self.errors.append(f"{user} {args}: {result.stderr.strip()[:300]}")
                elif args[0] == "deploy":
                    self.acked[user].add(job_id_of(path))
            step += 1

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=self.client, args=(i, deadline)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 300)


def overlapped(tick: dict[str, Any], ticks: list[dict[str, Any]]) -> bool:
    """A tick rightly skipped under ``overlap: skip``: another tick was running at its instant."""
    return (
        tick["status"] == "skipped"
        and "overlap: skip" in str(tick["message"])
        and any(
            other["started_at"] is not None
            and other["started_at"] <= tick["instant"] < (other["finished_at"] or float("inf"))
            for other in ticks
        )
    )


def test_many_clients_on_three_nodes_lose_no_acknowledged_write(
    engine: Engine, cluster: list[str], world_dir: Path
) -> None:
    homes = {user: user_dir(world_dir / "homes", user) for user in (ALICE, BOB)}
    ticker = write_job_file(homes[ALICE], "ticker", "print('tick')\n", schedule="every 2 seconds")
    deploy(engine, ticker)
    clients = Clients(homes, cluster, engine)
    started = time.monotonic()
    clients.run(SECONDS)
    elapsed = time.monotonic() - started

    assert not clients.errors, f"{len(clients.errors)} errors, first: {clients.errors[:3]}"
    assert sum(len(ids) for ids in clients.acked.values()) >= min(CLIENTS, 20)

    def everywhere() -> bool:
        for port in cluster:
            for user, ids in clients.acked.items():
                listed = odin("list", "-o", "json", "-p", port, engine=engine, user=user).json()
                if not ids <= {j["id"] for j in listed}:
                    return False
        return True

    wait_for(everywhere, timeout=30, interval=0.5, what="every acknowledged deploy on every node")
    ticks = finished(engine, job_id_of(ticker))
    failed = [
        (r["id"], r["status"], r["message"])
        for r in ticks
        if r["status"] != "succeeded" and not overlapped(r, ticks)
    ]
    assert ticks and not failed, failed
    ids = [r["id"] for r in ticks]
    assert len(ids) == len(set(ids))
    print(f"load: {clients.calls} CLI calls by {CLIENTS} clients in {elapsed:.1f} s")
