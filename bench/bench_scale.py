"""Lag at 1, 1,000 and 10,000 deployed jobs, memory, and CLI latency, on one node.

One engine is grown step by step: the deployed load is ``schedule: never``
jobs (they count as deployed, they do not fire), and at each load a small set
of firing jobs is deployed, measured and removed: *spread* (one launch per
second, each at its own instant) and *burst* (many jobs sharing one instant).
The bare loop and APScheduler run the same two patterns once, for comparison.
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import plots
from bench.aps_runner import run_aps
from bench.bare_loop import run_bare
from bench.common import Figure
from bench.harness import Engine, JobDef, deploy, engines, job_id, job_yaml, odin_cli
from bench.odin_runner import run_odin
from bench.workload import (
    PY_CODE,
    Outcome,
    Programs,
    burst_jobs,
    dispatch_lags,
    spread_jobs,
    start_lags,
    stats,
    window,
)

HUGE = 100_000
HUGE_DEPLOY_BUDGET_S = 270.0
"""The full run stops deploying towards HUGE after this long (the note gives the count)."""
HUGE_LISTS = 3
"""``odin list`` at HUGE jobs is timed this many times and the median reported, as at 100."""

LOAD_GROUP = 0x01
CLI_GROUP = 0x02
Pattern = Callable[[], list[JobDef]]


class Sizes:
    def __init__(self, quick: bool) -> None:
        self.loads = (1, 1000) if quick else (1, 1000, 10_000)
        self.huge = 1000 if quick else HUGE
        self.spread_s = 3.0 if quick else 15.0
        self.burst = 20 if quick else 50
        self.burst_every = 1 if quick else 3
        self.burst_s = 3.0 if quick else 12.0
        self.cli_repeat = 2 if quick else 5
        self.settle_s = 15.0 if quick else 40.0


def _patterns(sizes: Sizes, load: int) -> dict[str, Pattern]:
    period = 1 if load == 1 else 5
    found: dict[str, Pattern] = {"spread": lambda: spread_jobs(0x20, period, PY_CODE)}
    if load > 1:
        found["burst"] = lambda: burst_jobs(0x21, sizes.burst, sizes.burst_every, PY_CODE)
    return found


def _load_jobs(begin: int, end: int) -> list[JobDef]:
    return [
        JobDef(job_id(LOAD_GROUP, i), f"load{i}", "never", "print('never runs')\n")
        for i in range(begin, end)
    ]


def _lag_figures(label: str, odin: Outcome, bare: Outcome, goal_ms: float | None) -> list[Figure]:
    dispatch, start, base = (
        stats(dispatch_lags(odin)),
        stats(start_lags(odin)),
        stats(start_lags(bare)),
    )
    note = f"{dispatch.ms()}; {odin.launched}/{odin.expected} launched"
    delta = (start.p99 - base.p99) * 1e3
    return [
        Figure(
            f"dispatch lag p99, {label}",
            dispatch.p99 * 1e3,
            "ms",
            "" if goal_ms is None else f"<= {goal_ms:.0f} ms",
            note,
            None if goal_ms is None else dispatch.p99 * 1e3 <= goal_ms,
        ),
        Figure(
            f"start lag p99 minus bare loop's, {label}",
            delta,
            "ms",
            "<= 10 ms",
            f"Odin {start.ms()}; bare loop {base.ms()}",
            None if math.isnan(delta) else delta <= 10,
        ),
    ]


def _external(sizes: Sizes, programs: Programs) -> dict[str, tuple[Outcome, Outcome]]:
    """The bare loop and APScheduler on the spread and burst patterns."""
    found: dict[str, tuple[Outcome, Outcome]] = {}
    for name, pattern in _patterns(sizes, 2).items():
        secs = sizes.spread_s if name == "spread" else sizes.burst_s
        pair = []
        for run in (run_bare, run_aps):
            begin, end = window(time.time() + 1.5, secs)
            pair.append(run(pattern(), begin, end, programs))
        found[name] = (pair[0], pair[1])
    return found


def _cli_times(
    engine: Engine, count: int, workdir: Path, first: int, lists: int
) -> tuple[float, float, float]:
    """Median wall times of ``odin deploy`` (new jobs), ``odin list`` and ``list -o json``."""
    deploys = []
    for i in range(first, first + count):
        jid = job_id(CLI_GROUP, i)
        (workdir / f"cli{i}.py").write_text("print('cli')\n")
        (workdir / f"cli{i}.yml").write_text(job_yaml(jid, f"cli{i}", "never"))
        deploys.append(odin_cli(engine, "deploy", "-f", str(workdir / f"cli{i}.yml")))
    table = statistics.median(odin_cli(engine, "list") for _ in range(lists))
    json = statistics.median(odin_cli(engine, "list", "-o", "json") for _ in range(lists))
    return statistics.median(deploys), table, json


def _grow(engine: Engine, have: int, want: int, budget_s: float | None = None) -> tuple[int, float]:
    """Deploy load jobs until ``want`` are deployed (or the budget runs out); (count, jobs/s)."""
    began, step = time.perf_counter(), 2000
    while have < want:
        upto = min(want, have + step)
        deploy(engine, _load_jobs(have, upto))
        have = upto
        if budget_s is not None and time.perf_counter() - began > budget_s:
            break
    return have, have / max(1e-9, time.perf_counter() - began)


def run(quick: bool = False) -> list[Figure]:
    sizes = Sizes(quick)
    programs = Programs()
    figures: list[Figure] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        external = _external(sizes, programs)
        for name, (bare, aps) in external.items():
            plots.add_distribution(f"{name} (one node)", "bare loop", start_lags(bare))
            plots.add_distribution(f"{name} (one node)", "APScheduler", start_lags(aps))
            figures.append(
                Figure(
                    f"start lag p99, APScheduler, {name}",
                    stats(start_lags(aps)).p99 * 1e3,
                    "ms",
                    "",
                    f"APScheduler {stats(start_lags(aps)).ms()}",
                )
            )
        with engines(1, "scale") as (engine,):
            figures += _scale(engine, sizes, external, workdir)
    finally:
        programs.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def _scale(
    engine: Engine, sizes: Sizes, external: dict[str, tuple[Outcome, Outcome]], workdir: Path
) -> list[Figure]:
    figures = [Figure("engine resident memory, 0 jobs", engine.rss_mib(), "MiB")]
    have, cli_index = 0, 0
    for load in sizes.loads:
        firing = 1 if load == 1 else 5
        have, rate = _grow(engine, have, load - firing)
        if load >= 1000:
            figures.append(
                Figure(
                    f"deploy rate through the API, to {load} jobs",
                    rate,
                    "jobs/s",
                    "",
                    "4 concurrent clients on the Unix socket",
                )
            )
        if load == 10_000:
            figures.append(Figure("engine resident memory, 10,000 jobs", engine.rss_mib(), "MiB"))
        for name, pattern in _patterns(sizes, load).items():
            secs = sizes.spread_s if name == "spread" else sizes.burst_s
            odin = run_odin(engine, pattern(), secs, settle_s=sizes.settle_s)
            label = f"{name}, {load:,} jobs" + (
                f" (burst {sizes.burst})" if name == "burst" else ""
            )
            goal = 5.0 if name == "spread" and load == 10_000 else None
            figures += _lag_figures(label, odin, external[name][0], goal)
            if load == sizes.loads[-1]:
                plots.add_distribution(
                    f"{name} (one node)", f"Odin ({load:,} jobs)", start_lags(odin)
                )
        if load == 1:
            have, _ = _grow(engine, have, 100 - sizes.cli_repeat)
            times = _cli_times(engine, sizes.cli_repeat, workdir, cli_index, sizes.cli_repeat)
            cli_index += sizes.cli_repeat
            have += sizes.cli_repeat
            figures += _cli_figures("100", *times, 0.150)
    began = time.perf_counter()
    budget = None if sizes.huge < HUGE else HUGE_DEPLOY_BUDGET_S
    # the last few jobs come from the CLI deploys timed below: the user's limit is HUGE
    have, rate = _grow(engine, have, sizes.huge - sizes.cli_repeat, budget)
    grow_s = time.perf_counter() - began
    times = _cli_times(engine, sizes.cli_repeat, workdir, cli_index, HUGE_LISTS)
    have += sizes.cli_repeat
    note = "" if have >= sizes.huge else f"deploy budget ran out at {have:,} jobs"
    rss_mb = engine.rss_mib() * 2**20 / 1e6
    figures.append(
        Figure(
            f"engine resident memory, {have:,} jobs",
            rss_mb,
            "MB",
            "<= 400 MB at 100,000",
            note,
            rss_mb <= 400 if have >= HUGE else None,
        )
    )
    figures.append(
        Figure(
            f"deploy rate, {sizes.loads[-1]:,} to {have:,} jobs",
            rate,
            "jobs/s",
            "",
            f"{grow_s:.0f} s",
        )
    )
    figures += _cli_figures(f"{have:,}", *times, 2.0 if have >= HUGE else None)
    return figures


def _cli_figures(
    count: str, deploy_s: float, list_s: float, json_s: float, list_goal: float | None
) -> list[Figure]:
    return [
        Figure(f"odin deploy wall time, {count} jobs", deploy_s * 1e3, "ms", "", "leader; median"),
        Figure(
            f"odin list wall time, {count} jobs",
            list_s * 1e3,
            "ms",
            "" if list_goal is None else f"<= {list_goal * 1e3:.0f} ms",
            "leader; median; the table the user sees",
            None if list_goal is None else list_s <= list_goal,
        ),
        Figure(f"odin list -o json wall time, {count} jobs", json_s * 1e3, "ms", "", "leader"),
    ]
