"""Odin running a workload: deploy the firing jobs, wait out a window, read the runs back.

The lags come from the runs the engine reports (``started_at`` for dispatch)
and from each run's own output (``T <time>``, printed by the job) for start.
The engine's CPU time over the window is taken from ``/proc`` (children
excluded). The firing jobs are removed afterwards, so the next workload starts
from the same deployed load.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from bench.harness import BenchError, Engine, JobDef, deploy, remove, runs_of, wait_for
from bench.workload import Outcome, Sample, first_line_time, instants, window
from odin.errors import OdinError

LEAD_S = 2.5
"""How long after the deploy the window opens (runs are planned 1 s ahead)."""

SETTLE_S = 60.0
"""How long after the window the runs may take to finish before they count as missed."""

FINISHED = {"succeeded", "failed", "timed_out", "skipped", "lost", "cancelled"}


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _runs_in(engine: Engine, job: JobDef, begin: float, end: float) -> dict[float, dict[str, Any]]:
    return {r["instant"]: r for r in runs_of(engine, job.jid) if begin <= r["instant"] < end}


def _all_finished(engine: Engine, jobs: Sequence[JobDef], begin: float, end: float) -> bool:
    for job in jobs:
        expected = instants(job, begin, end)
        runs = _runs_in(engine, job, begin, end)
        if any(runs.get(t, {}).get("status") not in FINISHED for t in expected):
            return False
    return True


def _sample(run: dict[str, Any]) -> Sample:
    return Sample(run["instant"], run.get("started_at"), first_line_time(run["output_tail"] or ""))


def run_odin(
    engine: Engine,
    jobs: Sequence[JobDef],
    duration: float,
    label: str = "Odin",
    settle_s: float = SETTLE_S,
) -> Outcome:
    """Deploy ``jobs``, let them fire for ``duration`` s, collect every launch, remove them.

    An engine that stops answering while it is read back or cleaned up does not
    abort the benchmark: what was read counts, the rest counts as missed.
    """
    deploy(engine, jobs)
    begin, end = window(time.time() + LEAD_S, duration)
    samples: list[Sample] = []
    expected = sum(len(instants(job, begin, end)) for job in jobs)
    _sleep_until(begin)
    cpu_before = engine.cpu_seconds()
    _sleep_until(end)
    cpu = engine.cpu_seconds() - cpu_before
    try:
        with contextlib.suppress(BenchError):  # a missed run is a figure, not a bench failure
            wait_for(lambda: _all_finished(engine, jobs, begin, end), settle_s, "runs", 0.5)
        for job in jobs:
            runs = _runs_in(engine, job, begin, end)
            samples += [_sample(runs[t]) for t in instants(job, begin, end) if t in runs]
        remove(engine, [job.jid for job in jobs])
    except OdinError as error:
        print(f"  {label}: the engine did not answer ({error}); {len(samples)} runs read")
    return Outcome(label, tuple(samples), expected, cpu)
