"""The replicated values: jobs, runs and their records, and how they cross the wire.

Every value is a frozen dataclass that converts to and from plain JSON data, so
that the Raft log, snapshots, the API and the CLI share one shape.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import sys
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Self, TypeVar

from odin.jobs.fields import Catchup, Delivery, OnExcluded, Overlap
from odin.jobs.language import Language
from odin.jobs.notify import AlertEvent, Notify

T = TypeVar("T")

SCHEMA_VERSION = 1


class RunStatus(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    LOST = "lost"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.PLANNED, RunStatus.RUNNING)


class RunReason(StrEnum):
    SCHEDULE = "schedule"
    CATCHUP = "catchup"
    MANUAL = "manual"
    LINK = "link"
    RETRY = "retry"


class LinkOn(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    ALWAYS = "always"

    def matches(self, status: RunStatus) -> bool:
        if self is LinkOn.ALWAYS:
            return status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT)
        if self is LinkOn.SUCCESS:
            return status is RunStatus.SUCCEEDED
        return status in (RunStatus.FAILED, RunStatus.TIMED_OUT)


def fields_of(value: Any) -> dict[str, Any]:
    """A dataclass's fields as a new dict, one level deep (``asdict`` copies every level,
    which the hot paths cannot afford; nothing here mutates what it shares)."""
    return dict(vars(value))


def _from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """``cls`` from the keys of ``data`` it knows (another version may send others)."""
    names = _field_names(cls)  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@functools.cache
def _field_names(cls: type[Any]) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


@dataclasses.dataclass(frozen=True)
class Job:
    """A deployed job: its files, its owner and its run policy."""

    id: str
    owner_uid: int
    owner_gid: int
    owner: str
    name: str
    description: str
    language: Language
    filename: str
    schedule: str
    timezone: str
    code: str
    yaml: str
    code_sha: str
    timeout_s: float | None = None
    retries: int = 0
    overlap: Overlap = Overlap.SKIP
    catchup: Catchup = Catchup.LATEST
    delivery: Delivery = Delivery.AT_MOST_ONCE
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    workdir: str | None = None
    nodes: tuple[str, ...] = ()
    notify: tuple[Notify, ...] = ()
    warn_after_s: float | None = None  # a run still going this long after its start is overdue
    grace_s: float | None = None  # a tick not started this long after its instant is missed
    exceptions: tuple[str, ...] = ()  # ``except:`` items, canonical (odin.schedule.exceptions)
    on_excluded: OnExcluded = OnExcluded.SKIP  # what becomes of a tick they exclude
    paused: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    version: int = 1
    jitter_s: float | None = None  # each scheduled run starts up to this long after its tick
    paused_until: float | None = None  # no scheduled run before this instant (odin modify)

    def to_dict(self) -> dict[str, Any]:
        data = fields_of(self)
        data.update({name: str(getattr(self, name)) for name in _POLICIES})
        data["env"] = dict(self.env)
        data["nodes"] = list(self.nodes)
        data["notify"] = [entry.to_dict() for entry in self.notify]
        data["exceptions"] = list(self.exceptions)
        for name in _ADDED_LATER:  # absent when unset: older entries encode as they were written
            if not data[name] or data[name] == _UNSET.get(name):
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The job ``data`` describes; its policies, plain strings in JSON, become their
        enums here (an unknown value raises ``ValueError``)."""
        job = _from_dict(cls, data)
        shared: dict[str, Any] = {name: sys.intern(getattr(job, name)) for name in _SHARED_TEXT}
        policies: dict[str, Any] = {
            name: kind(getattr(job, name)) for name, kind in _POLICIES.items()
        }
        notify = tuple(
            entry if isinstance(entry, Notify) else Notify.from_dict(entry) for entry in job.notify
        )
        return dataclasses.replace(
            job,
            nodes=tuple(job.nodes),
            env=dict(job.env),
            notify=notify,
            exceptions=tuple(job.exceptions),
            **shared,
            **policies,
        )


_ADDED_LATER = (
    "notify",
    "warn_after_s",
    "grace_s",
    "exceptions",
    "on_excluded",
    "jitter_s",
    "paused_until",
)
"""Job fields newer than the first journals, left out of an entry while they are unset."""

_UNSET: dict[str, str] = {"on_excluded": str(OnExcluded.SKIP)}
"""Fields of ``_ADDED_LATER`` whose unset value is not empty, as the wire writes it."""

_SHARED_TEXT = ("owner", "timezone", "schedule")
"""Job fields that many jobs have in common: one copy of each value (100,000 jobs)."""

