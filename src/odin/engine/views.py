"""What the service answers, for one caller: jobs and runs as typed values.

Each answer is a frozen dataclass whose fields are the keys of the JSON the API
sends (the CLI, the SDKs and the dashboard read that JSON). FastAPI describes them
in the OpenAPI document (``response_model``) and serialises a single one through
pydantic; lists go out through orjson, which writes dataclasses and enums as they
are (as fast as plain dicts, where pydantic models would cost a second at 100,000
jobs).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

from odin.cluster.lease import LeaseState
from odin.cluster.model import (
    Alert,
    DeliveryState,
    Job,
    LinkOn,
    NodeInfo,
    Record,
    Run,
    RunReason,
    RunStatus,
    fields_of,
)
from odin.cluster.placement import stranded_reason
from odin.engine.excluded import SkippedView, run_times, skipped_views
from odin.engine.planner import job_schedule, schedule_for
from odin.jobs.fields import Catchup, OnExcluded, Overlap
from odin.jobs.language import Language
from odin.jobs.notify import AlertEvent
from odin.notify.destinations import mask
from odin.schedule.exceptions import Exclusions


def iso(instant: float | None) -> str | None:
    if instant is None:
        return None
    return dt.datetime.fromtimestamp(instant, dt.UTC).isoformat()


def next_runs(
    job: Job,
    now: float | dt.datetime,
    count: int,
    members: Collection[str] = (),
    excluded: Exclusions | None = None,
) -> list[str]:
    """The job's next ``count`` fire times after ``now`` (none when paused, or when none of
    its ``nodes:`` is among ``members``: the leader plans no run of it then), from the end of
    a pause until an instant, and with its own spread's offset; with ``excluded`` (its
    ``except:`` resolved), the ticks they exclude left out, or moved (``on_excluded``)."""
    if job.paused or stranded_reason(job, members):
        return []
    schedule = job_schedule(job)
    moment = _first_moment(job, now)
    if excluded:
        return run_times(schedule, moment, count, job, excluded)
    found: list[str] = []
    for _ in range(count):
        following = schedule.next_after(moment)
        if following is None:
            break
        found.append(following.isoformat())
        moment = following
    return found


def _first_moment(job: Job, now: float | dt.datetime) -> dt.datetime:
    """Where the job's next ticks are looked for: ``now``, or the end of its pause."""
    moment = now if isinstance(now, dt.datetime) else dt.datetime.fromtimestamp(now, dt.UTC)
    if job.paused_until is not None and job.paused_until > moment.timestamp():
        resume = dt.datetime.fromtimestamp(job.paused_until, dt.UTC)
        moment = resume - dt.timedelta(microseconds=1)  # a tick at its very end runs
    return moment


def excluded_ticks(
    job: Job,
    now: float | dt.datetime,
    count: int,
    members: Collection[str] = (),
    excluded: Exclusions | None = None,
) -> list[SkippedView]:
    """The ticks its exceptions skip among the job's next ``count`` runs, with the rule of
    each (``odin describe``)."""
    if job.paused or stranded_reason(job, members) or not excluded:
        return []
    return skipped_views(job, job_schedule(job), _first_moment(job, now), count, excluded)


@lru_cache(maxsize=4096)
def schedule_text(text: str, timezone: str) -> str:
    """The schedule in words, as ``odin list`` shows it (many jobs share a few schedules)."""
    return schedule_for(text, timezone).describe()


NextRunMemo = dict[tuple[str, str], str | None]
"""Next fire times after one instant, by (schedule, timezone): a list computes each once."""


def _next_run(
    job: Job,
    now: float | dt.datetime,
    memo: NextRunMemo | None,
    members: Collection[str],
    excluded: Exclusions | None = None,
) -> str | None:
    if job.paused or stranded_reason(job, members):
        return None
    if job.paused_until is not None or schedule_for(job.schedule, job.timezone).needs_job:
        memo = None  # its instants are its own
    if excluded:
        memo = None  # and so are those of a job with exceptions
    key = (job.schedule, job.timezone)
    if memo is not None and key in memo:
        return memo[key]
    upcoming = next_runs(job, now, 1, excluded=excluded)
    found = upcoming[0] if upcoming else None
    if memo is not None:
        memo[key] = found
    return found


