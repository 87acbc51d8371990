"""The commands replicated through Raft, in the imperative, each with a type tag.

A command carries everything ``apply`` needs (times, ids, node names): the
proposer supplies them, so that applying the same log gives the same state on
every node. On the wire a command is ``{"v": 1, "type": NAME, "body": {...}}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

from odin.cluster.calendars import Calendar
from odin.cluster.model import SCHEMA_VERSION, Job, NodeInfo, Record, Run, RunStatus, fields_of
from odin.cluster.quotas import UserQuotas
from odin.cluster.tokens import ApiToken
from odin.errors import InvalidInput
from odin.jobs.notify import AlertEvent


@dataclasses.dataclass(frozen=True)
class PutJob:
    """Create a job, or replace it when the id exists (a redeploy), within the ``quotas`` it
    carries (None, as for a restore or an older entry: unchecked)."""

    job: Job
    quotas: UserQuotas | None = None


@dataclasses.dataclass(frozen=True)
class PutJobs:
    """Create or replace ``jobs`` and remove the jobs ``removed`` names, all of one owner, in
    one entry (``odin apply``): all or nothing, within the ``quotas`` it carries (None:
    unchecked); a job already as given and an id already gone are left alone, so a second
    application changes nothing."""

    jobs: tuple[Job, ...]
    removed: tuple[str, ...]
    owner_uid: int
    quotas: UserQuotas | None = None


@dataclasses.dataclass(frozen=True)
class PatchJob:
    """Change some fields of a job; None leaves a field as it is. ``paused_until`` pauses it
    until that instant, and 0 clears such a pause (``odin modify --pause-until``)."""

    job_id: str
    now: float
    name: str | None = None
    description: str | None = None
    schedule: str | None = None
    paused: bool | None = None
    yaml: str | None = None
    paused_until: float | None = None


@dataclasses.dataclass(frozen=True)
class RemoveJob:
    job_id: str


@dataclasses.dataclass(frozen=True)
class AddLink:
    source: str
    target: str
    on: str


@dataclasses.dataclass(frozen=True)
class RemoveLink:
    source: str
    target: str


@dataclasses.dataclass(frozen=True)
class PlanRuns:
    """Commit runs before their instant; ``ledger`` moves each job's last fired tick."""

    runs: tuple[Run, ...]
    ledger: Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class StartRun:
    run_id: str
    node: str
    pid: int
    started_at: float


@dataclasses.dataclass(frozen=True)
class FinishRun:
    run_id: str
    status: RunStatus
    finished_at: float
    exit_code: int | None = None
    message: str = ""
    started_at: float | None = None
    output_tail: str = ""
    output_bytes: int = 0
    dropped_bytes: int = 0
    records: tuple[Record, ...] = ()  # at most a summary (odin.cluster.summary)
    record_count: int = 0  # how many records the run made (all in its node's run store)
    pid: int | None = None  # for a run that ended before its StartRun was due
    unsure: bool = False  # lost while its node may still report how it really ended


@dataclasses.dataclass(frozen=True)
class FinishRuns:
    """The ends of several runs of one node, in one log entry (runs that ended together)."""

    runs: tuple[FinishRun, ...]


@dataclasses.dataclass(frozen=True)
class Move:
    """One planned run handed from a node that lost its lease to another (``MoveRuns``)."""

    run_id: str
    from_node: str
    to_node: str
    why: str


@dataclasses.dataclass(frozen=True)
class MoveRuns:
    """Planned runs of nodes that surely did not start them, each to another node."""

    moves: tuple[Move, ...]


@dataclasses.dataclass(frozen=True)
class AddNode:
    node: NodeInfo


@dataclasses.dataclass(frozen=True)
class RemoveNode:
    name: str


