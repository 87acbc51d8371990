"""The workloads every system runs, and what a run's lag is.

A workload is a set of firing jobs, each with an Odin schedule; the bare loop
and APScheduler compute the same instants from the same schedules (with Odin's
own parser), so all three launch the same job at the same instants with the
same concurrency (no limit). The job prints ``T <time.time()>`` as its first
act: that is the *start* (first line of the job's code), measured by the job
itself. *Dispatch* is when the scheduler lets the process go, on its own clock:
Odin's ``started_at`` (it opens the start gate of a process made a second
ahead), the bare loop's and APScheduler's clock right after the spawn returns.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.harness import BenchError, JobDef, job_id
from odin.executor import interpreters
from odin.jobs.language import Language
from odin.schedule import parse

PY_CODE = "import time\nprint('T', repr(time.time()), flush=True)\n"
QUIET_PY_CODE = "pass\n"
GO_CODE = """package main

import (
\t"fmt"
\t"time"
)

func main() {
\tfmt.Printf("T %.6f\\n", float64(time.Now().UnixNano())/1e9)
}
"""


@dataclass(frozen=True)
class Sample:
    """One launch: its scheduled instant, when its process existed, when its code began."""

    instant: float
    started_at: float | None
    first_line_at: float | None

    @property
    def dispatch(self) -> float | None:
        return None if self.started_at is None else self.started_at - self.instant

    @property
    def start(self) -> float | None:
        return None if self.first_line_at is None else self.first_line_at - self.instant


@dataclass(frozen=True)
class Outcome:
    """What one system did with one workload: its launches and the ticks it missed."""

    system: str
    samples: tuple[Sample, ...]
    expected: int
    cpu_s: float = 0.0

    @property
    def launched(self) -> int:
        return sum(1 for s in self.samples if s.started_at is not None)

    @property
    def missed(self) -> int:
        return max(0, self.expected - self.launched)


@dataclass(frozen=True)
class Stats:
    p50: float
    p99: float
    max: float
    count: int

    def ms(self) -> str:
        return f"p50 {self.p50 * 1e3:.1f} / p99 {self.p99 * 1e3:.1f} / max {self.max * 1e3:.1f} ms"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def stats(values: Sequence[float]) -> Stats:
    if not values:
        return Stats(math.nan, math.nan, math.nan, 0)
    return Stats(percentile(values, 0.5), percentile(values, 0.99), max(values), len(values))


def dispatch_lags(outcome: Outcome) -> list[float]:
    return [s.dispatch for s in outcome.samples if s.dispatch is not None]


def start_lags(outcome: Outcome) -> list[float]:
    return [s.start for s in outcome.samples if s.start is not None]


def trend(outcome: Outcome) -> tuple[float, float]:
    """Median start lag of the first and of the last third of the window (NaN if too few)."""
    ordered = sorted((s.instant, s.start) for s in outcome.samples if s.start is not None)
    if len(ordered) < 6:
        return math.nan, math.nan
    third = len(ordered) // 3
    first = statistics.median(v for _, v in ordered[:third])
    return first, statistics.median(v for _, v in ordered[-third:])


GROWTH_LIMIT = 0.025
"""Seconds of start lag gained per second of window above which a system falls behind.

A system short of capacity by a fraction f starts each burst f seconds later than
the one before (10% short: +100 ms every second); one that keeps up wanders by a
few ms per second from burst to burst. The limit sits between the two."""


def growth(outcome: Outcome) -> float:
    """Least-squares slope of each instant's median start lag over the window (s per s)."""
    by_instant: dict[float, list[float]] = {}
    for sample in outcome.samples:
        if sample.start is not None:
            by_instant.setdefault(sample.instant, []).append(sample.start)
    points = sorted((t, statistics.median(v)) for t, v in by_instant.items())
    if len(points) < 3:
        return math.nan
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def describe(outcome: Outcome) -> str:
    first, last = trend(outcome)
    return (
        f"{outcome.launched}/{outcome.expected} launched, median start lag "
        f"{first * 1e3:.0f} -> {last * 1e3:.0f} ms, growth {growth(outcome) * 1e3:+.0f} ms/s"
    )