@dataclass(frozen=True, slots=True)
class JobSummary:
    """One row of ``odin list``."""

    id: str
    name: str
    description: str
    language: Language
    schedule: str
    schedule_text: str  # the schedule in words
    timezone: str
    owner: str
    owner_uid: int
    links: Mapping[str, LinkOn]  # target job id -> when it runs after this one
    next_run: str | None  # ISO instant; None when paused or no run can be planned
    not_planned: str | None  # why no run is planned, when none of its nodes is a member
    last_status: RunStatus | None
    last_run: str | None  # run id
    paused: bool
    failing: int  # failed ticks in a row (0: the last one succeeded, or none has run)
    paused_until: str | None  # ISO instant: paused until then (None: not, or no longer)


@dataclass(frozen=True, slots=True)
class JobDetail(JobSummary):
    """Everything ``odin describe`` shows of a job, with its next five fire times."""

    file: str
    owner_gid: int
    timeout_s: float | None
    retries: int
    overlap: Overlap
    catchup: Catchup
    env: Mapping[str, str]
    workdir: str | None
    nodes: Sequence[str]
    created_at: str | None  # ISO instants
    updated_at: str | None
    version: int
    code_sha256: str
    next_runs: Sequence[str]
    notify: Sequence[NotifyView]
    warn_after_s: float | None
    grace_s: float | None  # None: the engine's default
    jitter_s: float | None  # each scheduled run starts up to this long after its tick
    spread_offset_s: int | None  # its schedule's spread: this job's offset (None: no spread)
    exceptions: Sequence[str]  # its except: items (docs/schedules.md)
    on_excluded: OnExcluded
    skipped: Sequence[SkippedView]  # the ticks they skip among its next runs, and why


def job_summary(
    job: Job,
    links: Mapping[str, LinkOn],
    last: Run | None,
    now: float | dt.datetime,
    memo: NextRunMemo | None = None,
    members: Collection[str] = (),
    failing: int = 0,
    excluded: Exclusions | None = None,
) -> JobSummary:
    """One row of ``odin list``; ``now`` may be given as an aware datetime, made once per list,
    with a ``memo`` shared by the rows of that list (jobs share a handful of schedules).
    ``members`` (the cluster's node names) tell whether the job can get runs at all."""
    return JobSummary(
        id=job.id,
        name=job.name,
        description=job.description,
        language=job.language,
        schedule=job.schedule,
        schedule_text=schedule_text(job.schedule, job.timezone),
        timezone=job.timezone,
        owner=job.owner,
        owner_uid=job.owner_uid,
        links=links,
        next_run=_next_run(job, now, memo, members, excluded),
        not_planned=stranded_reason(job, members),
        last_status=last.status if last else None,
        last_run=last.id if last else None,
        paused=job.paused,
        failing=failing,
        paused_until=_paused_until(job, now),
    )


def _paused_until(job: Job, now: float | dt.datetime) -> str | None:
    """When the job's pause until an instant ends, while it is still to come."""
    moment = now.timestamp() if isinstance(now, dt.datetime) else now
    if job.paused_until is None or job.paused_until <= moment:
        return None
    return iso(job.paused_until)


