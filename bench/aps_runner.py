"""APScheduler 3.x running the same workload, each run a subprocess.

A ``BackgroundScheduler`` with a thread pool large enough for the biggest burst
(the same concurrency as Odin and the bare loop: no limit in practice). Each run
is a job with a ``DateTrigger`` at its instant, so the job knows which instant
it serves; the run spawns the program with ``subprocess.Popen`` and reads its
output to the end, like a typical APScheduler user would.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections import Counter
from collections.abc import Sequence

from bench.harness import BenchError, JobDef
from bench.workload import Outcome, Programs, Sample, first_line_time, instants, job_env

MIN_WORKERS = 32


def _launch(argv: Sequence[str], instant: float, env: dict[str, str], out: list[Sample]) -> None:
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    started = time.time()
    data, _ = proc.communicate()
    out.append(Sample(instant, started, first_line_time(data.decode(errors="replace"))))


def run_aps(jobs: Sequence[JobDef], begin: float, end: float, programs: Programs) -> Outcome:
    """Launch ``jobs`` at their instants in [begin, end) with APScheduler; every launch."""
    try:
        from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
        from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
            BackgroundScheduler,
        )
    except ImportError as error:
        raise BenchError(
            "APScheduler 3.x is not installed (pip install 'apscheduler<4')"
        ) from error
    plan = [(programs.argv(job), t) for job in jobs for t in instants(job, begin, end)]
    widest = max(Counter(t for _, t in plan).values(), default=1)
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max(MIN_WORKERS, 2 * widest))},
        job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
        timezone=dt.UTC,
    )
    samples: list[Sample] = []
    env = job_env()
    for argv, instant in plan:
        when = dt.datetime.fromtimestamp(instant, dt.UTC)
        scheduler.add_job(_launch, "date", run_date=when, args=(argv, instant, env, samples))
    scheduler.start()
    try:
        time.sleep(max(0.0, end - time.time()))
        deadline = time.monotonic() + 60
        while len(samples) < len(plan) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        scheduler.shutdown(wait=True)
    return Outcome("APScheduler", tuple(samples), len(plan))
