"""``GET /metrics``: the Prometheus text format, or OpenMetrics to a scraper that asks for it;
written by hand (no client library: ``bench/limits.md`` has what one cost per scrape).

Counters, histograms and each job's last success grow from ``RunFinished`` events
this node applies (every node applies every run, so each node reports the whole
cluster), seeded at start from the replicated window of finished runs. Gauges are
read at scrape time: the last numeric ``watch`` value of each series, each job's
next run and failure streak, the replicated alerts by state, leadership,
membership, the Raft commit index and how long the event loop was held.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from odin.cluster.model import Alert, DeliveryState, Job, Run, RunStatus
from odin.cluster.placement import stranded
from odin.cluster.state import Event, JobRemoved, RunFinished
from odin.engine.admission import QueueView
from odin.engine.loopwatch import Stalls
from odin.engine.node import ReadState
from odin.engine.planner import schedule_for, upcoming_tick
from odin.jobs.notify import CHOSEN_EVENTS, AlertEvent

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0)
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_FORMAT = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * len(self.bounds)
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.n += 1


JobKey = tuple[str, int]  # (job id, owner uid): the owner decides who may see the series
WatchKey = tuple[str, int, str]  # (job id, owner uid, watch series name)


class RunMetrics:
    """Runs by job and outcome, with duration and dispatch-lag histograms, and the end of
    each job's last succeeded run (kept past the replicated window: a job that keeps failing
    must not lose it)."""

    def __init__(self) -> None:
        self.outcomes: dict[tuple[str, int, str], int] = {}
        self.durations: dict[JobKey, Histogram] = {}
        self.lags: dict[JobKey, Histogram] = {}
        self.last_success: dict[JobKey, float] = {}
        self._lock = threading.Lock()

    def observe(self, run: Run) -> None:
        key = (run.job_id, run.owner_uid)
        with self._lock:
            outcome = (run.job_id, run.owner_uid, str(run.status))
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if run.duration is not None:
                self.durations.setdefault(key, Histogram(DURATION_BUCKETS)).observe(run.duration)
            if run.lag is not None:
                self.lags.setdefault(key, Histogram(LAG_BUCKETS)).observe(max(0.0, run.lag))
            if run.status is RunStatus.SUCCEEDED and run.finished_at is not None:
                self.last_success[key] = max(run.finished_at, self.last_success.get(key, 0.0))

    def handle(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self.observe(event.run)
        elif isinstance(event, JobRemoved):
            with self._lock:
                self.last_success.pop((event.job.id, event.job.owner_uid), None)

    def seed(self, runs: Iterable[Run]) -> None:
        for run in runs:
            if run.status.finished:
                self.observe(run)


@dataclass(frozen=True)
class ClusterFacts:
    node: str
    is_leader: bool
    members: tuple[str, ...]
    raft: Mapping[str, Any]
    running: int
    stalls: Stalls | None = None  # this engine's event-loop watch (odin.engine.loopwatch)
    launches: QueueView | None = None  # this node's admission control (odin.engine.admission)
    alert_attempts: Mapping[bool, int] | None = None  # this node's deliveries, by success


@dataclass(frozen=True)
class JobHealth:
    """What the job and alert gauges read from the replicated state (``job_health``)."""

    now: float
    members: frozenset[str]  # node names: a job none of whose nodes is one gets no run
    failing: Mapping[str, int]  # job id -> failed ticks in a row (absent: none)
    alerts: tuple[Alert, ...]  # every replicated alert (frozen values)


def job_health(state: ReadState, now: float, node: str) -> JobHealth:
    """The gauges' share of the state, for ``EngineNode.read``: copies only, made at C speed,
    so that the Raft thread waits little (alerts are counted after the lock is let go)."""
    return JobHealth(
        now=now,
        members=frozenset(state.nodes) | {node},
        failing=dict(state.streaks),
        alerts=tuple(state.alerts.values()),
    )


class NextRuns:
    """Next planned instants by (schedule, timezone), kept between scrapes: each stays right
    until it passes, so a scrape computes only the schedules that fired since the last one."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, ...], tuple[float, float | None]] = {}  # (since, next)
        self._lock = threading.Lock()

    def instants(
        self, jobs: Iterable[Job], now: float, members: Collection[str]
    ) -> dict[str, float]:
        """Each job's next planned instant after ``now``, as ``odin list`` shows it (none when
        paused or stranded, or when its schedule fires no more)."""
        found: dict[str, float] = {}
        with self._lock:
            known = self._known
            for job in jobs:
                if job.paused or stranded(job, members):
                    continue
                key = _key(job)
                entry = known.get(key)
                if entry is None or now < entry[0] or (entry[1] is not None and now >= entry[1]):
                    entry = known[key] = (now, upcoming_tick(job, now))
                if entry[1] is not None:
                    found[job.id] = entry[1]
        return found

    def forget_beyond(self, size: int) -> None:
        """Start afresh once more schedules are kept than ``size`` (jobs were removed)."""
        with self._lock:
            if len(self._known) > size:
                self._known = {}