def keeps_up(outcome: Outcome) -> bool:
    """Launched (almost) every tick, and its start lag does not grow over the window.

    A burst of R launches takes the machine a while to start, so the lag itself
    may be large at a high rate; a system that cannot keep up falls further
    behind each second, and that growth (``GROWTH_LIMIT``) is what fails it.
    """
    lags = start_lags(outcome)
    if outcome.expected == 0 or len(lags) < 0.99 * outcome.expected:
        return False
    slope = growth(outcome)
    return not math.isnan(slope) and slope <= GROWTH_LIMIT


def first_line_time(text: str) -> float | None:
    """The ``T <seconds>`` a bench job printed first, if any."""
    for line in text.splitlines():
        if line.startswith("T "):
            try:
                return float(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


# -- the jobs of a workload ----------------------------------------------------


def spread_jobs(group: int, period: int, code: str, language: str = "python") -> list[JobDef]:
    """``period`` jobs, job k firing every ``period`` s at offset k: one launch per second."""
    return [
        JobDef(job_id(group, k), f"spread{k}", f"cron: {k}/{period} * * * * *", code, language)
        for k in range(period)
    ]


def burst_jobs(
    group: int, size: int, every_s: int, code: str, language: str = "python"
) -> list[JobDef]:
    """``size`` jobs sharing every instant: a burst of ``size`` launches every ``every_s`` s."""
    unit = "second" if every_s == 1 else f"{every_s} seconds"
    return [
        JobDef(job_id(group, k), f"burst{k}", f"every {unit}", code, language) for k in range(size)
    ]


def instants(job: JobDef, begin: float, end: float) -> list[float]:
    """The job's ticks in [begin, end), from Odin's own schedule parser."""
    schedule = parse(job.schedule, default_tz="UTC")
    found: list[float] = []
    moment = dt.datetime.fromtimestamp(begin - 0.001, dt.UTC)
    while True:
        following = schedule.next_after(moment)
        if following is None or following.timestamp() >= end:
            return found
        found.append(following.timestamp())
        moment = following


def window(start_after: float, duration: float) -> tuple[float, float]:
    """A window of whole seconds beginning at least ``start_after``."""
    begin = float(math.ceil(start_after))
    return begin, begin + duration


# -- programs for the systems that are not Odin ---------------------------------


class Programs:
    """The argv of each job for the bare loop and APScheduler (code in a temp dir)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-programs-"))
        self._built: dict[tuple[str, str], tuple[str, ...]] = {}

    def argv(self, job: JobDef) -> tuple[str, ...]:
        key = (job.language, job.code)
        if key not in self._built:
            self._built[key] = self._make(job, len(self._built))
        return self._built[key]

    def _make(self, job: JobDef, index: int) -> tuple[str, ...]:
        if job.language == "python":
            path = self.root / f"job{index}.py"
            path.write_text(job.code)
            return interpreters.command_for(Language.PYTHON, str(path))
        if job.language == "go":
            return (str(build_go(job.code, self.root / f"go{index}")),)
        raise BenchError(f"no bench runner for {job.language}")

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def build_go(code: str, directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "main.go").write_text(code)
    (directory / "go.mod").write_text("module benchjob\n\ngo 1.19\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(directory), "CGO_ENABLED": "0"}
    env["GOCACHE"] = str(directory / "cache")
    done = subprocess.run(
        ["/usr/bin/go", "build", "-o", "job", "."],
        cwd=directory,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"go build failed: {done.stderr.decode()[-500:]}")
    return directory / "job"


def job_env() -> dict[str, str]:
    """A fresh environment like the one Odin gives a run (nothing inherited)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}