@dataclasses.dataclass(frozen=True)
class Alarm:
    """The leader saw a run (or, with no ``run_id``, ticks of a job) miss or overrun its time."""

    event: AlertEvent
    job_id: str
    run_id: str | None
    subject: str  # what the alert is about: the run id, or ``<job>@<first missed tick>``
    at: float
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class RaiseAlarms:
    """Alarms the state machine checks against the runs before making their alerts."""

    alarms: tuple[Alarm, ...]


@dataclasses.dataclass(frozen=True)
class RecordDelivery:
    """How attempt number ``attempt`` to deliver an alert went."""

    alert_id: str
    attempt: int
    ok: bool
    retry: bool
    outcome: str
    at: float


@dataclasses.dataclass(frozen=True)
class AddToken:
    """Add an API token (its hash, never its secret) within the ``limit`` of tokens per owner
    it carries; its owner's tokens that ended ``keep_ended_s`` before it are purged first."""

    token: ApiToken
    limit: int
    keep_ended_s: float


@dataclasses.dataclass(frozen=True)
class RevokeToken:
    token_id: str
    at: float


@dataclasses.dataclass(frozen=True)
class TouchToken:
    """A node saw the token used at ``at`` (sent at most every TOKEN_TOUCH_INTERVAL_S)."""

    token_id: str
    at: float


@dataclasses.dataclass(frozen=True)
class PutCalendar:
    """Add a named calendar of its owner, or replace it (the jobs that name it are planned
    again); the same calendar again changes nothing."""

    calendar: Calendar


@dataclasses.dataclass(frozen=True)
class RemoveCalendar:
    """Remove an owner's calendar, refused while a job of theirs names it."""

    owner_uid: int
    name: str


Command = (
    PutJob
    | PutJobs
    | PatchJob
    | RemoveJob
    | AddLink
    | RemoveLink
    | PlanRuns
    | StartRun
    | FinishRun
    | FinishRuns
    | MoveRuns
    | AddNode
    | RemoveNode
    | RaiseAlarms
    | RecordDelivery
    | AddToken
    | RevokeToken
    | TouchToken
    | PutCalendar
    | RemoveCalendar
)

_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        PutJob,
        PutJobs,
        PatchJob,
        RemoveJob,
        AddLink,
        RemoveLink,
        PlanRuns,
        StartRun,
        FinishRun,
        FinishRuns,
        MoveRuns,
        AddNode,
        RemoveNode,
        RaiseAlarms,
        RecordDelivery,
        AddToken,
        RevokeToken,
        TouchToken,
        PutCalendar,
        RemoveCalendar,
    )
}


# Commands that leave the state as one application did when applied a second
# time: a proposer may send one again when it cannot tell whether it was
# committed. A removal is not among them (the second one finds nothing).
_REPLAYABLE: frozenset[type[Any]] = frozenset(
    {
        PutJob,
        PutJobs,
        PatchJob,
        AddLink,
        PlanRuns,
        StartRun,
        FinishRun,
        FinishRuns,
        MoveRuns,
        AddNode,
        RaiseAlarms,
        RecordDelivery,
        AddToken,
        RevokeToken,
        TouchToken,
        PutCalendar,
    }
)


def replayable(command: Command) -> bool:
    """True if applying ``command`` twice in a row changes nothing the first did not."""
    return type(command) in _REPLAYABLE


def _body(command: Command) -> dict[str, Any]:
    if isinstance(command, PutJob):
        quotas = None if command.quotas is None else command.quotas.to_dict()
        return {"job": command.job.to_dict(), "quotas": quotas}
    if isinstance(command, PutJobs):
        return {
            "jobs": [job.to_dict() for job in command.jobs],
            "removed": list(command.removed),
            "owner_uid": command.owner_uid,
            "quotas": None if command.quotas is None else command.quotas.to_dict(),
        }
    if isinstance(command, AddNode):
        return {"node": command.node.to_dict()}
    if isinstance(command, PlanRuns):
        return {"runs": [r.to_dict() for r in command.runs], "ledger": dict(command.ledger)}
    if isinstance(command, FinishRun):
        return _finish_body(command)
    if isinstance(command, FinishRuns):
        return {"runs": [_finish_body(one) for one in command.runs]}
    if isinstance(command, MoveRuns):
        return {"moves": [fields_of(move) for move in command.moves]}
    if isinstance(command, RaiseAlarms):
        return {"alarms": [{**fields_of(a), "event": str(a.event)} for a in command.alarms]}
    if isinstance(command, AddToken):
        return {**fields_of(command), "token": command.token.to_dict()}
    if isinstance(command, PutCalendar):
        return {"calendar": command.calendar.to_dict()}
    if isinstance(command, PatchJob):
        return _patch_body(command)
    return fields_of(command)