def job_detail(
    job: Job,
    links: Mapping[str, LinkOn],
    last: Run | None,
    now: float,
    members: Collection[str] = (),
    failing: int = 0,
    excluded: Exclusions | None = None,
) -> JobDetail:
    """Everything ``odin describe`` shows of a job, with its next five fire times (and the
    ticks its exceptions skip among them, ``excluded`` being its ``except:`` resolved)."""
    summary = job_summary(
        job, links, last, now, members=members, failing=failing, excluded=excluded
    )
    return JobDetail(
        **{field.name: getattr(summary, field.name) for field in _SUMMARY_FIELDS},
        file=job.filename,
        owner_gid=job.owner_gid,
        timeout_s=job.timeout_s,
        retries=job.retries,
        overlap=job.overlap,
        catchup=job.catchup,
        env=dict(job.env),
        workdir=job.workdir,
        nodes=list(job.nodes),
        created_at=iso(job.created_at),
        updated_at=iso(job.updated_at),
        version=job.version,
        code_sha256=job.code_sha,
        next_runs=next_runs(job, now, 5, members, excluded),
        notify=[
            NotifyView(to=mask(entry.to), on=list(entry.on), after=entry.after)
            for entry in job.notify
        ],
        warn_after_s=job.warn_after_s,
        grace_s=job.grace_s,
        jitter_s=job.jitter_s,
        spread_offset_s=_spread_offset(job),
        exceptions=list(job.exceptions),
        on_excluded=job.on_excluded,
        skipped=excluded_ticks(job, now, 5, members, excluded),
    )


def _spread_offset(job: Job) -> int | None:
    """The offset a spread gives the job's ticks (of its first spread entry), or None."""
    schedule = job_schedule(job)
    for one in schedule.parts or (schedule,):
        if one.spread_s:
            return one.offset_s
    return None


@dataclass(frozen=True, slots=True)
class NotifyView:
    """One ``notify:`` entry, its destination's secrets masked."""

    to: str
    on: Sequence[AlertEvent]
    after: int


@dataclass(frozen=True, slots=True)
class AlertView:
    """One row of ``odin alerts``: an alert and how its delivery stands."""

    id: str
    key: str  # the idempotency key receivers see
    job: str
    event: AlertEvent
    to: str  # masked
    run: str | None
    created_at: str | None
    state: DeliveryState
    attempts: int
    last_attempt_at: str | None
    next_attempt_at: str | None  # while it is still to be delivered
    outcome: str  # of the last attempt
    detail: str


def alert_view(alert: Alert) -> AlertView:
    return AlertView(
        id=alert.id,
        key=alert.key,
        job=alert.job_id,
        event=alert.event,
        to=mask(alert.to),
        run=alert.run_id,
        created_at=iso(alert.created_at),
        state=alert.state,
        attempts=alert.attempts,
        last_attempt_at=iso(alert.last_at),
        next_attempt_at=None if alert.state.final else iso(alert.next_at),
        outcome=alert.outcome,
        detail=alert.detail,
    )


@dataclass(frozen=True, slots=True)
class TestSent:
    """How ``odin notify test`` went for one destination."""

    to: str  # masked
    ok: bool
    outcome: str


_SUMMARY_FIELDS = dataclasses.fields(JobSummary)


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as the API shows it: every field of ``Run``, then its times in words."""

    id: str
    job_id: str
    owner_uid: int
    instant: float
    reason: RunReason
    node: str
    planned_at: float
    attempt: int
    status: RunStatus
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    pid: int | None
    message: str
    output_tail: str
    output_bytes: int
    dropped_bytes: int
    records: Sequence[Record]  # the state's summary, or all of them (``with_full_records``)
    record_count: int
    trigger: str | None
    moved_from: str | None
    moved_why: str
    unsure: bool
    jitter_s: float  # it starts this long after its instant (the job's jitter, drawn once)
    instant_iso: str | None
    started_iso: str | None
    finished_iso: str | None
    duration: float | None
    lag: float | None
    result_desc: str | None


def run_view(run: Run) -> RunView:
    return RunView(
        **fields_of(run),
        instant_iso=iso(run.instant),
        started_iso=iso(run.started_at),
        finished_iso=iso(run.finished_at),
        duration=run.duration,
        lag=run.lag,
        result_desc=run.result_desc,
    )


# -- the other answers ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deployed:
    job: JobDetail
    updated: bool  # False for a new job


@dataclass(frozen=True, slots=True)
class RemovedJob:
    removed: str  # job id
    name: str


class ApplyAction(StrEnum):
    """What ``odin apply`` does (or would do) to one job."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class ApplyItem:
    """One job of an apply's plan."""

    action: ApplyAction
    id: str
    name: str
    source: str  # the file it came from, as the client named it ('' for a removal)
    code_changed: bool  # an update: whether its code differs from the deployed code
    diff: str  # an update: a short unified diff of the deployed YAML and the new ('' otherwise)


