"""Thundering herd (issue #24): N jobs due at the same instant, one node and three.

N Python jobs (10,000; 200 in quick mode) share one schedule, ``every day at
HH:MM:SS`` in UTC, a few seconds after their deploy: one tick each, all at the
same instant. Each run appends its run id, node and clock (its first line) to a
file every node can write: the *start* of a run is that clock minus the instant,
a tick due in the window and absent from the file is *lost*, one present twice
*doubled*. During the burst, sampler threads time the real ``odin list`` and
``odin run -i`` (another job) every 0.5 s, count the engine's descriptors in
``/proc/<pid>/fd``, its resident memory and threads, ask every node who leads,
and collect the event loop's worst stalls (``GET /v1/loop``). The same N
launches are made by the bare loop and by APScheduler (before Odin's, on the same
schedule); then by a 3-node cluster (full mode; N=200 in quick mode) and, on one
node, by N Go jobs (full mode only). The burst's jobs are deployed in chunks, the
instant chosen from the deploy's pace and moved later (the jobs already deployed
deployed again with it) whenever the deploy falls behind, so that the instant falls
a few seconds after the deploy ends, whatever the machine's speed.

The Go jobs share one source, and one of them is run before the burst so that its
binary is built: the burst measures launches, not compilations. The engines are
given the open-file limit of their systemd unit (``LimitNOFILE=65536``,
docs/operations.md) when this process may raise its own (a container may not: the
notes give the limit the engine had); the bare loop, which holds a pipe and a pidfd
per child from the start of a burst to its reading, launches fewer runs when it
may not hold two per run (its note says so; the ratio is then per run started).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench import plots
from bench.aps_runner import run_aps
from bench.bare_loop import run_bare
from bench.common import Figure, skipped
from bench.harness import (
    BIN,
    READ_TIMEOUT_S,
    BenchError,
    Engine,
    JobDef,
    deploy,
    engines,
    job_id,
    leader_of,
    wait_for,
)
from bench.workload import PY_CODE, Outcome, Programs, instants, percentile
from odin import config
from odin.cluster.model import run_id
from odin.errors import OdinError

FULL_N = 10_000
QUICK_N = 200
GO_N = 10_000
"""Go jobs in the full run: the same code, so the engine builds it once (warmed before)."""
GOAL_RATE = 333.0
"""Runs started per second that the one-node goal asks (10,000 within 30 s)."""
ONE_NODE_GOAL_S = 30.0
CLUSTER_GOAL_S = 15.0
LIST_GOAL_S = 1.0
NODES = 3
LEAD_S = 4.0
"""The instant falls this long after the deploy is expected to end (runs are planned 1 s ahead)."""
DEPLOY_MARGIN = 1.3
"""The rest of a deploy is expected to take this times its pace so far."""
DEPLOY_CHUNKS = 20
GUESSED_DEPLOY_RATE = 300.0
"""Jobs per second the first chunk is expected to go at (the instant moves if it is slower)."""
MIN_LEAD_S = config.PLAN_LOOKAHEAD_S + 1.0
"""A deploy that ends later than this before the instant may have missed planning: noted."""
SAMPLE_EVERY_S = 0.5
CLI_TIMEOUT_S = 30.0
OPEN_FILES = config.UNIT_LIMIT_NOFILE

BURST_GROUP = 0x70
GO_GROUP = 0x71
CLUSTER_GROUP = 0x72
SWEEP_GROUP = 0x73
SWEEP_N = 3_000
SWEEP_SLOTS = (8, 64, 512)
"""The one-node Python burst of SWEEP_N runs again at these ``--launch-slots`` (full mode): what
the default (``config.LAUNCH_SLOTS``) was chosen from."""
PROBE_GROUP = 0x73
PROBE = JobDef(job_id(PROBE_GROUP, 0), "probe", "never", "print('probe')\n")

PY_MARK = """import os, time
t = time.time()
with open({path!r}, "a") as out:
    out.write(f"{{os.environ['ODIN_RUN_ID']}} {{os.environ['ODIN_NODE']}} {{t!r}}\\n")
print("T", repr(t), flush=True)
"""
GO_MARK = """package main

import (
\t"fmt"
\t"os"
\t"time"
)

