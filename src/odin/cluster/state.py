"""The deterministic state machine every node applies the Raft log to.

``apply`` is a small dispatcher: one short method per command. It reads no
clock, draws no randomness, does no I/O and makes no ids: everything comes in
the command. It returns the command's result and the events it caused, which
the engine acts on outside the Raft thread (start a process, save history...).
Invalid commands raise an ``OdinError`` *before* anything is changed.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson

from odin import config
from odin.cluster import alerting
from odin.cluster import commands as c
from odin.cluster.calendars import CalendarChanged, CalendarTable, users_of
from odin.cluster.model import (
    SCHEMA_VERSION,
    Alert,
    DeliveryState,
    Job,
    LinkOn,
    NodeInfo,
    Run,
    RunReason,
    RunStatus,
    alert_key,
    run_id,
)
from odin.cluster.placement import eligible, stranded
from odin.cluster.quotas import batch_verdict, code_bytes, deploy_verdict
from odin.cluster.summary import sizes_of, summarize
from odin.cluster.tokens import TokenTable
from odin.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from odin.jobs.notify import AlertEvent


@dataclasses.dataclass(frozen=True)
class RunPlanned:
    run: Run


@dataclasses.dataclass(frozen=True)
class RunStarted:
    run: Run


@dataclasses.dataclass(frozen=True)
class RunFinished:
    run: Run


@dataclasses.dataclass(frozen=True)
class JobChanged:
    job: Job


@dataclasses.dataclass(frozen=True)
class JobRemoved:
    job: Job


@dataclasses.dataclass(frozen=True)
class NodesChanged:
    nodes: tuple[NodeInfo, ...]


@dataclasses.dataclass(frozen=True)
class AlertRaised:
    """An alert was decided: the leader delivers it."""

    alert: Alert


@dataclasses.dataclass(frozen=True)
class StateRestored:
    """The whole state was replaced by a snapshot (from the leader): no event per change."""


Event = (
    RunPlanned
    | RunStarted
    | RunFinished
    | JobChanged
    | JobRemoved
    | NodesChanged
    | AlertRaised
    | StateRestored
    | CalendarChanged
)


def reaches(graph: Mapping[str, Iterable[str]], start: str, goal: str) -> bool:
    """Whether ``goal`` can be reached from ``start`` along the links of ``graph``."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return False


def _may_finish(run: Run, cmd: c.FinishRun) -> bool:
    """A run ends once; only a run lost while its node may have run it ends again, when
    that node reports how it really ended."""
    if not run.status.finished:
        return True
    return run.status is RunStatus.LOST and run.unsure and not cmd.unsure


def already(job: Job, old: Job) -> bool:
    """Whether ``old`` is ``job`` already, but for its times, version and pause: a batch
    (``PutJobs``) leaves such a job alone, and keeps the pause of one it replaces."""
    same = dataclasses.replace(
        job,
        created_at=old.created_at,
        updated_at=old.updated_at,
        version=old.version,
        paused=old.paused,
        paused_until=old.paused_until,
    )
    return same == old


def retry_delay(attempt: int) -> float:
    """Exponential backoff before retry number ``attempt + 1``, capped."""
    return float(min(config.RETRY_BACKOFF_BASE_S * 2**attempt, config.RETRY_BACKOFF_MAX_S))