@dataclass(frozen=True, slots=True)
class ApplyCounts:
    create: int
    update: int
    unchanged: int
    remove: int


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """An apply's plan, and whether it was carried out (all of it, in one Raft entry)."""

    items: Sequence[ApplyItem]
    counts: ApplyCounts
    dry_run: bool
    applied: bool  # False for a dry run, and when nothing was to change


@dataclass(frozen=True, slots=True)
class JobFiles:
    """A deployed job's two files, as ``odin recover`` writes them."""

    yaml_name: str
    yaml: str
    file: str
    code: str


@dataclass(frozen=True, slots=True)
class PlannedRun:
    run: str  # run id
    job: str  # job id


@dataclass(frozen=True, slots=True)
class LinkAdded:
    source: str
    target: str
    on: LinkOn


@dataclass(frozen=True, slots=True)
class LinkRemoved:
    source: str
    target: str


@dataclass(frozen=True, slots=True)
class RunOutput:
    """A run's output: all of it, or only the tail the replicated state keeps."""

    run: str
    output: str
    bytes: int  # what the run wrote
    dropped: int  # bytes left out in the middle (the capture keeps the head and tail)
    tail_only: bool

    @classmethod
    def from_json(cls, data: Any) -> RunOutput | None:
        """The answer of another node, if it has this shape."""
        try:
            return cls(
                run=str(data["run"]),
                output=str(data["output"]),
                bytes=int(data["bytes"]),
                dropped=int(data["dropped"]),
                tail_only=bool(data["tail_only"]),
            )
        except (TypeError, KeyError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class RecordRow:
    """One SDK record of ``odin stats``, with its run."""

    run: str
    seq: int
    ts: float
    type: str
    desc: str
    value: Any


@dataclass(frozen=True, slots=True)
class NodeRecords:
    """The whole records a node keeps of a job's runs, by run id (between nodes)."""

    records: Mapping[str, Sequence[Record]]


def records_from(data: Any) -> tuple[Record, ...]:
    """Records from their JSON (a run store's, or another node's answer); what is not one
    is left out."""
    if not isinstance(data, list):
        return ()
    found = []
    for item in data:
        try:
            found.append(Record.from_dict(item))
        except (TypeError, AttributeError):
            continue
    return tuple(found)


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What ``odin restore`` did."""

    jobs_restored: int
    jobs_unchanged: int
    links_restored: int
    links_unchanged: int
    missing_owners: Sequence[str]  # "name (uid N)": no account here, their jobs cannot run
    owners_mapped: Mapping[str, str]  # --map-owner OLD=NEW
    backup_created_at: float
    backup_node: str


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One member in ``odin nodes``, as this node sees it."""

    name: str
    http: str
    raft: str
    role: Literal["leader", "follower"]
    status: Literal["healthy", "unreachable"]
    running: int  # runs running there
    last_seen: float | None
    lease: LeaseState  # its start lease, as this node knows it
    self: bool  # the node that answered
    waiting: int = 0  # runs due there and not started (``admission.backlog``)
    behind: float = 0.0  # how long the oldest of them has been due, in seconds


@dataclass(frozen=True, slots=True)
class NodeAdded:
    node: NodeInfo
    started: bool  # an engine was started on this host for it


@dataclass(frozen=True, slots=True)
class NodeRemoved:
    removed: str
