"""Lag at 1, 1,000 and 10,000 deployed jobs, memory, and CLI latency, on one node.

One engine is grown step by step: the deployed load is ``schedule: never``
jobs (they count as deployed, they do not fire), and at each load a small set
of firing jobs is deployed, measured and removed: *spread* (one launch per
second, each at its own instant) and *burst* (many jobs sharing one instant).
APScheduler runs the two patterns once, for comparison, and so does the bare loop
for the spread one; its bursts run around each of Odin's (``_external`` says why).
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import plots
from bench.aps_runner import run_aps
from bench.bare_loop import run_bare
from bench.common import Figure, skipped
from bench.harness import (
    READ_TIMEOUT_S,
    BenchError,
    Engine,
    JobDef,
    add_nodes,
    deploy,
    engines,
    job_id,
    job_yaml,
    leader_of,
    odin_cli,
    wait_for,
)
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
from odin import config
from odin.errors import OdinError

HUGE = 100_000
HUGE_DEPLOY_BUDGET_S = 270.0
"""The full run stops deploying towards HUGE after this long (the note gives the count)."""
HUGE_LISTS = 3
"""``odin list`` at HUGE jobs is timed this many times and the median reported, as at 100."""

CLUSTER_NODES = 3
JOIN_TIMEOUT_S = 180.0
"""How long two nodes may take to join the engine that holds every job and catch up."""

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
        self.huge_cli_first = 0  # the index of the first CLI-deployed job at the largest size


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


def _alone(
    run: Callable[..., Outcome], pattern: Pattern, secs: float, programs: Programs
) -> Outcome:
    """One of the other systems on ``pattern`` for ``secs`` s, starting in 1.5 s."""
    begin, end = window(time.time() + 1.5, secs)
    return run(pattern(), begin, end, programs)


def _external(sizes: Sizes, programs: Programs) -> tuple[Outcome, dict[str, Outcome]]:
    """The bare loop on the spread pattern, and APScheduler on the spread and burst ones.

    The bare loop's bursts are not run here but around each of Odin's (``_beside_bare``):
    on this machine a burst's p99 moves by 90 ms from one minute to the next (the bare
    loop alone, four runs within three minutes: 419-510 ms), far more than the 10 ms
    the goal allows, so only neighbours compare.
    """
    patterns = _patterns(sizes, 2)
    spread = _alone(run_bare, patterns["spread"], sizes.spread_s, programs)
    aps = {
        name: _alone(run_aps, pattern, _secs(sizes, name), programs)
        for name, pattern in patterns.items()
    }
    return spread, aps


def _beside_bare(
    engine: Engine, pattern: Pattern, secs: float, settle_s: float, programs: Programs
) -> tuple[Outcome, Outcome]:
    """Odin on ``pattern`` for ``secs`` s, between two halves of the bare loop's run on it
    (one just before, one just after: what the machine does around Odin's window, such
    as the engine still saving the jobs it was just given, falls on both sides)."""
    before = _alone(run_bare, pattern, secs / 2, programs)
    odin = run_odin(engine, pattern(), secs, settle_s=settle_s)
    after = _alone(run_bare, pattern, secs / 2, programs)
    both = before.samples + after.samples
    return odin, Outcome(before.system, both, before.expected + after.expected)


def _secs(sizes: Sizes, pattern: str) -> float:
    return sizes.spread_s if pattern == "spread" else sizes.burst_s


def deploy_times(engine: Engine, count: int, workdir: Path, first: int, version: int = 1) -> float:
    """Median wall time of ``odin deploy`` of CLI jobs ``first`` to ``first + count - 1``:
    new jobs, or with ``version`` > 1 a change of their code (a new version of each)."""
    deploys = []
    for i in range(first, first + count):
        jid = job_id(CLI_GROUP, i)
        (workdir / f"cli{i}.py").write_text(f"print('cli', {version})\n")
        (workdir / f"cli{i}.yml").write_text(job_yaml(jid, f"cli{i}", "never"))
        deploys.append(odin_cli(engine, "deploy", "-f", str(workdir / f"cli{i}.yml")))
    return statistics.median(deploys)


def cli_times(
    engine: Engine, count: int, workdir: Path, first: int, lists: int
) -> tuple[float, float, float]:
    """Median wall times of ``odin deploy`` (``count`` new jobs), ``odin list`` and
    ``list -o json``."""
    deploy_s = deploy_times(engine, count, workdir, first)
    table = statistics.median(odin_cli(engine, "list") for _ in range(lists))
    json = statistics.median(odin_cli(engine, "list", "-o", "json") for _ in range(lists))
    return deploy_s, table, json


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
        bare_spread, external = _external(sizes, programs)
        plots.add_distribution("spread (one node)", "bare loop", start_lags(bare_spread))
        for name, aps in external.items():
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
        with engines(1, "scale") as started:
            figures += _scale(started[0], sizes, bare_spread, programs, workdir)
            figures += _as_cluster(started, sizes, workdir)
    finally:
        programs.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def _scale(
    engine: Engine, sizes: Sizes, bare_spread: Outcome, programs: Programs, workdir: Path
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
            secs = _secs(sizes, name)
            if name == "spread":
                bare, odin = bare_spread, run_odin(engine, pattern(), secs, settle_s=sizes.settle_s)
            else:
                odin, bare = _beside_bare(engine, pattern, secs, sizes.settle_s, programs)
            label = f"{name}, {load:,} jobs" + (
                f" (burst {sizes.burst})" if name == "burst" else ""
            )
            goal = 5.0 if name == "spread" and load == 10_000 else None
            figures += _lag_figures(label, odin, bare, goal)
            if load == sizes.loads[-1]:
                if name == "burst":
                    plots.add_distribution("burst (one node)", "bare loop", start_lags(bare))
                plots.add_distribution(
                    f"{name} (one node)", f"Odin ({load:,} jobs)", start_lags(odin)
                )
        if load == 1:
            have, _ = _grow(engine, have, 100 - sizes.cli_repeat)
            began = time.time()
            times = cli_times(engine, sizes.cli_repeat, workdir, cli_index, sizes.cli_repeat)
            cli_index += sizes.cli_repeat
            have += sizes.cli_repeat
            figures += _cli_figures("100", *times, 0.150)
            figures.append(stall_figure("100", loop_stall(engine, began)))
    began = time.perf_counter()
    budget = None if sizes.huge < HUGE else HUGE_DEPLOY_BUDGET_S
    # the last few jobs come from the CLI deploys timed below: the user's limit is HUGE
    have, rate = _grow(engine, have, sizes.huge - sizes.cli_repeat, budget)
    grow_s = time.perf_counter() - began
    sizes.huge_cli_first = cli_index
    began = time.time()
    times = cli_times(engine, sizes.cli_repeat, workdir, cli_index, HUGE_LISTS)
    stall_s = loop_stall(engine, began)
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
    figures.append(stall_figure(f"{have:,}", stall_s))
    return figures


def loop_stall(engine: Engine, began: float) -> float:
    """The engine's worst event-loop stall (s) in the whole seconds since ``began``, which must
    be within ``LOOP_WATCH_WINDOW_S``: the per-second peaks of ``GET /v1/loop``."""
    stalls = engine.client(READ_TIMEOUT_S).request("GET", "/v1/loop")
    return max((late for second, late in stalls["peaks"] if second >= int(began)), default=math.nan)


def stall_figure(count: str, stall_s: float) -> Figure:
    """The worst loop stall while the CLI figures of ``count`` jobs were measured."""
    return Figure(
        f"event loop worst stall, {count} jobs, during odin deploy and list",
        stall_s * 1e3,
        "ms",
        "",
        "the engine's loop watch; the tests hold 1,500 jobs, 25 dashboard streams and "
        f"remote output reads under {config.LOOP_STALL_BOUND_S * 1e3:.0f} ms",
    )


def _as_cluster(started: list[Engine], sizes: Sizes, workdir: Path) -> list[Figure]:
    """The same CLI commands once the engine that holds every job leads a 3-node cluster:
    two nodes join it (each takes the leader's snapshot whole) and the commands go
    through the leader and through a follower."""
    first = started[0]
    began = time.perf_counter()
    try:
        add_nodes(first.root.parent, CLUSTER_NODES, started, timeout_s=JOIN_TIMEOUT_S)
        leader = wait_for(lambda: leader_of(started), 60, "a leader")
        follower = next(e for e in started if e is not leader)
        last = job_id(CLI_GROUP, sizes.huge_cli_first + sizes.cli_repeat - 1)
        wait_for(lambda: _holds(follower, last), JOIN_TIMEOUT_S, "the follower to hold every job")
    except BenchError as error:
        why = f"no {CLUSTER_NODES}-node cluster ({error})"[:300]
        memory = (
            f"engine resident memory, {HUGE:,} jobs, a follower that took the leader's snapshot"
        )
        return [skipped(memory, "MB", "<= 400 MB at 100,000", why)] + [
            skipped(f"odin {c} wall time, {HUGE:,} jobs, 3 nodes, through {w}", "ms", "", why)
            for c in ("deploy", "list")
            for w in ("the leader", "a follower")
        ]
    joined_s = time.perf_counter() - began
    note = f"the two nodes joined and caught up in {joined_s:.0f} s"
    count = len(_jobs_of(follower))
    rss_mb = follower.rss_mib() * 2**20 / 1e6
    memory = Figure(
        f"engine resident memory, {count:,} jobs, a follower that took the leader's snapshot",
        rss_mb,
        "MB",
        "<= 400 MB at 100,000",
        "its state came whole from the leader's snapshot",
        rss_mb <= 400 if count >= HUGE else None,
    )
    first = sizes.huge_cli_first
    repeat = sizes.cli_repeat
    cli = cli_through(leader, follower, workdir, first, repeat, HUGE_LISTS, count, note)
    return [memory, *cli]


def cli_through(
    leader: Engine,
    follower: Engine,
    workdir: Path,
    first_index: int,
    deploys: int,
    lists: int,
    count: int,
    note: str = "",
) -> list[Figure]:
    """``odin list`` (median of ``lists``) then ``odin deploy`` (median of ``deploys``),
    through the leader and through a follower of one cluster. The deploys change the code of
    the CLI jobs ``first_index`` on, which must exist: at 100,000 jobs a user may deploy no
    new one. ``count``: how many jobs the cluster holds."""
    figures: list[Figure] = []
    for where, engine in (("the leader", leader), ("a follower", follower)):
        list_s = statistics.median(odin_cli(engine, "list") for _ in range(lists))
        label = f"{count:,} jobs, 3 nodes, through {where}"
        figures.append(list_figure(label, list_s, count, "; ".join(filter(None, ["median", note]))))
    for version, (where, engine) in enumerate((("the leader", leader), ("a follower", follower))):
        deploy_s = deploy_times(engine, deploys, workdir, first_index, version + 2)
        figures.append(
            Figure(
                f"odin deploy wall time, {count:,} jobs, 3 nodes, through {where}",
                deploy_s * 1e3,
                "ms",
                "",
                f"median of {deploys}, each a new version of a job",
            )
        )
    return figures


def _holds(engine: Engine, jid: str) -> bool:
    try:
        engine.client(10).request("GET", f"/v1/jobs/{jid}")
    except OdinError:
        return False
    return True


def _jobs_of(engine: Engine) -> list[Any]:
    found: list[Any] = engine.client().request("GET", "/v1/jobs")
    return found


def list_figure(label: str, list_s: float, count: int, note: str) -> Figure:
    goal = 0.150 if count == 100 else 2.0 if count >= HUGE else None
    return Figure(
        f"odin list wall time, {label}",
        list_s * 1e3,
        "ms",
        "" if goal is None else f"<= {goal * 1e3:.0f} ms",
        f"{note}; the table the user sees",
        None if goal is None else list_s <= goal,
    )


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
