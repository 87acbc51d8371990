"""How long one ``GET /metrics`` takes to render with 10,000 jobs and their recent runs.

The renderer is written by hand (``odin.dashboard.metrics``). ``prometheus_client``
(a collector building its metric families per scrape) was measured here too, at
1.3–2.0 s a full scrape in the text format and 2.2–3.1 s in OpenMetrics against
0.5 s for the hand-written text, and dropped (``bench/limits.md``).

The state is what the endpoint reads on an engine holding 10,000 jobs of 100 owners,
each with its replicated window of runs (``RUNS_KEPT_IN_STATE_PER_JOB``, mostly
succeeded, some failed or timed out) and two ``watch`` series: the run counters and
histograms seeded from those runs, the jobs, the last value of each watch series and
the node's facts. A scrape is timed from those inputs to the exposition bytes, in the
Prometheus text format and in OpenMetrics, for the token holder (every series) and
for a member (the series of one owner's jobs); reading the inputs from the node is
the same in both and left out. The state stays on the heap and the cycle collector is
tuned as the engine does it. The figure is the median of ``N`` scrapes.
``python -m bench.bench_metrics_scrape [--jobs J] [-n N]``.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.common import Figure
from odin import config
from odin.cluster.model import Job, Record, Run, RunReason, RunStatus
from odin.dashboard import metrics as m
from odin.engine.loopwatch import Stalls
from odin.jobs.language import Language

OWNERS = 100
FIRST_UID = 1000
WATCHES = ("rows", 'say "hi"\\ok')  # one plain series name, one that needs escaping


def _job(i: int) -> Job:
    uid = FIRST_UID + i % OWNERS
    return Job(
        id=f"{i:012x}",
        owner_uid=uid,
        owner_gid=uid,
        owner=f"user{uid}",
        name=f"job-{i}" if i % 10 else f'job "{i}"\n\\odd',
        description="",
        language=Language.PYTHON,
        filename="job.py",
        schedule="every 1 minute",
        timezone="UTC",
        code="print(1)\n",
        yaml="",
        code_sha="0" * 64,
    )


def _runs(job: Job, rng: random.Random) -> list[Run]:
    runs = []
    for k in range(config.RUNS_KEPT_IN_STATE_PER_JOB):
        instant = 1_700_000_000.0 + 60.0 * k
        started = instant + rng.uniform(0.0, 0.2)
        roll = rng.random()
        status = (
            RunStatus.SUCCEEDED
            if roll < 0.9
            else RunStatus.FAILED
            if roll < 0.98
            else RunStatus.TIMED_OUT
        )
        records = tuple(
            Record(seq=n, ts=started + n, type="watch", desc=desc, value=rng.randint(0, 10**6))
            for n, desc in enumerate(WATCHES, start=1)
        )
        runs.append(
            Run(
                id=f"{job.id}@{instant}",
                job_id=job.id,
                owner_uid=job.owner_uid,
                instant=instant,
                reason=RunReason.SCHEDULE,
                node="n1",
                planned_at=instant - 1.0,
                status=status,
                started_at=started,
                finished_at=started + rng.expovariate(1 / 5.0),
                records=records,
            )
        )
    return runs


def _watches(runs: list[Run]) -> dict[m.WatchKey, float]:
    """The last numeric value of each watch series, as ``odin.dashboard.app._watches`` does."""
    latest: dict[m.WatchKey, tuple[float, float]] = {}
    for run in sorted(runs, key=lambda r: r.instant):
        for record in run.records:
            key = (run.job_id, run.owner_uid, record.desc)
            if key not in latest or latest[key][0] <= record.ts:
                latest[key] = (record.ts, float(record.value))
    return {key: value for key, (_ts, value) in latest.items()}


def state(jobs: int, seed: int = 23) -> dict[str, Any]:
    """The endpoint's inputs for ``jobs`` jobs and their replicated runs."""
    rng = random.Random(seed)
    all_jobs = [_job(i) for i in range(jobs)]
    runs = [run for job in all_jobs for run in _runs(job, rng)]
    metrics = m.RunMetrics()
    metrics.seed(runs)
    bounds = config.LOOP_STALL_BUCKETS
    stalls = Stalls(
        worst_s=0.012,
        recent_s=0.004,
        window_s=config.LOOP_WATCH_WINDOW_S,
        bounds=bounds,
        counts=tuple(1000 + 10 * i for i in range(len(bounds))),
        wakes=1000 + 10 * len(bounds),
        total_s=3.25,
        peaks=(),
    )
    cluster = m.ClusterFacts(
        node="n1",
        is_leader=True,
        members=("127.0.0.1:12000", "127.0.0.1:12001", "127.0.0.1:12002"),
        raft={"leader": "127.0.0.1:12000", "commit_index": 123456, "last_applied": 123456},
        running=12,
        stalls=stalls,
    )
    return {
        "metrics": metrics,
        "jobs": {job.id: job for job in all_jobs},
        "watches": _watches(runs),
        "cluster": cluster,
        "runs": runs,  # not read by a scrape, but on the engine's heap as in the engine
    }


def tune_gc() -> None:
    """The engine's cycle collector settings (``odin.daemon``): its state frozen, fewer passes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*config.GC_THRESHOLDS)


OPENMETRICS = (  # what Prometheus sends, preferring OpenMetrics
    "application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
PROMETHEUS = "text/plain;version=0.0.4"


def scrape(inputs: dict[str, Any], visible: Callable[[int], bool], accept: str) -> bytes:
    """One exposition, as the endpoint answers a scraper sending ``accept``."""
    body, content_type = m.exposition(
        inputs["metrics"], inputs["jobs"], inputs["watches"], inputs["cluster"], visible, accept
    )
    assert (content_type == m.OPENMETRICS_FORMAT) == (accept == OPENMETRICS), content_type
    return body


def timed(
    inputs: dict[str, Any], visible: Callable[[int], bool], accept: str, n: int
) -> tuple[float, int]:
    """The median seconds of ``n`` scrapes, and the size of one."""
    times = []
    size = 0
    for _ in range(n):
        began = time.perf_counter()
        size = len(scrape(inputs, visible, accept))
        times.append(time.perf_counter() - began)
    return statistics.median(times), size


def run(quick: bool = False, jobs: int = 10_000, n: int = 7) -> list[Figure]:
    jobs, n = (1000, 3) if quick else (jobs, n)
    inputs = state(jobs)
    tune_gc()
    figures = []
    for who, visible in (
        ("token holder", lambda _uid: True),
        ("member", lambda uid: uid == FIRST_UID),
    ):
        for form, accept in (("Prometheus text", PROMETHEUS), ("OpenMetrics", OPENMETRICS)):
            seconds, size = timed(inputs, visible, accept, n)
            figures.append(
                Figure(
                    f"/metrics render, {jobs} jobs, {who}, {form}",
                    seconds * 1e3,
                    "ms",
                    note=f"median of {n}; {size / 1e6:.1f} MB",
                )
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("-n", type=int, default=7, help="scrapes timed (the median is shown)")
    args = parser.parse_args()
    for figure in run(jobs=args.jobs, n=args.n):
        print(figure.row())


if __name__ == "__main__":
    main()