func main() {
\tt := float64(time.Now().UnixNano()) / 1e9
\tline := fmt.Sprintf("%s %s %.6f\\n", os.Getenv("ODIN_RUN_ID"), os.Getenv("ODIN_NODE"), t)
\tif f, err := os.OpenFile({path}, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o666); err == nil {
\t\tf.WriteString(line)
\t\tf.Close()
\t}
\tfmt.Printf("T %.6f\\n", t)
}
"""


@dataclass(frozen=True)
class Sizes:
    n: int
    cluster_n: int
    go_n: int
    settle_s: float
    """How long after the instant the runs may take to start at most."""
    quiet_s: float
    """A burst is over when no run has started for this long (and none is left to start)."""

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        if quick:
            return cls(QUICK_N, QUICK_N, 0, settle_s=30.0, quiet_s=8.0)
        return cls(FULL_N, FULL_N, GO_N, settle_s=180.0, quiet_s=12.0)


# -- what a burst gave -----------------------------------------------------------


@dataclass(frozen=True)
class Burst:
    """One system's launches of one burst: the start lag of each tick that started."""

    system: str
    due: int
    lags: tuple[float, ...]
    doubled: int = 0
    note: str = ""

    @property
    def lost(self) -> int:
        return self.due - len(self.lags)

    @property
    def last(self) -> float:
        return max(self.lags, default=math.nan)

    @property
    def rate(self) -> float:
        return len(self.lags) / self.last if self.lags and self.last > 0 else math.nan

    def spread(self) -> str:
        p50, p99 = percentile(self.lags, 0.5), percentile(self.lags, 0.99)
        return (
            f"start lag p50 {p50:.2f} / p99 {p99:.2f} / max {self.last:.2f} s; "
            f"{len(self.lags):,}/{self.due:,} started"
        )


def _from_outcome(outcome: Outcome) -> Burst:
    lags = tuple(s.start for s in outcome.samples if s.start is not None)
    return Burst(outcome.system, outcome.expected, lags)


@dataclass
class Marks:
    """The ledger the jobs write: one line per execution, ``<run id> <node> <clock>``."""

    path: Path
    instant: float
    expected: frozenset[str]
    first: dict[str, float] = field(default_factory=dict)
    seen: Counter[str] = field(default_factory=Counter)
    nodes: Counter[str] = field(default_factory=Counter)

    def read(self) -> None:
        first: dict[str, float] = {}
        seen: Counter[str] = Counter()
        nodes: Counter[str] = Counter()
        with contextlib.suppress(FileNotFoundError):
            for line in self.path.read_text(errors="replace").splitlines(keepends=True):
                parts = line.split()
                if not line.endswith("\n") or len(parts) != 3 or parts[0] not in self.expected:
                    continue
                try:
                    at = float(parts[2])
                except ValueError:
                    continue
                seen[parts[0]] += 1
                nodes[parts[1]] += 1
                first[parts[0]] = min(at, first.get(parts[0], math.inf))
        self.first, self.seen, self.nodes = first, seen, nodes

    def burst(self, system: str, note: str = "") -> Burst:
        lags = tuple(at - self.instant for at in self.first.values())
        doubled = sum(1 for count in self.seen.values() if count > 1)
        return Burst(system, len(self.expected), lags, doubled, note)

    def wait(self, settle_s: float, quiet_s: float) -> None:
        """Until every tick has started (and a moment for doubles), nothing started for
        ``quiet_s`` once the instant is past, or ``settle_s`` after the instant."""
        deadline = self.instant + settle_s
        last_count, last_change = -1, time.time()
        while time.time() < deadline:
            self.read()
            now = time.time()
            if len(self.first) != last_count:
                last_count, last_change = len(self.first), now
            if len(self.first) == len(self.expected):
                time.sleep(2.0)  # a tick started twice would show now
                self.read()
                return
            if now > self.instant + quiet_s and now - last_change > quiet_s:
                return
            time.sleep(SAMPLE_EVERY_S)
        self.read()


# -- the samplers ----------------------------------------------------------------


def cli_time(engine: Engine, *args: str, timeout: float = CLI_TIMEOUT_S) -> tuple[float, str]:
    """Wall time of one real ``odin`` command, and its error ('' when it succeeded)."""
    env = {"PATH": "/usr/bin:/bin", "ODIN_SOCKET": str(engine.socket), "LANG": "C.UTF-8"}
    began = time.perf_counter()
    try:
        done = subprocess.run(
            [str(BIN / "odin"), *args], capture_output=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return timeout, f"timed out after {timeout:.0f} s"
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        text = (done.stderr or done.stdout).decode(errors="replace").strip()
        return elapsed, text.splitlines()[-1][:200] if text else f"exit {done.returncode}"
    return elapsed, ""


@dataclass
class CliSamples:
    times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, elapsed: float, error: str) -> None:
        self.times.append(elapsed)
        if error:
            self.errors.append(error)

    def note(self) -> str:
        if not self.times:
            return "no sample"
        text = (
            f"p50 {percentile(self.times, 0.5) * 1e3:.0f} ms, max {max(self.times) * 1e3:.0f} ms "
            f"over {len(self.times)} samples"
        )
        if self.errors:
            text += f"; {len(self.errors)} failed (e.g. {self.errors[0]!r})"
        return text