_PATCH_ADDED_LATER = ("paused_until",)
"""PatchJob fields newer than the first journals, left out of an entry while they are None."""


def _patch_body(command: PatchJob) -> dict[str, Any]:
    body = fields_of(command)
    for name in _PATCH_ADDED_LATER:  # older entries encode as they were written
        if body.get(name) is None:
            body.pop(name, None)
    return body


def _finish_body(command: FinishRun) -> dict[str, Any]:
    body = fields_of(command)
    body["status"] = str(command.status)
    body["records"] = [r.to_dict() for r in command.records]
    return body


def _finish_run(body: dict[str, Any]) -> FinishRun:
    records = tuple(Record.from_dict(r) for r in body.get("records", ()))
    return FinishRun(**{**body, "status": RunStatus(body["status"]), "records": records})


def encode(command: Command) -> bytes:
    payload = {"v": SCHEMA_VERSION, "type": type(command).__name__, "body": _body(command)}
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError as error:  # e.g. an integer past 64 bits
        raise InvalidInput(f"cannot be stored: {error}") from error


def decode(data: bytes) -> Command:
    """The command ``encode`` made: its policies and statuses, plain strings on the wire
    (as every journal holds them), come back as their enums."""
    try:
        payload = orjson.loads(data)
        cls = _TYPES[payload["type"]]
        body = payload["body"]
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInput(f"not an Odin command: {error}") from error
    try:
        return _command(cls, body)
    except (ValueError, KeyError, TypeError) as error:  # e.g. a policy no version knows
        raise InvalidInput(f"not a valid {cls.__name__} command: {error}") from error


def _command(cls: type[Any], body: dict[str, Any]) -> Command:
    if cls is PutJob:
        quotas = body.get("quotas")
        return PutJob(
            Job.from_dict(body["job"]), None if quotas is None else UserQuotas.from_dict(quotas)
        )
    if cls is PutJobs:
        quotas = body.get("quotas")
        return PutJobs(
            jobs=tuple(Job.from_dict(job) for job in body["jobs"]),
            removed=tuple(str(job_id) for job_id in body["removed"]),
            owner_uid=int(body["owner_uid"]),
            quotas=None if quotas is None else UserQuotas.from_dict(quotas),
        )
    if cls is AddNode:
        return AddNode(NodeInfo.from_dict(body["node"]))
    if cls is PlanRuns:
        runs = tuple(Run.from_dict(r) for r in body["runs"])
        return PlanRuns(runs=runs, ledger=dict(body["ledger"]))
    if cls is FinishRun:
        return _finish_run(body)
    if cls is FinishRuns:
        return FinishRuns(tuple(_finish_run(one) for one in body["runs"]))
    if cls is MoveRuns:
        return MoveRuns(tuple(Move(**move) for move in body["moves"]))
    if cls is RaiseAlarms:
        alarms = (Alarm(**{**a, "event": AlertEvent(a["event"])}) for a in body["alarms"])
        return RaiseAlarms(tuple(alarms))
    if cls is AddToken:
        return AddToken(**{**body, "token": ApiToken.from_dict(body["token"])})
    if cls is PutCalendar:
        return PutCalendar(Calendar.from_dict(body["calendar"]))
    command: Command = cls(**body)
    return command
