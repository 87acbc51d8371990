"""Alerts: the time from a run's end to the first delivery attempt, one node and three.

J jobs fire every second and fail on odd seconds, so every run ends a streak or
starts one: each failure makes a ``failure`` alert and each success after it a
``recovery`` alert, to a webhook receiver in this process (a real HTTP server on
loopback). The receiver notes when each first attempt arrives, by its
idempotency key (``<run id>:<event>``); the run's end is its ``finished_at`` as
the node that ran it recorded it (every node runs on this machine, one clock).
On three nodes the runs are placed on every node and the leader delivers. Every
alert the window's runs made must arrive: the figure counts all of them, and
the number that did not arrive is reported beside it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.common import Figure, skipped
from bench.harness import BenchError, Engine, JobDef, deploy, engines, free_port, job_id, runs_of
from bench.workload import percentile

ALTERNATING = (
    "import os, sys\n"
    "label = os.environ['ODIN_RUN_ID'].split('@', 1)[1]\n"
    "sys.exit(int(label[17:19]) % 2)  # the tick's seconds: odd fails\n"
)
FULL = (20, 30.0)
QUICK = (4, 8.0)
GROUP = 0xA1
GOAL_P99_S = 1.0


class Arrivals:
    """A webhook receiver that keeps the first arrival of each idempotency key."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.lock = threading.Lock()

    def note(self, key: str) -> None:
        now = time.time()
        with self.lock:
            self.first.setdefault(key, now)


@contextmanager
def receiver() -> Iterator[tuple[Arrivals, str]]:
    arrivals, port = Arrivals(), free_port()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            arrivals.note(self.headers.get("Idempotency-Key", ""))
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield arrivals, f"http://127.0.0.1:{port}/hook"
    finally:
        server.shutdown()
        server.server_close()


def run(quick: bool = False) -> list[Figure]:
    jobs, window = QUICK if quick else FULL
    figures: list[Figure] = []
    for count in (1, 3):
        label = "one node" if count == 1 else "three nodes"
        try:
            with engines(count, f"alerts{count}") as nodes, receiver() as (arrivals, url):
                figures += _measure(nodes[0], arrivals, url, jobs, window, label)
        except BenchError as error:
            name = f"alerts, {label}: run end to first delivery attempt, p99"
            figures.append(skipped(name, "s", f"<= {GOAL_P99_S:.0f} s", str(error)))
    return figures


def _measure(
    engine: Engine, arrivals: Arrivals, url: str, jobs: int, window: float, label: str
) -> list[Figure]:
    notify = f"  notify:\n    - to: {url}\n      on: [failure, recovery]\n"
    defs = [
        JobDef(job_id(GROUP, i), f"alerting{i}", "every second", ALTERNATING, extra=notify)
        for i in range(jobs)
    ]
    deploy(engine, defs)
    began = time.time()
    time.sleep(window)
    for job in defs:  # stop the ticks, then let the last alerts go
        engine.client().request("PATCH", f"/v1/jobs/{job.jid}", {"paused": True})
    time.sleep(3.0)
    waits: list[float] = []
    made = 0
    for job in defs:
        for run in runs_of(engine, job.jid):
            if run["finished_at"] is None or run["instant"] < began + 2:
                continue  # the first ticks: no streak to end yet
            if run["status"] not in ("succeeded", "failed"):
                continue
            made += 1
            event = "recovery" if run["status"] == "succeeded" else "failure"
            arrived = arrivals.first.get(f"{run['id']}:{event}")
            if arrived is not None:
                waits.append(arrived - run["finished_at"])
    missing = made - len(waits)
    p50, p99 = percentile(waits, 0.5), percentile(waits, 0.99)
    note = (
        f"{len(waits)} alerts of {made} expected ({missing} did not arrive); "
        f"{jobs} jobs every second, {window:.0f} s"
    )
    worst = max(waits) if waits else math.nan
    return [
        Figure(f"alerts, {label}: run end to first delivery attempt, p50", p50, "s", note=note),
        Figure(
            f"alerts, {label}: run end to first delivery attempt, p99",
            p99,
            "s",
            f"<= {GOAL_P99_S:.0f} s",
            f"max {worst:.3f} s",
            met=(p99 <= GOAL_P99_S and missing == 0) if waits else None,
        ),
        Figure(
            f"alerts, {label}: alerts that did not arrive",
            float(missing),
            "alerts",
            "0",
            met=missing == 0,
        ),
    ]