@dataclass
class Watch:
    """Sampler threads running through a burst; ``stop`` ends and joins them."""

    nodes: Sequence[Engine]
    via: Engine
    probe: str
    began: float = field(default_factory=time.time)
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lists: CliSamples = field(default_factory=CliSamples)
    runs: CliSamples = field(default_factory=CliSamples)
    fds: dict[str, int] = field(default_factory=dict)
    rss_mib: dict[str, float] = field(default_factory=dict)
    threads_peak: dict[str, int] = field(default_factory=dict)
    children_peak: dict[str, int] = field(default_factory=dict)
    fd_kinds: dict[str, tuple[int, Counter[str]]] = field(default_factory=dict)
    """Per node, the largest breakdown of its descriptors by kind taken (every 1 s)."""
    leaders: Counter[str] = field(default_factory=Counter)
    leaderless: int = 0
    unanswered: int = 0
    stalls: dict[int, float] = field(default_factory=dict)

    def start(self) -> Watch:
        for target in (self._proc, self._roles, self._list, self._run):
            thread = threading.Thread(target=self._guard(target), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=CLI_TIMEOUT_S + 10)
        self._loop()

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            with contextlib.suppress(Exception):  # a sampler must never take the bench down
                target()

        return body

    def _every(self, interval: float, sample: Callable[[], None]) -> None:
        while not self.stopping.is_set():
            began = time.monotonic()
            with contextlib.suppress(OSError, OdinError, BenchError, ValueError):
                sample()
            self.stopping.wait(max(0.0, interval - (time.monotonic() - began)))

    def _proc(self) -> None:
        last_loop = [time.monotonic()]
        last_kinds = [0.0]

        def sample() -> None:
            for node in self.nodes:
                if node.proc is None:
                    continue
                name = node.name
                count = len(os.listdir(f"/proc/{node.pid}/fd"))
                self.fds[name] = max(self.fds.get(name, 0), count)
                self.rss_mib[name] = max(self.rss_mib.get(name, 0.0), node.rss_mib())
                self.threads_peak[name] = max(self.threads_peak.get(name, 0), _threads(node))
                self.children_peak[name] = max(self.children_peak.get(name, 0), _children(node))
                if (
                    time.monotonic() - last_kinds[0] > 1.0
                    and count > self.fd_kinds.get(name, (0, Counter()))[0]
                ):
                    self.fd_kinds[name] = (count, _fd_kinds(node))
            if time.monotonic() - last_kinds[0] > 1.0:
                last_kinds[0] = time.monotonic()
            if time.monotonic() - last_loop[0] > 10.0:  # the loop watch keeps 60 s of peaks
                last_loop[0] = time.monotonic()
                self._loop()

        self._every(0.2, sample)

    def _loop(self) -> None:
        with contextlib.suppress(OdinError, KeyError, TypeError, ValueError):
            for node in self.nodes:
                if node.proc is None:
                    continue
                peaks = node.client(5).request("GET", "/v1/loop")["peaks"]
                for second, late in peaks:
                    if second >= int(self.began):
                        self.stalls[int(second)] = max(self.stalls.get(int(second), 0.0), late)

    def _roles(self) -> None:
        """Each answering node's view of who leads (a slow leader may not answer in time,
        its followers still know it): a sample where none knows a leader is an election."""

        def sample() -> None:
            answered, views = 0, set()
            for node in self.nodes:
                if node.proc is None:
                    continue
                try:
                    members = node.client(2).request("GET", "/v1/nodes")
                except OdinError:
                    continue
                answered += 1
                views |= {str(m.get("name")) for m in members if m.get("role") == "leader"}
            if answered == 0:
                self.unanswered += 1
            elif views:
                for name in views:
                    self.leaders[name] += 1
            else:
                self.leaderless += 1

        self._every(1.0, sample)

    def _list(self) -> None:
        self._every(SAMPLE_EVERY_S, lambda: self.lists.add(*cli_time(self.via, "list")))

    def _run(self) -> None:
        self._every(
            SAMPLE_EVERY_S, lambda: self.runs.add(*cli_time(self.via, "run", "-i", self.probe))
        )

    def worst_stall(self) -> float:
        return max(self.stalls.values(), default=math.nan)


