"""Past capacity: one node offered 1.5× and 3× the launch rate it sustains, for 60 s.

R Python jobs fire ``every second`` with ``overlap: allow`` (every tick must run)
for a window of W seconds, R being 1.5 and 3 times ``SUSTAINED``, the rate the
rate bench confirms for 60 s on this machine. While the window runs, and until
the backlog is drained, sampler threads time the real ``odin list`` and
``odin run -i`` (another job) every 0.5 s, and note the engine's descriptors,
memory and threads. Then every run is read back: starts per second (the curve
in the report), how many started out of instant order (a run that started before
one whose instant was more than a second earlier), the time from the window's end
to the last start (catching up), and ticks never started (lost) or twice.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench import plots
from bench.bench_burst import Watch
from bench.common import Figure, skipped
from bench.harness import BenchError, Engine, JobDef, deploy, engines, job_id, runs_of, wait_for
from bench.workload import QUIET_PY_CODE, instants, window

SUSTAINED = 280
"""Python launches a second one node keeps up with for 60 s here (bench_rate, limits.md)."""
FULL = ((1.5, 3.0), 60.0)
QUICK = ((1.5,), 8.0)
QUICK_SUSTAINED = 40  # quick mode: small enough for CI, the same shape
GROUP = 0xB0
LEAD_S = 3.0
DRAIN_LIMIT_S = 600.0
LIST_GOAL_S = 1.0
STEADY_SHARE = 0.8
"""During overload the node must start at least this share of its sustained rate each second."""


def run(quick: bool = False) -> list[Figure]:
    factors, seconds = QUICK if quick else FULL
    base = QUICK_SUSTAINED if quick else SUSTAINED
    figures: list[Figure] = []
    for factor in factors:
        rate = round(base * factor)
        try:
            with engines(1, f"overload{rate}") as (engine,):
                figures += _level(engine, rate, base, seconds, factor)
        except BenchError as error:
            figures.append(
                skipped(f"offered {factor:g}× ({rate}/s): starts a second", "/s", "", str(error))
            )
    return figures


def _level(engine: Engine, rate: int, base: int, seconds: float, factor: float) -> list[Figure]:
    jobs = [
        JobDef(job_id(GROUP, k), f"over{k}", "every second", QUIET_PY_CODE) for k in range(rate)
    ]
    probe = JobDef(job_id(GROUP + 1, 0), "probe", "never", QUIET_PY_CODE)
    deploy(engine, [*jobs, probe])
    begin, end = window(time.time() + LEAD_S, seconds)
    time.sleep(max(0.0, begin - time.time()))
    watch = Watch([engine], engine, probe.jid).start()
    try:
        time.sleep(max(0.0, end - time.time()))
        _pause(engine, jobs)  # no tick after the window: what remains is the backlog
        expected = {job.jid: instants(job, begin, end) for job in jobs}
        total = sum(len(ticks) for ticks in expected.values())
        drained = _drain(engine, [job.jid for job in jobs], total, begin, end)
    finally:
        watch.stop()
    runs = _read_back(engine, jobs, begin, end)
    return _figures(runs, expected, watch, drained, rate, base, factor, begin, end)


def _pause(engine: Engine, jobs: list[JobDef]) -> None:
    """Pause every firing job, several at a time (one Raft entry each, on a busy engine)."""

    def pause(job: JobDef) -> None:
        engine.client().request("PATCH", f"/v1/jobs/{job.jid}", {"paused": True})

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(pause, jobs))


def _drain(engine: Engine, jids: list[str], total: int, begin: float, end: float) -> float:
    """Seconds from the window's end until every tick of the window has finished."""

    def done() -> bool:
        finished = 0
        for jid in jids:
            finished += sum(
                1
                for r in runs_of(engine, jid)
                if begin <= r["instant"] < end and r["status"] not in ("planned", "running")
            )
        return finished >= total

    try:
        wait_for(done, DRAIN_LIMIT_S, "the backlog to drain", 2.0)
    except BenchError:
        return math.nan
    return time.time() - end


def _read_back(
    engine: Engine, jobs: list[JobDef], begin: float, end: float
) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = pool.map(lambda job: runs_of(engine, job.jid), jobs)
    return [r for runs in found for r in runs if begin <= r["instant"] < end]


def _figures(
    runs: list[dict[str, Any]],
    expected: dict[str, list[float]],
    watch: Watch,
    drained: float,
    rate: int,
    base: int,
    factor: float,
    begin: float,
    end: float,
) -> list[Figure]:
    label = f"offered {factor:g}× ({rate}/s for {end - begin:.0f} s)"
    started = sorted(
        (r["started_at"], r["instant"]) for r in runs if r.get("started_at") is not None
    )
    seen = Counter((r["job_id"], r["instant"]) for r in runs)
    ticks = {(jid, t) for jid, instants_ in expected.items() for t in instants_}
    lost = len(ticks - {key for key, n in seen.items() if n})
    doubled = sum(n - 1 for n in seen.values() if n > 1)
    per_second = Counter(int(s) for s, _ in started if begin <= s < end)
    curve = [per_second.get(int(begin) + k, 0) for k in range(int(end - begin))]
    plots.add_distribution(f"starts per second, {label}", "Odin", [float(n) for n in curve])
    steady = sorted(curve[len(curve) // 4 :])  # past the first quarter: the backlog has formed
    low = steady[len(steady) // 10] if steady else math.nan  # the 10th percentile second
    out_of_order = _out_of_order(started)
    lists = watch.lists
    list_max = max(lists.times) if lists.times else math.nan
    fds = watch.fds.get(watch.via.name, 0)
    rss = watch.rss_mib.get(watch.via.name, math.nan)
    return [
        Figure(
            f"{label}: starts a second, slowest tenth (past the first quarter)",
            float(low),
            "/s",
            f">= {STEADY_SHARE * base:.0f}/s ({STEADY_SHARE:.0%} of {base}/s)",
            "curve: " + " ".join(str(n) for n in curve),
            met=low >= STEADY_SHARE * base if steady else None,
        ),
        Figure(
            f"{label}: ticks lost / doubled",
            float(lost + doubled),
            "ticks",
            "0",
            f"{lost} lost, {doubled} doubled of {len(ticks)}",
            met=lost + doubled == 0,
        ),
        Figure(
            f"{label}: window's end to its last start (catching up)",
            drained,
            "s",
            "",
            f"{len(started)} started; {out_of_order} out of instant order by more than 1 s",
        ),
        Figure(
            f"{label}: `odin list` during it, max",
            list_max,
            "s",
            f"< {LIST_GOAL_S:.0f} s",
            lists.note(),
            met=list_max < LIST_GOAL_S if lists.times else None,
        ),
        Figure(
            f"{label}: `odin run -i` another job, max",
            max(watch.runs.times) if watch.runs.times else math.nan,
            "s",
            "",
            watch.runs.note(),
        ),
        Figure(
            f"{label}: engine descriptors, peak", float(fds), "fds", "", f"memory {rss:.0f} MiB"
        ),
    ]


def _out_of_order(started: list[tuple[float, float]]) -> int:
    """Runs that started before another whose instant was more than a second earlier."""
    count = 0
    latest = -math.inf  # the latest instant among runs started so far
    for _, instant in started:
        if instant < latest - 1.0:
            count += 1
        latest = max(latest, instant)
    return count
