"""Sustained launch rate and engine cost, side by side with a bare loop and APScheduler.

Each level of the sweep is R jobs firing ``every 1 second`` (R launches per
second, in one burst per second) for a fixed window. A system keeps up at R
when it launches at least 99% of the ticks and its start lag does not grow:
the least-squares slope of each burst's median start lag over the window is at
most 25 ms per second (``workload.GROWTH_LIMIT``). For the Python job the three
systems take turns at each level (Odin on a fresh engine each time), so that all
three meet the machine in the same state; a system leaves the sweep at the first
level it cannot keep up with, and is then tried once more halfway between its
last good level and that one. Engine CPU per run is the engine's CPU over the
window, less what it spends idle in as long, divided by the runs launched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench import plots
from bench.aps_runner import run_aps
from bench.bare_loop import run_bare
from bench.common import Figure
from bench.harness import Engine, JobDef, deploy, engines, job_id, remove
from bench.odin_runner import run_odin
from bench.workload import (
    GO_CODE,
    PY_CODE,
    Outcome,
    Programs,
    burst_jobs,
    describe,
    keeps_up,
    percentile,
    start_lags,
    window,
)

# Up to 320/s, in steps of 40/s from 160/s: the bare loop and APScheduler, which start an
# interpreter for every run, keep up with 180/s on this machine, and Odin, whose Python runs
# are forked by a nursery, with 300/s. The halfway try after a system's first miss narrows its
# rate to 20/s (to 120/s below 160/s: the level left out to keep the bench under 15 minutes).
FULL_LEVELS = (40, 80, 160, 200, 240, 280, 320)
GO_LEVELS = (80, 160)
QUICK_LEVELS = (20,)
CONFIRM_S = 60.0

Runner = Callable[[list[JobDef], float], Outcome]


@dataclass(frozen=True)
class Sweep:
    system: str
    language: str
    points: tuple[tuple[int, Outcome], ...]

    @property
    def sustained(self) -> int:
        return max((rate for rate, o in self.points if keeps_up(o)), default=0)


def _level(
    system: str, language: str, runner: Runner, group: int, rate: int, secs: float
) -> Outcome:
    code = PY_CODE if language == "python" else GO_CODE
    outcome = runner(burst_jobs(group, rate, 1, code, language), secs)
    lags = start_lags(outcome)
    if lags:
        plots.add_rate_point(
            f"{system} ({language})", rate, percentile(lags, 0.5), percentile(lags, 0.99)
        )
    print(f"  {system} {language} {rate}/s: {describe(outcome)}")
    return outcome


def _sweep(
    system: str, language: str, runner: Runner, levels: tuple[int, ...], secs: float
) -> Sweep:
    points: list[tuple[int, Outcome]] = []
    for index, rate in enumerate(levels):
        group = 0x40 + 0x10 * (language == "go") + index
        outcome = _level(system, language, runner, group, rate, secs)
        points.append((rate, outcome))
        if not keeps_up(outcome):
            break
    return Sweep(system, language, tuple(points))


def _sweeps_in_turn(
    runners: dict[str, Runner], levels: tuple[int, ...], secs: float, refine: bool
) -> dict[str, Sweep]:
    """Python sweeps of several systems, level by level in turn (see the module's doc)."""
    points: dict[str, list[tuple[int, Outcome]]] = {name: [] for name in runners}
    going = list(runners)
    for index, rate in enumerate(levels):
        for name in list(going):
            outcome = _level(name, "python", runners[name], 0x40 + index, rate, secs)
            points[name].append((rate, outcome))
            if not keeps_up(outcome):
                going.remove(name)
        if not going:
            break
    if refine:
        for name, (rate, group) in _halfway(points, levels).items():
            outcome = _level(name, "python", runners[name], group, rate, secs)
            kept = [p for p in points[name] if p[0] < rate]
            points[name] = [*kept, (rate, outcome), *(p for p in points[name] if p[0] > rate)]
    return {name: Sweep(name, "python", tuple(p)) for name, p in points.items()}


def _halfway(
    points: dict[str, list[tuple[int, Outcome]]], levels: tuple[int, ...]
) -> dict[str, tuple[int, int]]:
    """For each system that kept up at a level and not at the next: the rate halfway
    between (and a job group of its own)."""
    found: dict[str, tuple[int, int]] = {}
    for name, tried in points.items():
        good = [rate for rate, o in tried if keeps_up(o)]
        bad = [rate for rate, o in tried if not keeps_up(o)]
        if good and bad and (bad[0] - good[-1]) >= 2:
            found[name] = ((good[-1] + bad[0]) // 2, 0x40 + len(levels))
    return found


def _external(run: Callable[..., Outcome], programs: Programs) -> Runner:
    def runner(jobs: list[JobDef], secs: float) -> Outcome:
        begin, end = window(time.time() + 1.5, secs)
        return run(jobs, begin, end, programs)

    return runner


def _odin(engine: Engine, settle: float) -> Runner:
    # A level the engine cannot keep up with ends the sweep and the engine with it.
    return lambda jobs, secs: run_odin(engine, jobs, secs, settle_s=settle, clean_up_if_slow=False)


def _fresh_odin(settle: float) -> Runner:
    """Each level on an engine of its own: one that fell behind cannot spoil the next."""

    def runner(jobs: list[JobDef], secs: float) -> Outcome:
        with engines(1, "rate") as (engine,):
            return _odin(engine, settle)(jobs, secs)

    return runner


def _warm_go(engine: Engine) -> None:
    """Compile the Go job once, so the sweep's deploys hit the build cache."""
    job = JobDef(job_id(0x3F, 0), "warm", "never", GO_CODE, "go")
    deploy(engine, [job])
    remove(engine, [job.jid])


def _cpu_per_run(sweep: Sweep, idle_ms: float, secs: float) -> tuple[float, float, int]:
    """Engine CPU ms per launched run at the highest level it kept up with: (with the idle
    CPU of the window taken out, as measured), and the level."""
    kept = [(rate, o) for rate, o in sweep.points if keeps_up(o) and o.launched]
    if not kept:
        return math.nan, math.nan, 0
    rate, outcome = kept[-1]
    raw = outcome.cpu_s * 1e3 / outcome.launched
    return raw - idle_ms * secs / outcome.launched, raw, rate


def _idle_cpu(engine: Engine, secs: float) -> float:
    before = engine.cpu_seconds()
    time.sleep(secs)
    return (engine.cpu_seconds() - before) * 1e3 / secs


def _odin_sweep(language: str, levels: tuple[int, ...], secs: float, settle: float) -> Sweep:
    """A sweep on a fresh engine, so that a level it fell over at cannot spoil the next."""
    with engines(1, "rate") as (engine,):
        if language == "go":
            _warm_go(engine)
        return _sweep("Odin", language, _odin(engine, settle), levels, secs)


def _confirmed(sweep: Sweep, settle: float) -> list[tuple[int, Outcome]]:
    """Odin for 60 s at its sweep's rate and, if it falls behind there, at the next level
    below that it kept up with in the sweep (7 s levels can pass a rate 60 s cannot)."""
    kept = sorted((rate for rate, o in sweep.points if keeps_up(o)), reverse=True)
    confirms: list[tuple[int, Outcome]] = []
    for rate in kept[:2]:
        confirms.append((rate, _confirm(rate, settle)))
        if keeps_up(confirms[-1][1]):
            break
    return confirms


def _confirm(rate: int, settle: float) -> Outcome:
    with engines(1, "confirm") as (engine,):
        jobs = burst_jobs(0x3E, rate, 1, PY_CODE)
        return run_odin(engine, jobs, CONFIRM_S, settle_s=settle, clean_up_if_slow=False)


def run(quick: bool = False) -> list[Figure]:
    levels = QUICK_LEVELS if quick else FULL_LEVELS
    secs, settle = (3.0, 10.0) if quick else (7.0, 20.0)
    with engines(1, "idle") as (engine,):
        idle = _idle_cpu(engine, 2.0 if quick else 5.0)
    programs = Programs()
    try:
        runners = {
            "Odin": _fresh_odin(settle),
            "bare loop": _external(run_bare, programs),
            "APScheduler": _external(run_aps, programs),
        }
        python = _sweeps_in_turn(runners, levels, secs, refine=not quick)
        odin_py, bare_py, aps_py = python["Odin"], python["bare loop"], python["APScheduler"]
        confirms = [] if quick else _confirmed(odin_py, settle)
        odin_go = None if quick else _odin_sweep("go", GO_LEVELS, secs, settle)
        bare_go = None
        if not quick:
            bare_go = _sweep("bare loop", "go", _external(run_bare, programs), GO_LEVELS, secs)
    finally:
        programs.close()
    return _figures(odin_py, bare_py, aps_py, odin_go, bare_go, confirms, idle, secs, quick)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def _figures(
    odin_py: Sweep,
    bare_py: Sweep,
    aps_py: Sweep,
    odin_go: Sweep | None,
    bare_go: Sweep | None,
    confirms: list[tuple[int, Outcome]],
    idle_ms: float,
    secs: float,
    quick: bool,
) -> list[Figure]:
    step = f"{secs:.0f} s per level"
    ratio = _ratio(odin_py.sustained, bare_py.sustained)
    held = [rate for rate, outcome in confirms if keeps_up(outcome)]
    odin_rate = held[0] if held else odin_py.sustained  # judged on what held for 60 s
    figures = [
        Figure("sustained rate, Odin, Python job", odin_py.sustained, "launches/s", "", step),
        Figure("sustained rate, bare loop, Python job", bare_py.sustained, "launches/s", "", step),
        Figure(
            "sustained rate, APScheduler 3, Python job", aps_py.sustained, "launches/s", "", step
        ),
        Figure(
            "sustained rate Odin / bare loop (Python)",
            ratio,
            "x",
            ">= 0.80",
            "",
            None if math.isnan(ratio) else ratio >= 0.8,
        ),
        Figure(
            "sustained rate APScheduler / bare loop (Python)",
            _ratio(aps_py.sustained, bare_py.sustained),
            "x",
            "Odin ahead",
            f"Odin {odin_rate}/s" + (" (held for 60 s)" if held else ""),
            odin_rate > aps_py.sustained,
        ),
    ]
    for rate, confirm in confirms:
        figures.append(
            Figure(
                f"Odin at {rate}/s for {CONFIRM_S:.0f} s: launched",
                confirm.launched / max(1, confirm.expected),
                "of ticks",
                "keeps up over 60 s",
                f"{describe(confirm)}",
                keeps_up(confirm),
            )
        )
    if odin_go is not None and bare_go is not None:
        figures += [
            _sustained(odin_go, step),
            _sustained(bare_go, step),
        ]
    elif quick:
        figures.append(Figure("sustained rate, Go job", math.nan, "", "", "skipped in quick mode"))
    figures += _side_by_side(odin_py, bare_py, aps_py)
    per_run, raw, at = _cpu_per_run(odin_py, idle_ms, secs)
    figures += [
        Figure(
            "engine CPU per run",
            per_run,
            "ms",
            "<= 1 ms",
            f"at {at} launches/s, from /proc utime+stime, children excluded; "
            f"{raw:.2f} ms with the idle CPU of the window left in",
            None if math.isnan(per_run) else per_run <= 1.0,
        ),
        Figure("engine CPU when idle", idle_ms, "ms/s", "", "no job firing"),
    ]
    return figures


def _sustained(sweep: Sweep, step: str) -> Figure:
    """The sweep's sustained rate; the note gives each level's launches and lag trend."""
    levels = "; ".join(f"{rate}/s: {describe(o)}" for rate, o in sweep.points)
    name = f"sustained rate, {sweep.system}, {sweep.language.capitalize()} job"
    return Figure(name, sweep.sustained, "launches/s", "", f"{step}. {levels}")


def _side_by_side(odin: Sweep, bare: Sweep, aps: Sweep) -> list[Figure]:
    """Start lag p50/p99 of each system at the first (lowest) level, as ratios to the bare loop."""
    figures: list[Figure] = []
    rate = bare.points[0][0]
    base = start_lags(bare.points[0][1])
    for sweep in (odin, aps):
        lags = start_lags(sweep.points[0][1])
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            mine, theirs = percentile(lags, q), percentile(base, q)
            figures.append(
                Figure(
                    f"start lag {label} at {rate}/s, {sweep.system} / bare loop",
                    _ratio(mine, theirs),
                    "x",
                    "",
                    f"{mine * 1e3:.1f} ms vs {theirs * 1e3:.1f} ms",
                )
            )
    return figures