def _threads(node: Engine) -> int:
    for line in Path(f"/proc/{node.pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def _children(node: Engine) -> int:
    """The engine's child processes (held runs, runs, nurseries; not the nurseries' runs)."""
    count = 0
    for task in os.listdir(f"/proc/{node.pid}/task"):
        with contextlib.suppress(OSError):
            count += len(Path(f"/proc/{node.pid}/task/{task}/children").read_text().split())
    return count


def _fd_kinds(node: Engine) -> Counter[str]:
    """The engine's descriptors by kind: pipe, socket, pidfd, a file under its data dir..."""
    kinds: Counter[str] = Counter()
    base = f"/proc/{node.pid}/fd"
    for fd in os.listdir(base):
        try:
            target = os.readlink(f"{base}/{fd}")
        except OSError:
            continue
        if target.startswith(("pipe:", "socket:")):
            target = target.split(":")[0]
        elif target.startswith(str(node.root)):
            parts = Path(target).relative_to(node.root).parts
            target = "data dir: " + "/".join(parts[:3])
        elif target.startswith("/sys/fs/cgroup"):
            target = "cgroup"
        kinds[target] += 1
    return kinds


def _fd_limit(node: Engine) -> str:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{node.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return line.split()[3]
    return "?"


# -- one burst through Odin --------------------------------------------------------


@dataclass
class OdinBurst:
    burst: Burst
    watch: Watch
    leader_before: str
    leader_after: str
    deploy_rate: float
    quiet_list_s: float
    """``odin list`` timed once between the deploy and the instant (NaN: no time for it)."""
    lost_why: str
    log: str

    @property
    def leader_changed(self) -> bool:
        named = {self.leader_before, self.leader_after, *self.watch.leaders}
        return len(named - {""}) > 1 or self.watch.leaderless > 0 or not self.leader_after

    def leader_note(self) -> str:
        seen = ", ".join(f"{n} x{c}" for n, c in sorted(self.watch.leaders.items())) or "none"
        return (
            f"before {self.leader_before or 'none'}, after {self.leader_after or 'none'}; "
            f"nodes' views every 1 s: {seen}, {self.watch.leaderless} with no leader known, "
            f"{self.watch.unanswered} unanswered (2 s timeout)"
        )


def _jobs(group: int, n: int, schedule: str, code: str, language: str) -> list[JobDef]:
    return [
        JobDef(job_id(group, k), f"herd{k}", schedule, code, language, "  timezone: UTC\n")
        for k in range(n)
    ]


def daily_at(instant: float) -> str:
    return "every day at " + time.strftime("%H:%M:%S", time.gmtime(instant))


def _deploy_for_instant(
    leader: Engine, group: int, n: int, code: str, language: str
) -> tuple[float, list[JobDef], float, str]:
    """Deploy ``n`` jobs due at one instant just after the deploy ends, whatever its pace.

    The jobs go in chunks; before each, the time the rest will take at the pace so far (times
    ``DEPLOY_MARGIN``) is checked against the instant: when the deploy has fallen behind, the
    instant moves later and the jobs already deployed are deployed again with it (a new
    version). Returns (instant, jobs, jobs deployed per second overall, a note: how often the
    instant moved, or that the deploy still ended too close to it)."""
    chunk = max(1, n // DEPLOY_CHUNKS)
    per_job = 1 / GUESSED_DEPLOY_RATE
    instant = float(math.ceil(time.time() + per_job * n * DEPLOY_MARGIN + LEAD_S))
    done: list[JobDef] = []
    moved, sent = 0, 0
    began = time.perf_counter()
    for start in range(0, n, chunk):
        left = n - start
        if time.time() + per_job * left * DEPLOY_MARGIN + MIN_LEAD_S > instant:
            instant = float(math.ceil(time.time() + per_job * n * DEPLOY_MARGIN + LEAD_S))
            moved += 1
            done = _jobs(group, len(done), daily_at(instant), code, language)
            deploy(leader, done)
            sent += len(done)
        jobs = _jobs(group, start + min(chunk, left), daily_at(instant), code, language)[start:]
        took = time.perf_counter()
        deploy(leader, jobs)
        sent += len(jobs)
        per_job = max(
            (time.perf_counter() - took) / len(jobs), (time.perf_counter() - began) / sent
        )
        done += jobs
    rate = sent / (time.perf_counter() - began)
    notes = [f"the instant moved {moved} times as the deploy fell behind"] if moved else []
    spare = instant - time.time()
    if spare < MIN_LEAD_S:
        notes.append(f"the deploy ended {spare:.1f} s before the instant: ticks may be missed")
    return instant, done, rate, "; ".join(notes)


def _warm_go(leader: Engine, job: JobDef) -> str:
    """Run one Go job now so its binary is built (every job has the same code): the burst
    measures launches, not 10,000 concurrent compilations of one source."""
    began = time.perf_counter()
    answer = leader.client(READ_TIMEOUT_S).request("POST", f"/v1/jobs/{job.jid}/runs")
    rid = answer["run"]

    def finished() -> bool:
        run = leader.client(READ_TIMEOUT_S).request("GET", f"/v1/runs/{rid}")
        return str(run.get("status")) not in ("planned", "running")

    wait_for(finished, 300, "the Go warm-up run", 0.2)
    status = leader.client(READ_TIMEOUT_S).request("GET", f"/v1/runs/{rid}").get("status")
    return f"binary built by one run first ({status}, {time.perf_counter() - began:.1f} s)"


def odin_burst(
    nodes: Sequence[Engine], group: int, n: int, sizes: Sizes, label: str, language: str
) -> OdinBurst:
    leader = wait_for(lambda: leader_of(nodes), 60, "a leader")
    workdir = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    workdir.chmod(0o755)
    marks_path = workdir / "marks"
    marks_path.touch(mode=0o666)
    marks_path.chmod(0o666)
    try:
        deploy(leader, [PROBE])
        code = (
            PY_MARK.format(path=str(marks_path))
            if language == "python"
            else GO_MARK.replace("{path}", f'"{marks_path}"')
        )
        instant, jobs, rate, note = _deploy_for_instant(leader, group, n, code, language)
        if language == "go":
            note = "; ".join(filter(None, [note, _warm_go(leader, jobs[0])]))
        expected = frozenset(
            run_id(job.jid, t) for job in jobs for t in instants(job, instant - 0.5, instant + 0.5)
        )
        marks = Marks(marks_path, instant, expected)
        quiet = math.nan
        if instant - time.time() > 2.5:
            took, error = cli_time(leader, "list", timeout=1.5)
            quiet = math.nan if error else took
        time.sleep(max(0.0, instant - 1.5 - time.time()))
        before = leader_of(nodes)
        watch = Watch(nodes, leader, PROBE.jid, began=instant - 1.0).start()
        try:
            marks.wait(sizes.settle_s, sizes.quiet_s)
        finally:
            watch.stop()
        with contextlib.suppress(BenchError):
            wait_for(lambda: leader_of(nodes), 30, "a leader after the burst")
        after = leader_of(nodes)
        burst = marks.burst(label, note)
        if len(marks.nodes) > 1:
            spread = ", ".join(f"{k} {v:,}" for k, v in sorted(marks.nodes.items()))
            burst = replace(burst, note="; ".join(filter(None, [note, f"runs per node: {spread}"])))
        missing = sorted(expected - set(marks.first))
        return OdinBurst(
            burst,
            watch,
            before.name if before else "",
            after.name if after else "",
            rate,
            quiet,
            _lost_why(after or leader, missing),
            _log_digest(nodes, instant - 1.0),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _lost_why(engine: Engine, missing: Sequence[str], sample: int = 20) -> str:
    """What Odin recorded for (a sample of) the ticks that never started."""
    if not missing:
        return ""
    said: Counter[str] = Counter()
    step = max(1, len(missing) // sample)
    for rid in list(missing)[::step][:sample]:
        try:
            run = engine.client(10).request("GET", f"/v1/runs/{rid}")
        except OdinError as error:
            said[f"not found ({str(error)[:80]})"] += 1
            continue
        message = re.sub(r"\d+(\.\d+)?", "#", str(run.get("message") or "no message"))[:120]
        said[f"{run.get('status')} on {run.get('node') or 'no node'}: {message}"] += 1
    return f"Odin's record of {sum(said.values())} of them: " + "; ".join(
        f"{text} x{count}" for text, count in said.most_common(4)
    )


_LEVEL = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ \S+ (WARNING|ERROR|CRITICAL) (.*)")


def _blank(text: str) -> str:
    return re.sub(r"[0-9a-f]{12}@\S+|\d+(\.\d+)?", "#", text)


def _log_digest(nodes: Sequence[Engine], since: float, top: int = 3) -> str:
    """The engines' warnings and errors from ``since`` on (numbers blanked, the most frequent
    first), and how many came before it (the deploy, a cluster's forming)."""
    said: Counter[str] = Counter()
    before = 0
    for node in nodes:
        with contextlib.suppress(OSError):
            entry = ""  # the entry being read (with the last line of its traceback, if any)
            tail = ""
            for line in [*(node.root / "engine.log").read_text(errors="replace").splitlines(), ""]:
                found = _LEVEL.match(line)
                if not found and line and entry:
                    if line.strip() and not line.startswith((" ", "Traceback")):
                        tail = line.strip()
                    continue
                if entry:
                    said[entry + (f" -> {_blank(tail)[:100]}" if tail else "")] += 1
                entry, tail = "", ""
                if not found:
                    continue
                with contextlib.suppress(ValueError, OverflowError):
                    if time.mktime(time.strptime(found.group(1), "%Y-%m-%d %H:%M:%S")) < since:
                        before += 1
                        continue
                entry = f"{found.group(2)} {_blank(found.group(3))[:140]}"
    earlier = f"; {before} before it" if before else ""
    if not said:
        return f"no warning or error logged during the burst{earlier}"
    return f"{sum(said.values())} warnings/errors logged during the burst{earlier}: " + "; ".join(
        f"{text!r} x{count}" for text, count in said.most_common(top)
    )


# -- figures -----------------------------------------------------------------------


def _at_goal_size(n: int, goal: str) -> str:
    return goal if n == FULL_N else f"{goal} (judged at {FULL_N:,})"


def _timing_figures(where: str, result: OdinBurst, goal_s: float, judge: bool) -> list[Figure]:
    burst = result.burst
    n = burst.due
    met_time = burst.lost == 0 and burst.last <= goal_s if judge else None
    goal = _at_goal_size(n, f"<= {goal_s:.0f} s, all started")
    deploy = f"deployed at {result.deploy_rate:.0f} jobs/s"
    return [
        Figure(
            f"burst of {n:,}, {where}: instant to the last run's start",
            burst.last,
            "s",
            goal,
            "; ".join(filter(None, [burst.spread(), deploy, burst.note])),
            met_time,
        ),
        Figure(
            f"burst of {n:,}, {where}: runs started per second",
            burst.rate,
            "runs/s",
            "",
            "started runs / instant to the last start",
        ),
        Figure(
            f"burst of {n:,}, {where}: start lag p99",
            percentile(burst.lags, 0.99),
            "s",
            "",
            "instant to the job's first line (its own clock)",
        ),
        Figure(
            f"burst of {n:,}, {where}: runs lost",
            burst.lost,
            "runs",
            "0",
            "; ".join(filter(None, [f"of {n:,} due", result.lost_why])),
            burst.lost == 0,
        ),
        Figure(
            f"burst of {n:,}, {where}: runs doubled",
            burst.doubled,
            "runs",
            "0",
            "a tick that started twice",
            burst.doubled == 0,
        ),
        Figure(
            f"burst of {n:,}, {where}: leader changed",
            float(result.leader_changed),
            "yes/no",
            "no (0)",
            result.leader_note(),
            not result.leader_changed,
        ),
    ]


def _engine_figures(where: str, result: OdinBurst, n: int) -> list[Figure]:
    watch = result.watch
    lists, runs = watch.lists, watch.runs
    worst_list = max(lists.times, default=math.nan)
    names = sorted(watch.fds)
    fds = ", ".join(f"{k} {watch.fds[k]:,}" for k in names)
    rss = ", ".join(f"{k} {watch.rss_mib[k]:.0f}" for k in names)
    threads = ", ".join(f"{k} {watch.threads_peak.get(k, 0)}" for k in names)
    children = ", ".join(f"{k} {watch.children_peak.get(k, 0):,}" for k in names)
    kinds = "; ".join(
        f"{k} at {count:,}: " + ", ".join(f"{kind} {n:,}" for kind, n in found.most_common(4))
        for k, (count, found) in sorted(watch.fd_kinds.items())
    )
    return [
        Figure(
            f"burst of {n:,}, {where}: odin list wall time during the burst, max",
            worst_list * 1e3,
            "ms",
            f"<= {LIST_GOAL_S * 1e3:.0f} ms",
            f"{lists.note()}; {result.quiet_list_s * 1e3:.0f} ms just before the burst",
            None if not lists.times else worst_list <= LIST_GOAL_S and not lists.errors,
        ),
        Figure(
            f"burst of {n:,}, {where}: odin run -i (another job) wall time during the burst, max",
            max(runs.times, default=math.nan) * 1e3,
            "ms",
            "",
            runs.note(),
        ),
        Figure(
            f"burst of {n:,}, {where}: engine descriptors, peak",
            float(max(watch.fds.values(), default=0)),
            "fds",
            "",
            f"/proc/<pid>/fd every 0.2 s: {fds}; peak child processes {children}; peak "
            f"threads {threads}; by kind: {kinds or 'not taken'}",
        ),
        Figure(
            f"burst of {n:,}, {where}: engine resident memory, peak",
            max(watch.rss_mib.values(), default=math.nan),
            "MiB",
            "",
            rss + " MiB",
        ),
        Figure(
            f"burst of {n:,}, {where}: event loop worst stall",
            watch.worst_stall() * 1e3,
            "ms",
            "",
            f"GET /v1/loop per-second peaks; engine log: {result.log}",
        ),
    ]


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def _versus(odin: Burst, others: Sequence[Burst]) -> list[Figure]:
    figures: list[Figure] = []
    for other in others:
        figures.append(
            Figure(
                f"burst of {other.due:,}, {other.system}: instant to the last run's start",
                other.last,
                "s",
                "",
                "; ".join(filter(None, [other.spread(), other.note])),
            )
        )
        if not other.lags or not odin.lags:
            figures.append(
                Figure(
                    f"burst of {odin.due:,}, Odin / {other.system}: time to the last start",
                    math.nan,
                    "x",
                    "",
                    "no ratio: one of the two bursts started no run",
                )
            )
            continue
        if odin.due == other.due:
            ratio, how = _ratio(odin.last, other.last), "time to the last start"
        else:  # the other launched fewer: compare the time per run started
            ratio = _ratio(_ratio(odin.last, len(odin.lags)), _ratio(other.last, len(other.lags)))
            how = f"time to the last start per run started ({odin.due:,} vs {other.due:,} runs)"
        p99 = (percentile(odin.lags, 0.99), percentile(other.lags, 0.99))
        figures.append(
            Figure(
                f"burst of {odin.due:,}, Odin / {other.system}: time to the last start",
                ratio,
                "x",
                "",
                f"{how}; start lag p99 {_ratio(*p99):.2f}x (Odin {p99[0]:.2f} s, "
                f"{other.system} {p99[1]:.2f} s); below 1: Odin is faster",
            )
        )
    return figures


# -- the run -------------------------------------------------------------------------


@contextlib.contextmanager
def open_files(limit: int) -> Iterator[str]:
    """This process's (and so its children's) open-file limit raised to ``limit`` while
    inside; yields a note when it could not be."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    note = ""
    try:
        if before[0] < limit:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, before[1])))
    except (OSError, ValueError) as error:
        note = f"this process may not raise it: {error}"
    try:
        yield note
    finally:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, before)


BARE_FDS_PER_RUN = 2
"""The bare loop holds a pipe and a pidfd per child, and forks a whole burst before it reads
any output: a burst of N needs 2N descriptors at once."""
FD_SLACK = 500


@contextlib.contextmanager
def thread_errors() -> Iterator[list[str]]:
    """What threads raised while inside (APScheduler's own scheduler thread may die)."""
    said: list[str] = []
    before = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        said.append(f"{args.exc_type.__name__}: {args.exc_value}"[:160])

    threading.excepthook = hook
    try:
        yield said
    finally:
        threading.excepthook = before


def _external(n: int, programs: Programs) -> list[Burst]:
    """The bare loop and APScheduler, each launching ``n`` runs due at one instant (the bare
    loop fewer when this process may not hold 2 descriptors per run: the note says so)."""
    found: list[Burst] = []
    fit = max(1, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - FD_SLACK) // BARE_FDS_PER_RUN)
    cut = (
        f"{min(n, fit):,} runs, not {n:,}: it holds {BARE_FDS_PER_RUN} descriptors per run and "
        f"this process may open {resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,}"
        if fit < n
        else ""
    )
    runners: list[tuple[str, Callable[..., Outcome], int, str]] = [
        ("bare loop", run_bare, min(n, fit), cut),
        ("APScheduler", run_aps, n, ""),
    ]
    for name, runner, size, note in runners:
        instant = float(math.ceil(time.time() + 2.0))
        jobs = _jobs(BURST_GROUP, size, daily_at(instant), PY_CODE, "python")
        try:
            with thread_errors() as raised:
                burst = _from_outcome(runner(jobs, instant, instant + 1.0, programs))
            if raised:
                note = "; ".join(filter(None, [note, f"its threads raised {raised[0]!r}"]))
            found.append(replace(burst, note=note))
        except Exception as error:  # a system that breaks is a figure, not a crash
            found.append(Burst(name, size, (), note=f"failed: {_why(error)}"))
    return found


def _one_node(sizes: Sizes, language: str, group: int, limit_note: str) -> OdinBurst:
    """A burst on one fresh engine."""
    n = sizes.n if language == "python" else sizes.go_n
    with engines(1, f"burst-{language}") as (engine,):
        result = odin_burst([engine], group, n, sizes, f"Odin ({language}, one node)", language)
        limit = f"the engine's open-file limit {_fd_limit(engine)}"
    if limit_note:
        limit += f" (its systemd unit sets {OPEN_FILES:,}; {limit_note})"
    note = "; ".join(filter(None, [result.burst.note, limit]))
    result.burst = replace(result.burst, note=note)
    return result


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def run(quick: bool = False) -> list[Figure]:
    sizes = Sizes.of(quick)
    figures: list[Figure] = []
    programs = Programs()
    try:
        with open_files(OPEN_FILES) as limit_note:
            others = _external(sizes.n, programs)
            figures += _python_one_node(sizes, others, limit_note)
            figures += _cluster(sizes)
            figures += _go(sizes)
            figures += _slots_sweep(sizes)
    finally:
        programs.close()
    return figures


def _python_one_node(sizes: Sizes, others: list[Burst], limit_note: str) -> list[Figure]:
    title = f"burst of {sizes.n:,} at one instant (one node)"
    for other in others:
        if other.lags:  # a system that failed has no curve
            plots.add_distribution(title, other.system, list(other.lags))
    try:
        result = _one_node(sizes, "python", BURST_GROUP, limit_note)
    except Exception as error:  # the module reports a burst it could not measure, never raises
        why = _why(error)
        return [
            skipped(
                f"burst of {sizes.n:,}, one node: instant to the last run's start",
                "s",
                f"<= {ONE_NODE_GOAL_S:.0f} s",
                why,
            ),
            *_versus(Burst("Odin", sizes.n, ()), others),
        ]
    if result.burst.lags:
        plots.add_distribution(title, "Odin", list(result.burst.lags))
    figures = _timing_figures("one node", result, ONE_NODE_GOAL_S, sizes.n == FULL_N)
    figures.insert(
        2,
        Figure(
            f"burst of {sizes.n:,}, one node: runs started per second, goal rate",
            result.burst.rate,
            "runs/s",
            _at_goal_size(sizes.n, f">= {GOAL_RATE:.0f}/s"),
            "the same as the rate above, judged",
            result.burst.rate >= GOAL_RATE if sizes.n == FULL_N else None,
        ),
    )
    return figures + _engine_figures("one node", result, sizes.n) + _versus(result.burst, others)


def _cluster(sizes: Sizes) -> list[Figure]:
    where = f"{NODES} nodes"
    try:
        with engines(NODES, "burst-cluster") as nodes:
            result = odin_burst(
                nodes, CLUSTER_GROUP, sizes.cluster_n, sizes, f"Odin ({where})", "python"
            )
    except Exception as error:  # the module reports a burst it could not measure, never raises
        why = f"no {where} burst ({_why(error)})"[:300]
        return [
            skipped(
                f"burst of {sizes.cluster_n:,}, {where}: instant to the last run's start",
                "s",
                f"<= {CLUSTER_GOAL_S:.0f} s",
                why,
            ),
            skipped(f"burst of {sizes.cluster_n:,}, {where}: runs lost", "runs", "0", why),
            skipped(f"burst of {sizes.cluster_n:,}, {where}: runs doubled", "runs", "0", why),
        ]
    judge = sizes.cluster_n == FULL_N
    figures = _timing_figures(where, result, CLUSTER_GOAL_S, judge)
    engine = _engine_figures(where, result, sizes.cluster_n)
    figures += [engine[0], engine[2], engine[4]]  # odin list, descriptors, loop stalls
    return figures


def _go(sizes: Sizes) -> list[Figure]:
    if sizes.go_n == 0:
        return [skipped("burst of Go jobs, one node", "s", "", "full mode only")]
    try:
        result = _one_node(sizes, "go", GO_GROUP, "")
    except Exception as error:  # the module reports a burst it could not measure, never raises
        return [skipped(f"burst of {sizes.go_n:,} Go jobs, one node", "s", "", _why(error))]
    where = "one node, Go"
    return _timing_figures(where, result, ONE_NODE_GOAL_S, sizes.go_n == FULL_N)[:5]


def _slots_sweep(sizes: Sizes) -> list[Figure]:
    """The same one-node burst at several ``--launch-slots``: time to the last start, the
    worst ``odin list`` and the peak descriptors, side by side (full mode only)."""
    if sizes.go_n == 0:
        return [skipped("burst, launch slots sweep", "s", "", "full mode only")]
    figures: list[Figure] = []
    small = replace(sizes, n=SWEEP_N)
    for slots in SWEEP_SLOTS:
        name = f"burst of {SWEEP_N:,}, one node, --launch-slots {slots}"
        try:
            with engines(1, "burst-slots", ("--launch-slots", str(slots))) as (engine,):
                result = odin_burst([engine], SWEEP_GROUP, SWEEP_N, small, name, "python")
        except Exception as error:  # the module reports a burst it could not measure
            figures.append(
                skipped(f"{name}: instant to the last run's start", "s", "", _why(error))
            )
            continue
        watch = result.watch
        worst_list = max(watch.lists.times, default=math.nan)
        fds = max(watch.fds.values(), default=0)
        note = (
            f"{result.burst.spread()}; odin list max {worst_list * 1e3:.0f} ms "
            f"(p50 {percentile(watch.lists.times, 0.5) * 1e3:.0f} ms); peak descriptors {fds:,}; "
            f"lost {result.burst.lost}, doubled {result.burst.doubled}"
            + (" (the default)" if slots == config.LAUNCH_SLOTS else "")
        )
        figures.append(
            Figure(f"{name}: instant to the last run's start", result.burst.last, "s", "", note)
        )
    return figures
