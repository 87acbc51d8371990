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

LAST_LOOK_S = 10.0
"""How long the last look at the jobs not finished by then may take (a slow engine)."""

FINISHED = {"succeeded", "failed", "timed_out", "skipped", "lost", "cancelled"}


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _runs_in(engine: Engine, job: JobDef, begin: float, end: float) -> dict[float, dict[str, Any]]:
    return {r["instant"]: r for r in runs_of(engine, job.jid) if begin <= r["instant"] < end}


class _Collector:
    """Reads back each job's runs until every expected tick has finished (once per job)."""

    def __init__(
        self, engine: Engine, jobs: Sequence[JobDef], begin: float, end: float, deadline: float
    ) -> None:
        self.engine, self.begin, self.end, self.deadline = engine, begin, end, deadline
        self.expected = {job.jid: instants(job, begin, end) for job in jobs}
        self.pending = {job.jid: job for job in jobs}
        self.runs: dict[str, dict[float, dict[str, Any]]] = {}

    def poll(self) -> bool:
        for jid, job in list(self.pending.items()):
            if time.monotonic() > self.deadline:
                return False  # an engine this slow to answer is not keeping up
            runs = _runs_in(self.engine, job, self.begin, self.end)
            self.runs[jid] = runs
            if all(runs.get(t, {}).get("status") in FINISHED for t in self.expected[jid]):
                del self.pending[jid]
            else:
                break  # the others are no further along: look again later
        return not self.pending

    def samples(self) -> list[Sample]:
        found: list[Sample] = []
        for jid, ticks in self.expected.items():
            runs = self.runs.get(jid, {})
            found += [_sample(runs[t]) for t in ticks if t in runs]
        return found


def _sample(run: dict[str, Any]) -> Sample:
    return Sample(run["instant"], run.get("started_at"), first_line_time(run["output_tail"] or ""))


def run_odin(
    engine: Engine,
    jobs: Sequence[JobDef],
    duration: float,
    label: str = "Odin",
    settle_s: float = SETTLE_S,
    clean_up_if_slow: bool = True,
) -> Outcome:
    """Deploy ``jobs``, let them fire for ``duration`` s, collect every launch, remove them.

    An engine that stops answering (or answers too slowly to read every job back
    within ``settle_s``) while it is read back or cleaned up does not abort the
    benchmark: what was read counts, the rest counts as missed. A caller that
    drops the engine after a level it could not keep up with passes
    ``clean_up_if_slow=False``: removing the jobs from an engine that far behind
    takes minutes and measures nothing.
    """
    deploy(engine, jobs)
    begin, end = window(time.time() + LEAD_S, duration)
    samples: list[Sample] = []
    expected = sum(len(instants(job, begin, end)) for job in jobs)
    _sleep_until(begin)
    cpu_before = engine.cpu_seconds()
    _sleep_until(end)
    cpu = engine.cpu_seconds() - cpu_before
    collector = _Collector(engine, jobs, begin, end, time.monotonic() + settle_s)
    try:
        with contextlib.suppress(BenchError):  # a missed run is a figure, not a bench failure
            wait_for(collector.poll, settle_s, "runs", 0.5)
        unread = False  # jobs not even read back: their ticks count as missed
        for job in list(collector.pending.values()):  # what the last look did not reach
            if time.monotonic() > collector.deadline + LAST_LOOK_S:
                unread = True
                break
            collector.runs[job.jid] = _runs_in(engine, job, begin, end)
        samples = collector.samples()
        if clean_up_if_slow or not unread:
            remove(engine, [job.jid for job in jobs])
    except OdinError as error:
        print(f"  {label}: the engine did not answer ({error}); {len(samples)} runs read")
    return Outcome(label, tuple(samples), expected, cpu)