class StateMachine:
    """Jobs, links, the tick ledger, a bounded window of runs and of alerts."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.links: dict[str, dict[str, LinkOn]] = {}
        self.ledger: dict[str, float] = {}
        self.runs: dict[str, Run] = {}
        self.finished: dict[str, deque[str]] = {}
        self.nodes: dict[str, NodeInfo] = {}
        self.active: set[str] = set()  # ids of planned and running runs
        self.active_on: Counter[str] = Counter()  # how many of them each node has (placement)
        self.active_of: dict[str, set[str]] = {}  # the same, by job id
        self.owned: Counter[int] = Counter()  # jobs per owner uid
        self.code_owned: Counter[int] = Counter()  # bytes of code per owner uid
        self.alerts: dict[str, Alert] = {}
        self.alerts_of: dict[str, deque[str]] = {}  # alert ids by job id, oldest first
        self.undelivered: set[str] = set()  # ids of alerts not yet sent nor given up
        self.streaks: dict[str, int] = {}  # failed ticks in a row, by job id (absent: none)
        self.tokens = TokenTable()  # API tokens (their hashes), by id
        self.calendars = CalendarTable()  # named calendars of exceptions, by owner and name
        self.applied = 0
        self._handlers: dict[type[Any], Callable[[Any], tuple[Any, list[Event]]]] = {
            c.PutJob: self._put_job,
            c.PutJobs: self._put_jobs,
            c.PatchJob: self._patch_job,
            c.RemoveJob: self._remove_job,
            c.AddLink: self._add_link,
            c.RemoveLink: self._remove_link,
            c.PlanRuns: self._plan_runs,
            c.StartRun: self._start_run,
            c.FinishRun: self._finish_run,
            c.FinishRuns: self._finish_runs,
            c.MoveRuns: self._move_runs,
            c.AddNode: self._add_node,
            c.RemoveNode: self._remove_node,
            c.RaiseAlarms: self._raise_alarms,
            c.RecordDelivery: self._record_delivery,
            c.AddToken: self._add_token,
            c.RevokeToken: self._revoke_token,
            c.TouchToken: self._touch_token,
            c.PutCalendar: self._put_calendar,
            c.RemoveCalendar: self._remove_calendar,
        }

    # -- dispatch ---------------------------------------------------------

    def apply(self, command: c.Command) -> tuple[Any, list[Event]]:
        result = self._handlers[type(command)](command)
        self.applied += 1
        return result

    # -- jobs -------------------------------------------------------------

    def _job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job with id {job_id}")
        return job

    def _put_job(self, cmd: c.PutJob) -> tuple[Any, list[Event]]:
        old = self.jobs.get(cmd.job.id)
        job = cmd.job
        if old is not None:
            if old.owner_uid != job.owner_uid:
                raise Conflict(f"job id {job.id} is taken by another user")
            if dataclasses.replace(job, created_at=old.created_at, version=old.version) == old:
                return old, []  # the same command again (a proposer's retry): nothing new
            job = dataclasses.replace(job, created_at=old.created_at, version=old.version + 1)
        change = code_bytes(job.code) - (0 if old is None else code_bytes(old.code))
        if cmd.quotas is not None:  # a deploy (not a restore): its calendars must exist
            self.calendars.check_names(job)
        self._check_quotas(cmd, old is None, change)
        if old is None:
            self.owned[job.owner_uid] += 1
        self.code_owned[job.owner_uid] += change
        self.jobs[job.id] = job
        return job, [JobChanged(job)]

    def _check_quotas(self, cmd: c.PutJob, new: bool, code_change: int) -> None:
        """Refuse a deploy over the quotas its command carries, before anything changes."""
        if cmd.quotas is None:
            return
        uid = cmd.job.owner_uid
        verdict = deploy_verdict(
            cmd.quotas, self.owned[uid], self.code_owned[uid], new, code_change
        )
        if verdict is not None:
            raise LimitExceeded(verdict)

    def _patch_job(self, cmd: c.PatchJob) -> tuple[Any, list[Event]]:
        job = self._job(cmd.job_id)
        changes: dict[str, Any] = {
            k: v
            for k, v in (
                ("name", cmd.name),
                ("description", cmd.description),
                ("schedule", cmd.schedule),
                ("paused", cmd.paused),
                ("yaml", cmd.yaml),
            )
            if v is not None
        }
        if cmd.paused_until is not None:  # 0 clears a pause until an instant
            changes["paused_until"] = cmd.paused_until or None
        if dataclasses.replace(job, **changes, updated_at=cmd.now) == job:
            return job, []  # the same command again (a proposer's retry): nothing new
        job = dataclasses.replace(job, **changes, updated_at=cmd.now, version=job.version + 1)
        self.jobs[job.id] = job
        return job, [JobChanged(job)]

    def _put_jobs(self, cmd: c.PutJobs) -> tuple[Any, list[Event]]:
        """Every change of the batch or none: all is checked before anything changes."""
        puts, gone = self._batch_changes(cmd)
        events: list[Event] = []
        for job in puts:
            old = self.jobs.get(job.id)
            if old is None:
                self.owned[job.owner_uid] += 1
            self.code_owned[job.owner_uid] += code_bytes(job.code) - (
                0 if old is None else code_bytes(old.code)
            )
            self.jobs[job.id] = job
            events.append(JobChanged(job))
        for job in gone:
            events += self._drop_job(job)
        return (puts, gone), events

    def _batch_changes(self, cmd: c.PutJobs) -> tuple[tuple[Job, ...], tuple[Job, ...]]:
        """The jobs a ``PutJobs`` writes (as they will be stored) and those it removes; raises,
        changing nothing, if any of it is refused."""
        ids = [job.id for job in cmd.jobs]
        if len(set(ids)) != len(ids) or set(ids) & set(cmd.removed):
            raise InvalidInput("a job id appears twice in one batch")
        puts: list[Job] = []
        for job in cmd.jobs:
            old = self.jobs.get(job.id)
            if job.owner_uid != cmd.owner_uid or (
                old is not None and old.owner_uid != job.owner_uid
            ):
                raise Conflict(f"job id {job.id} is taken by another user")
            if cmd.quotas is not None:  # an apply (not a restore): its calendars must exist
                self.calendars.check_names(job)
            if old is None:
                puts.append(job)
                continue
            if not already(job, old):
                version = old.version + 1
                kept = dataclasses.replace(
                    job,
                    created_at=old.created_at,
                    version=version,
                    paused=old.paused,
                    paused_until=old.paused_until,
                )
                puts.append(kept)
        gone = tuple(self.jobs[i] for i in dict.fromkeys(cmd.removed) if i in self.jobs)
        for job in gone:
            if job.owner_uid != cmd.owner_uid:
                raise Conflict(f"job {job.id} belongs to another user")
        self._check_batch_quotas(cmd, puts, gone)
        return tuple(puts), gone

    def _check_batch_quotas(self, cmd: c.PutJobs, puts: list[Job], gone: tuple[Job, ...]) -> None:
        """Refuse a batch that would leave its owner over the quotas it carries."""
        if cmd.quotas is None:
            return
        added = -len(gone)
        change = -sum(code_bytes(job.code) for job in gone)
        for job in puts:
            old = self.jobs.get(job.id)
            added += old is None
            change += code_bytes(job.code) - (0 if old is None else code_bytes(old.code))
        uid = cmd.owner_uid
        verdict = batch_verdict(cmd.quotas, self.owned[uid], self.code_owned[uid], added, change)
        if verdict is not None:
            raise LimitExceeded(verdict)

    def _remove_job(self, cmd: c.RemoveJob) -> tuple[Any, list[Event]]:
        job = self._job(cmd.job_id)
        return job, self._drop_job(job)

    def _drop_job(self, job: Job) -> list[Event]:
        """Remove ``job`` with its runs, links, ledger entry and alerts."""
        del self.jobs[job.id]
        self.owned[job.owner_uid] -= 1
        self.code_owned[job.owner_uid] -= code_bytes(job.code)
        for rid in self.active_of.pop(job.id, set()):
            self.active.discard(rid)
            gone = self.runs.pop(rid, None)
            if gone is not None:
                self._count_on(gone.node, -1)
        self.links.pop(job.id, None)
        for source in list(self.links):
            self.links[source].pop(job.id, None)
            if not self.links[source]:
                del self.links[source]
        self.ledger.pop(job.id, None)
        for rid in self.finished.pop(job.id, deque()):
            self.runs.pop(rid, None)
        for aid in self.alerts_of.pop(job.id, deque()):
            self.alerts.pop(aid, None)
            self.undelivered.discard(aid)
        self.streaks.pop(job.id, None)
        return [JobRemoved(job)]

    # -- links ------------------------------------------------------------

    def _add_link(self, cmd: c.AddLink) -> tuple[Any, list[Event]]:
        self._job(cmd.source)
        self._job(cmd.target)
        try:
            on = LinkOn(cmd.on)
        except ValueError as error:
            message = f"a link fires on success, failure or always, not {cmd.on!r}"
            raise InvalidInput(message) from error
        if cmd.source == cmd.target or reaches(self.links, cmd.target, cmd.source):
            raise Conflict(f"linking {cmd.source} to {cmd.target} would make a cycle")
        self.links.setdefault(cmd.source, {})[cmd.target] = on
        return {"source": cmd.source, "target": cmd.target, "on": str(on)}, []

    def _remove_link(self, cmd: c.RemoveLink) -> tuple[Any, list[Event]]:
        targets = self.links.get(cmd.source, {})
        if cmd.target not in targets:
            raise NotFound(f"job {cmd.source} is not linked to {cmd.target}")
        del targets[cmd.target]
        if not targets:
            del self.links[cmd.source]
        return {"source": cmd.source, "target": cmd.target}, []

    # -- runs -------------------------------------------------------------

    def _plan_runs(self, cmd: c.PlanRuns) -> tuple[Any, list[Event]]:
        events: list[Event] = []
        for run in cmd.runs:
            if run.id in self.runs or run.job_id not in self.jobs:
                continue
            self.runs[run.id] = run
            self._activate(run)
            events.append(RunPlanned(run))
        for job_id, instant in cmd.ledger.items():
            if job_id in self.jobs and instant > self.ledger.get(job_id, float("-inf")):
                self.ledger[job_id] = instant
        return [e.run.id for e in events if isinstance(e, RunPlanned)], events

    def _activate(self, run: Run) -> None:
        self.active.add(run.id)
        self.active_of.setdefault(run.job_id, set()).add(run.id)
        self._count_on(run.node, 1)

    def _count_on(self, node: str, change: int) -> None:
        """Keep ``active_on`` (a node's planned and running runs) as runs come, move and go."""
        self.active_on[node] += change
        if self.active_on[node] <= 0:
            del self.active_on[node]

    def _settle(self, run: Run) -> None:
        if run.id in self.active:
            self._count_on(run.node, -1)
        self.active.discard(run.id)
        ids = self.active_of.get(run.job_id)
        if ids is not None:
            ids.discard(run.id)
            if not ids:
                del self.active_of[run.job_id]

    def _start_run(self, cmd: c.StartRun) -> tuple[Any, list[Event]]:
        run = self.runs.get(cmd.run_id)
        if run is None or run.status is not RunStatus.PLANNED:
            return None, []
        self._count_on(run.node, -1)
        self._count_on(cmd.node, 1)
        run = dataclasses.replace(
            run, status=RunStatus.RUNNING, pid=cmd.pid, started_at=cmd.started_at, node=cmd.node
        )
        self.runs[run.id] = run
        return run.id, [RunStarted(run)]

    def _move_runs(self, cmd: c.MoveRuns) -> tuple[Any, list[Event]]:
        events: list[Event] = []
        for move in cmd.moves:
            run = self.runs.get(move.run_id)
            if run is None or run.status is not RunStatus.PLANNED or run.node != move.from_node:
                continue  # started, ended or moved meanwhile: its node kept it
            self._count_on(run.node, -1)
            self._count_on(move.to_node, 1)
            run = dataclasses.replace(
                run,
                node=move.to_node,
                moved_from=run.moved_from or move.from_node,
                moved_why=move.why,
            )
            self.runs[run.id] = run
            events.append(RunPlanned(run))
        return [e.run.id for e in events if isinstance(e, RunPlanned)], events

    def _finish_run(self, cmd: c.FinishRun) -> tuple[Any, list[Event]]:
        run = self.runs.get(cmd.run_id)
        if run is None or not _may_finish(run, cmd):
            return None, []
        again = run.status.finished  # marked lost while its node ran it: the node's word wins
        if again:
            cmd = dataclasses.replace(
                cmd, message=f"{cmd.message} (reported by {run.node} after it was marked lost)"
            )
        run = dataclasses.replace(
            run,
            unsure=cmd.unsure,
            status=cmd.status,
            finished_at=cmd.finished_at,
            started_at=cmd.started_at if cmd.started_at is not None else run.started_at,
            pid=cmd.pid if cmd.pid is not None else run.pid,
            exit_code=cmd.exit_code,
            message=cmd.message,
            output_tail=cmd.output_tail,
            output_bytes=cmd.output_bytes,
            dropped_bytes=cmd.dropped_bytes,
            records=summarize(cmd.records, sizes_of(cmd.records), config.RECORDS_SUMMARY_BYTES),
            record_count=max(cmd.record_count, len(cmd.records)),
        )
        self.runs[run.id] = run
        self._settle(run)
        if not again:
            self._keep_finished(run)
        events: list[Event] = [RunFinished(run)]
        retries = self._retry(run)
        follow_ups = retries or self._linked(run)
        for follow in follow_ups:
            if follow.id not in self.runs:
                self.runs[follow.id] = follow
                self._activate(follow)
                events.append(RunPlanned(follow))
        events += self._alerts_at_end(run, bool(retries))
        return run.id, events

    # -- alerts -----------------------------------------------------------

    def _alerts_at_end(self, run: Run, retried: bool) -> list[Event]:
        job = self.jobs.get(run.job_id)
        if job is None:
            return []
        streak, due = alerting.after_end(job, run, self.streaks.get(job.id, 0), retried)
        if streak:
            self.streaks[job.id] = streak
        else:
            self.streaks.pop(job.id, None)
        return self._make_alerts(job, run.id, run.id, due, run.finished_at or run.instant)

    def _make_alerts(
        self, job: Job, subject: str, run: str | None, due: list[alerting.Due], at: float
    ) -> list[Event]:
        """An alert per due destination, unless one with its id exists (a replayed command)."""
        events: list[Event] = []
        for item in due:
            key = alert_key(subject, item.event)
            alert_id = f"{key}#{item.index}"
            if alert_id in self.alerts:
                continue
            alert = Alert(
                id=alert_id,
                key=key,
                job_id=job.id,
                owner_uid=job.owner_uid,
                event=item.event,
                to=job.notify[item.index].to,
                run_id=run,
                created_at=at,
                detail=item.detail,
                next_at=at,
            )
            self.alerts[alert_id] = alert
            self.undelivered.add(alert_id)
            window = self.alerts_of.setdefault(job.id, deque())
            window.append(alert_id)
            while len(window) > config.ALERTS_KEPT_PER_JOB:
                old = window.popleft()
                self.alerts.pop(old, None)
                self.undelivered.discard(old)
            events.append(AlertRaised(alert))
        return events

    def _raise_alarms(self, cmd: c.RaiseAlarms) -> tuple[Any, list[Event]]:
        events: list[Event] = []
        for alarm in cmd.alarms:
            job = self.jobs.get(alarm.job_id)
            if job is None:
                continue
            due = self._alarm_due(job, alarm)
            events += self._make_alerts(job, alarm.subject, alarm.run_id, due, alarm.at)
        return len(events), events

    def _alarm_due(self, job: Job, alarm: c.Alarm) -> list[alerting.Due]:
        """What an alarm is worth once checked against the state the log has reached."""
        if alarm.run_id is None:
            return alerting.skipped_due(job, alarm.detail)
        run = self.runs.get(alarm.run_id)
        if run is None or run.job_id != job.id:
            return []
        if alarm.event is AlertEvent.MISSED:
            return alerting.missed_due(job, run, alarm.at)
        if alarm.event is AlertEvent.OVERDUE:
            return alerting.overdue_due(job, run, alarm.at)
        return []

    def _record_delivery(self, cmd: c.RecordDelivery) -> tuple[Any, list[Event]]:
        alert = self.alerts.get(cmd.alert_id)
        if alert is None or alert.state.final or alert.attempts != cmd.attempt - 1:
            return None, []  # dropped, settled, or this attempt was already recorded
        if cmd.ok:
            state = DeliveryState.SENT
        elif not cmd.retry or cmd.attempt >= config.ALERT_MAX_ATTEMPTS:
            state = DeliveryState.FAILED
        else:
            state = DeliveryState.RETRYING
        alert = dataclasses.replace(
            alert,
            state=state,
            attempts=cmd.attempt,
            last_at=cmd.at,
            outcome=cmd.outcome,
            next_at=alerting.next_attempt_at(cmd.attempt, cmd.at),
        )
        self.alerts[alert.id] = alert
        if state.final:
            self.undelivered.discard(alert.id)
        return str(state), []

    def _finish_runs(self, cmd: c.FinishRuns) -> tuple[Any, list[Event]]:
        events: list[Event] = []
        for one in cmd.runs:
            events += self._finish_run(one)[1]
        return None, events

    def _keep_finished(self, run: Run) -> None:
        window = self.finished.setdefault(run.job_id, deque())
        window.append(run.id)
        while len(window) > config.RUNS_KEPT_IN_STATE_PER_JOB:
            self.runs.pop(window.popleft(), None)

    def _retry(self, run: Run) -> list[Run]:
        job = self.jobs.get(run.job_id)
        if job is None or run.status not in (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST):
            return []
        if run.attempt >= job.retries or stranded(job, self.nodes):
            return []  # no attempts left, or none of its nodes is a member to run one
        assert run.finished_at is not None
        at = run.finished_at + retry_delay(run.attempt)
        base_instant = run.instant
        retry = Run(
            id=run_id(job.id, base_instant, run.attempt + 1),
            job_id=job.id,
            owner_uid=job.owner_uid,
            instant=at,
            reason=RunReason.RETRY,
            node=self.retry_node(run, job),
            planned_at=run.finished_at,
            attempt=run.attempt + 1,
            trigger=run.id,
        )
        return [retry]

    def _linked(self, run: Run) -> list[Run]:
        assert run.finished_at is not None
        follow: list[Run] = []
        for target_id, on in sorted(self.links.get(run.job_id, {}).items()):
            target = self.jobs.get(target_id)
            if target is None or target.paused or not on.matches(run.status):
                continue
            follow.append(
                Run(
                    id=run_id(target_id, run.finished_at),
                    job_id=target_id,
                    owner_uid=target.owner_uid,
                    instant=run.finished_at,
                    reason=RunReason.LINK,
                    node=run.node,
                    planned_at=run.finished_at,
                    trigger=run.id,
                )
            )
        return follow

    # -- membership -------------------------------------------------------

    def _add_node(self, cmd: c.AddNode) -> tuple[Any, list[Event]]:
        new = cmd.node
        for node in self.nodes.values():
            if node.name != new.name and (node.raft == new.raft or node.http == new.http):
                raise Conflict(f"node {node.name} already uses {new.raft} or {new.http}")
        self.nodes[new.name] = new
        return new.to_dict(), [NodesChanged(tuple(self.nodes.values()))]

    def _remove_node(self, cmd: c.RemoveNode) -> tuple[Any, list[Event]]:
        if cmd.name not in self.nodes:
            raise NotFound(f"no node named {cmd.name}")
        removed = self.nodes.pop(cmd.name)
        return removed.to_dict(), [NodesChanged(tuple(self.nodes.values()))]

    def retry_node(self, run: Run, job: Job) -> str:
        """Where a retry runs: the same node, unless the run was lost there (then another
        member the job may run on, so that a retry keeps to the job's ``nodes:``)."""
        if run.status is not RunStatus.LOST:
            return run.node
        others = [name for name in eligible(job, self.nodes) if name != run.node]
        return others[run.attempt % len(others)] if others else run.node

    # -- API tokens -------------------------------------------------------

    def _add_token(self, cmd: c.AddToken) -> tuple[Any, list[Event]]:
        return self.tokens.add(cmd.token, cmd.limit, cmd.keep_ended_s), []

    def _revoke_token(self, cmd: c.RevokeToken) -> tuple[Any, list[Event]]:
        return self.tokens.revoke(cmd.token_id, cmd.at), []

    def _touch_token(self, cmd: c.TouchToken) -> tuple[Any, list[Event]]:
        self.tokens.touch(cmd.token_id, cmd.at)
        return None, []

    # -- calendars --------------------------------------------------------

    def _put_calendar(self, cmd: c.PutCalendar) -> tuple[Any, list[Event]]:
        stored = self.calendars.put(cmd.calendar)
        if stored is None:  # the same command again (a proposer's retry): nothing new
            found = self.calendars.get(cmd.calendar.owner_uid, cmd.calendar.name)
            return found, []
        using = tuple(users_of(self.jobs.values(), stored.owner_uid, stored.name))
        return stored, [CalendarChanged(stored, using)]

    def _remove_calendar(self, cmd: c.RemoveCalendar) -> tuple[Any, list[Event]]:
        return self.calendars.remove(cmd.owner_uid, cmd.name, self.jobs.values()), []

    # -- reading ----------------------------------------------------------

    def runs_of(self, job_id: str) -> Iterator[Run]:
        """The job's runs in the replicated window: its finished ones and its active ones."""
        finished = (self.runs[i] for i in self.finished.get(job_id, ()) if i in self.runs)
        active = (self.runs[i] for i in self.active_of.get(job_id, ()))
        yield from finished
        yield from active

    def active_runs(self) -> Iterator[Run]:
        return (self.runs[i] for i in self.active)

    # -- snapshots --------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state as JSON. orjson writes the dataclasses as they are (the same
        shape as their ``to_dict``), so no copy of 100,000 jobs as dicts is made first:
        that transient, at every compaction, was most of the engine's resident memory."""
        data = {
            "v": SCHEMA_VERSION,
            "jobs": list(self.jobs.values()),
            "links": {s: {t: str(on) for t, on in ts.items()} for s, ts in self.links.items()},
            "ledger": self.ledger,
            "runs": list(self.runs.values()),
            "finished": {j: list(ids) for j, ids in self.finished.items()},
            "nodes": list(self.nodes.values()),
            "alerts": list(self.alerts.values()),
            "alerts_of": {j: list(ids) for j, ids in self.alerts_of.items()},
            "streaks": self.streaks,
            "applied": self.applied,
        }
        if self.tokens:  # absent while there are none: older snapshots dump as they were
            data["tokens"] = self.tokens.snapshot()
        if self.calendars:  # likewise
            data["calendars"] = self.calendars.snapshot()
        return orjson.dumps(data)

    def restore(self, blob: bytes) -> None:
        data = orjson.loads(blob)
        self.jobs = {j["id"]: Job.from_dict(j) for j in data["jobs"]}
        self.links = {s: {t: LinkOn(on) for t, on in ts.items()} for s, ts in data["links"].items()}
        self.ledger = {k: float(v) for k, v in data["ledger"].items()}
        self.runs = {r["id"]: Run.from_dict(r) for r in data["runs"]}
        self.finished = {j: deque(ids) for j, ids in data["finished"].items()}
        self.nodes = {n["name"]: NodeInfo.from_dict(n) for n in data.get("nodes", [])}
        self.active, self.active_of, self.active_on = set(), {}, Counter()
        for run in self.runs.values():
            if not run.status.finished:
                self._activate(run)
        self.owned = Counter(j.owner_uid for j in self.jobs.values())
        self.code_owned = Counter()
        for job in self.jobs.values():
            self.code_owned[job.owner_uid] += code_bytes(job.code)
        self.alerts = {a["id"]: Alert.from_dict(a) for a in data.get("alerts", [])}
        self.alerts_of = {j: deque(ids) for j, ids in data.get("alerts_of", {}).items()}
        self.undelivered = {a.id for a in self.alerts.values() if not a.state.final}
        self.streaks = {j: int(n) for j, n in data.get("streaks", {}).items()}
        self.tokens = TokenTable()
        self.tokens.restore(data.get("tokens", ()))
        self.calendars = CalendarTable()
        self.calendars.restore(data.get("calendars", ()))
        self.applied = int(data["applied"])