def _key(job: Job) -> tuple[str, ...]:
    """What a job's next instant depends on: its schedule and zone, and its id and pause when
    a spread, an ``H`` or a pause until an instant make it its own."""
    own = job.paused_until is not None or schedule_for(job.schedule, job.timezone).needs_job
    if not own:
        return (job.schedule, job.timezone)
    return (job.schedule, job.timezone, job.id, str(job.paused_until))


def wants_openmetrics(accept: str) -> bool:
    """Whether an ``Accept`` header prefers OpenMetrics (any version; 1.0.0 is what we write)
    to the text format, by q-value, a tie going to OpenMetrics. Prometheus sends
    ``application/openmetrics-text;version=1.0.0;q=0.5,...,text/plain;version=0.0.4;q=0.3,*/*;q=0.2``.
    """
    openmetrics = text = 0.0
    for media_range in accept.lower().split(","):
        media, *params = (part.strip() for part in media_range.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media == "application/openmetrics-text":
            openmetrics = max(openmetrics, q)
        elif media in ("text/plain", "text/*", "*/*"):
            text = max(text, q)
    return openmetrics > 0 and openmetrics >= text


def exposition(
    metrics: RunMetrics,
    jobs: Mapping[str, Job],
    watches: Mapping[WatchKey, float],
    cluster: ClusterFacts,
    visible: Callable[[int], bool],
    accept: str = "",
    health: JobHealth | None = None,
    schedules: NextRuns | None = None,
) -> tuple[bytes, str]:
    """The body and content type answering ``accept`` (the request's ``Accept`` header):
    OpenMetrics if it asks for it (``wants_openmetrics``), else the Prometheus text format."""
    openmetrics = wants_openmetrics(accept)
    text = render(
        metrics,
        jobs,
        watches,
        cluster,
        visible,
        openmetrics=openmetrics,
        health=health,
        schedules=schedules,
    )
    return text.encode(), OPENMETRICS_FORMAT if openmetrics else TEXT_FORMAT


def _label(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'"{text}"'


def _labels(**pairs: object) -> str:
    return "{" + ",".join(f"{k}={_label(v)}" for k, v in pairs.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _bound(value: float, openmetrics: bool) -> str:
    """A bucket's ``le``: ``5`` in the text format (as ever), ``5.0`` in OpenMetrics (its rule)."""
    return repr(float(value)) if openmetrics else _number(value)


def _family(name: str, kind: str, help_text: str, openmetrics: bool) -> list[str]:
    """The ``# HELP`` and ``# TYPE`` lines; an OpenMetrics counter's family drops ``_total``."""
    if openmetrics and kind == "counter":
        name = name.removesuffix("_total")
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _histogram(
    name: str, series: Mapping[JobKey, Histogram], names: Mapping[str, str], openmetrics: bool
) -> list[str]:
    lines: list[str] = []
    ends: dict[tuple[float, ...], list[str]] = {}  # each bound's `le="…"} `, once per scrape
    for (job_id, _owner), hist in sorted(series.items()):
        base = f"job_id={_label(job_id)},job={_label(names.get(job_id, ''))}"
        bucket = f"{name}_bucket{{{base},le="
        le = ends.get(hist.bounds)
        if le is None:
            le = ends[hist.bounds] = [f'"{_bound(b, openmetrics)}"}} ' for b in hist.bounds]
        lines += [bucket + end + str(count) for end, count in zip(le, hist.counts, strict=True)]
        lines.append(f'{bucket}"+Inf"}} {hist.n}')
        lines.append(f"{name}_sum{{{base}}} {hist.total!r}")
        lines.append(f"{name}_count{{{base}}} {hist.n}")
    return lines


def render(
    metrics: RunMetrics,
    jobs: Mapping[str, Job],
    watches: Mapping[WatchKey, float],
    cluster: ClusterFacts,
    visible: Callable[[int], bool],
    *,
    openmetrics: bool = False,
    health: JobHealth | None = None,
    schedules: NextRuns | None = None,
) -> str:
    """The exposition; series of jobs the reader may not see are left out (watches, job
    gauges and alerts too); without ``health`` the job and alert families have no samples;
    ``schedules`` keeps next runs between scrapes."""
    names = {job_id: job.name for job_id, job in jobs.items()}
    with metrics._lock:
        outcomes = {k: v for k, v in metrics.outcomes.items() if visible(k[1])}
        durations = {k: v for k, v in metrics.durations.items() if visible(k[1])}
        lags = {k: v for k, v in metrics.lags.items() if visible(k[1])}
        last_success = dict(metrics.last_success)
    out = _family(
        "odin_runs_total",
        "counter",
        "Finished runs by job and outcome, since this engine started.",
        openmetrics,
    )
    for (job_id, _owner, status), count in sorted(outcomes.items()):
        out.append(
            f"odin_runs_total{_labels(job_id=job_id, job=names.get(job_id, ''), outcome=status)} {count}"
        )
    out += _family("odin_run_duration_seconds", "histogram", "How long runs took.", openmetrics)
    out += _histogram("odin_run_duration_seconds", durations, names, openmetrics)
    out += _family(
        "odin_run_lag_seconds",
        "histogram",
        "Dispatch lag: start time minus scheduled instant.",
        openmetrics,
    )
    out += _histogram("odin_run_lag_seconds", lags, names, openmetrics)
    out += _watch_lines({k: v for k, v in watches.items() if visible(k[1])}, names)
    shown = sorted((job for job in jobs.values() if visible(job.owner_uid)), key=lambda j: j.id)
    if schedules is not None:
        schedules.forget_beyond(2 * len(jobs) + 100)
    out += _job_lines(shown, last_success, health, schedules or NextRuns())
    out += _alert_lines(health.alerts if health else (), visible, health is not None)
    out += _cluster_lines(cluster, openmetrics)
    if openmetrics:
        out.append("# EOF")
    return "\n".join(out) + "\n"


def _watch_lines(watches: Mapping[WatchKey, float], names: Mapping[str, str]) -> list[str]:
    """The ``odin_watch_value`` gauge of each (already filtered) watch series."""
    lines = [
        "# HELP odin_watch_value Last numeric value of each SDK watch series.",
        "# TYPE odin_watch_value gauge",
    ]
    for (job_id, _owner, desc), value in sorted(watches.items()):
        labels = _labels(job_id=job_id, job=names.get(job_id, ""), name=desc)
        lines.append(f"odin_watch_value{labels} {value!r}")
    return lines


def _job_lines(
    jobs: list[Job],
    last_success: Mapping[JobKey, float],
    health: JobHealth | None,
    schedules: NextRuns,
) -> list[str]:
    """Each (already filtered) job's last success, next planned instant and failure streak;
    without ``health`` (the state was not read) only the families' names."""
    last = [
        "# HELP odin_job_last_success_timestamp_seconds When the job's last succeeded run ended "
        "(as far as this engine knows since it started).",
        "# TYPE odin_job_last_success_timestamp_seconds gauge",
    ]
    upcoming = [
        "# HELP odin_job_next_run_timestamp_seconds The job's next planned instant.",
        "# TYPE odin_job_next_run_timestamp_seconds gauge",
    ]
    failing = [
        "# HELP odin_job_failing The job's failed ticks in a row (0: the last one succeeded).",
        "# TYPE odin_job_failing gauge",
    ]
    if health is None:
        return last + upcoming + failing
    instants = schedules.instants(jobs, health.now, health.members)
    for job in jobs:
        labels = _labels(job_id=job.id, job=job.name, owner=job.owner)
        success = last_success.get((job.id, job.owner_uid))
        if success is not None:
            last.append(f"odin_job_last_success_timestamp_seconds{labels} {_number(success)}")
        instant = instants.get(job.id)
        if instant is not None:
            upcoming.append(f"odin_job_next_run_timestamp_seconds{labels} {_number(instant)}")
        failing.append(f"odin_job_failing{labels} {health.failing.get(job.id, 0)}")
    return last + upcoming + failing


def _alert_lines(alerts: Iterable[Alert], visible: Callable[[int], bool], known: bool) -> list[str]:
    """The replicated alerts of the reader's jobs by delivery state and event (every pair of
    a state and an event a job may choose, zero included, when the state was read)."""
    lines = [
        "# HELP odin_alerts Alerts the cluster keeps, by delivery state and event.",
        "# TYPE odin_alerts gauge",
    ]
    if not known:
        return lines
    counts: dict[tuple[DeliveryState, AlertEvent], int] = {
        (state, event): 0 for state in DeliveryState for event in CHOSEN_EVENTS
    }
    for alert in alerts:
        if visible(alert.owner_uid):
            pair = (alert.state, alert.event)
            counts[pair] = counts.get(pair, 0) + 1
    for (state, event), count in sorted(counts.items()):
        lines.append(f"odin_alerts{_labels(state=state, event=event)} {count}")
    return lines


def _cluster_lines(cluster: ClusterFacts, openmetrics: bool) -> list[str]:
    node = cluster.node
    lines = [
        "# HELP odin_is_leader 1 if this node is the Raft leader.",
        "# TYPE odin_is_leader gauge",
        f"odin_is_leader{_labels(node=node)} {int(cluster.is_leader)}",
        "# HELP odin_raft_leader The leader this node knows of (value always 1).",
        "# TYPE odin_raft_leader gauge",
    ]
    leader = cluster.raft.get("leader")
    if leader:
        lines.append(f"odin_raft_leader{_labels(node=node, leader=leader)} 1")
    lines += [
        "# HELP odin_raft_member Cluster members by Raft address.",
        "# TYPE odin_raft_member gauge",
    ]
    lines += [f"odin_raft_member{_labels(node=node, addr=m)} 1" for m in cluster.members]
    lines += [
        "# HELP odin_raft_members Number of cluster members.",
        "# TYPE odin_raft_members gauge",
        f"odin_raft_members{_labels(node=node)} {len(cluster.members)}",
    ]
    for key, help_text in (
        ("commit_index", "Raft commit index of this node."),
        ("last_applied", "Last Raft entry applied on this node."),
        ("term", "Current Raft term."),
    ):
        value = cluster.raft.get(key)
        if isinstance(value, int | float):
            lines += [
                f"# HELP odin_raft_{key} {help_text}",
                f"# TYPE odin_raft_{key} gauge",
                f"odin_raft_{key}{_labels(node=node)} {value}",
            ]
    lines += [
        "# HELP odin_runs_running Runs executing on this node now.",
        "# TYPE odin_runs_running gauge",
        f"odin_runs_running{_labels(node=node)} {cluster.running}",
    ]
    lines += _family(
        "odin_alert_delivery_attempts_total",
        "counter",
        "Alert deliveries this node attempted (as leader), by result, since it started.",
        openmetrics,
    )
    if cluster.alert_attempts is not None:
        for result, ok in (("failed", False), ("ok", True)):
            labels = _labels(node=node, result=result)
            lines.append(
                f"odin_alert_delivery_attempts_total{labels} {cluster.alert_attempts.get(ok, 0)}"
            )
    if cluster.launches is not None:
        lines += _launch_lines(node, cluster.launches)
    if cluster.stalls is not None:
        lines += _stall_lines(node, cluster.stalls, openmetrics)
    return lines


def _launch_lines(node: str, queue: QueueView) -> list[str]:
    """This node's launch queue: slots in use, runs waiting for one, how far behind it is."""
    lines: list[str] = []
    for name, help_text, value in (
        ("launch_slots", "Runs this node makes and starts at once, at most.", queue.limit),
        ("launch_slots_busy", "Launch slots in use now.", queue.busy),
        ("launch_waiting", "Runs due on this node waiting for a launch slot.", queue.waiting),
        (
            "launch_behind_seconds",
            "How long the oldest run waiting for a launch slot has been due.",
            round(queue.behind_s, 3),
        ),
    ):
        lines += [
            f"# HELP odin_{name} {help_text}",
            f"# TYPE odin_{name} gauge",
            f"odin_{name}{_labels(node=node)} {value}",
        ]
    return lines


def _stall_lines(node: str, stalls: Stalls, openmetrics: bool) -> list[str]:
    """The event loop's worst stalls (gauges) and how late its watch woke (a histogram)."""
    lines = [
        "# HELP odin_loop_stall_max_seconds Longest the engine's event loop was held, since start.",
        "# TYPE odin_loop_stall_max_seconds gauge",
        f"odin_loop_stall_max_seconds{_labels(node=node)} {stalls.worst_s!r}",
        f"# HELP odin_loop_stall_recent_seconds Longest the event loop was held in the last "
        f"{stalls.window_s} s.",
        "# TYPE odin_loop_stall_recent_seconds gauge",
        f"odin_loop_stall_recent_seconds{_labels(node=node)} {stalls.recent_s!r}",
        "# HELP odin_loop_stall_seconds How late the event loop's watch woke.",
        "# TYPE odin_loop_stall_seconds histogram",
    ]
    for bound, count in zip(stalls.bounds, stalls.counts, strict=True):
        le = _bound(bound, openmetrics)
        lines.append(f"odin_loop_stall_seconds_bucket{_labels(node=node, le=le)} {count}")
    lines += [
        f"odin_loop_stall_seconds_bucket{_labels(node=node, le='+Inf')} {stalls.wakes}",
        f"odin_loop_stall_seconds_sum{_labels(node=node)} {stalls.total_s!r}",
        f"odin_loop_stall_seconds_count{_labels(node=node)} {stalls.wakes}",
    ]
    return lines