_POLICIES: dict[str, type[StrEnum]] = {
    "language": Language,
    "overlap": Overlap,
    "catchup": Catchup,
    "delivery": Delivery,
    "on_excluded": OnExcluded,
}
"""Job fields held as enums, and as their values (plain strings) on the wire."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One ``watch``/``condition``/``result`` call a job made through the SDK."""

    seq: int
    ts: float
    type: str
    desc: str
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return fields_of(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return _from_dict(cls, data)


@dataclasses.dataclass(frozen=True)
class Run:
    """One execution of a job, from plan to finish; ``id`` is ``<job>@<instant>``."""

    id: str
    job_id: str
    owner_uid: int
    instant: float
    reason: RunReason
    node: str
    planned_at: float
    attempt: int = 0
    status: RunStatus = RunStatus.PLANNED
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    pid: int | None = None
    message: str = ""
    output_tail: str = ""
    output_bytes: int = 0
    dropped_bytes: int = 0
    records: tuple[Record, ...] = ()  # a bounded summary when they were many (odin.cluster.summary)
    record_count: int = 0  # records the run made: all of them are in its node's run store
    trigger: str | None = None  # the run that caused a link or retry run
    moved_from: str | None = None  # the node it was first planned on, if another runs it
    moved_why: str = ""
    unsure: bool = False  # lost while its node may have started it: that node's report wins
    jitter_s: float = 0.0  # it starts this long after its instant: drawn once, when planned

    @property
    def starts_at(self) -> float:
        """When the run starts: its instant, plus the jitter its plan carries."""
        return self.instant + self.jitter_s

    @property
    def result_desc(self) -> str | None:
        results = [r for r in self.records if r.type == "result"]
        return results[-1].desc if results else None

    @property
    def summarized(self) -> bool:
        """Whether ``records`` holds only a summary: the whole is in its node's run store."""
        return self.record_count > len(self.records)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def lag(self) -> float | None:
        """How late it started, after its instant and its jitter."""
        return None if self.started_at is None else self.started_at - self.starts_at

    def to_dict(self) -> dict[str, Any]:
        data = fields_of(self)
        data["reason"] = str(self.reason)
        data["status"] = str(self.status)
        data["records"] = [r.to_dict() for r in self.records]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        plain = _run_plain_fields()
        return cls(
            **{k: v for k, v in data.items() if k in plain},
            reason=RunReason(data["reason"]),
            status=RunStatus(data.get("status", RunStatus.PLANNED)),
            records=tuple(Record.from_dict(r) for r in data.get("records", ())),
        )


@functools.cache
def _run_plain_fields() -> frozenset[str]:
    """The fields of a run that JSON holds as they are (not the enums and records)."""
    return _field_names(Run) - {"reason", "status", "records"}


@dataclasses.dataclass(frozen=True)
class NodeInfo:
    """A cluster member: its name and the addresses it serves."""

    name: str
    http: str
    raft: str
    added_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return fields_of(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return _from_dict(cls, data)


def instant_label(instant: float) -> str:
    """The UTC time of an instant as used in run ids (milliseconds only when needed)."""
    moment = dt.datetime.fromtimestamp(instant, dt.UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_id(job_id: str, instant: float, attempt: int = 0) -> str:
    """The deterministic id of a run: the same (job, tick, attempt) always gives the same id."""
    base = f"{job_id}@{instant_label(instant)}"
    return base if attempt == 0 else f"{base}~{attempt}"


class DeliveryState(StrEnum):
    """Where an alert's delivery stands; ``sent`` and ``failed`` are final."""

    PENDING = "pending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (DeliveryState.SENT, DeliveryState.FAILED)


@dataclasses.dataclass(frozen=True)
class Alert:
    """One alert to one destination, decided by the state machine and delivered by the leader.

    ``key`` (``<run id>:<event>``) is the idempotency key receivers see; ``id`` adds the
    destination's place in the job's ``notify:`` list, so each destination has its own.
    """

    id: str
    key: str
    job_id: str
    owner_uid: int
    event: AlertEvent
    to: str
    run_id: str | None
    created_at: float
    detail: str = ""
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    next_at: float = 0.0
    last_at: float | None = None
    outcome: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = fields_of(self)
        data["event"] = str(self.event)
        data["state"] = str(self.state)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        alert = _from_dict(cls, data)
        return dataclasses.replace(
            alert, event=AlertEvent(alert.event), state=DeliveryState(alert.state)
        )


def alert_key(subject: str, event: AlertEvent) -> str:
    """The idempotency key of an alert about ``subject`` (a run id, or ``<job>@<instant>``)."""
    return f"{subject}:{event}"
