"""The engine's operations, as the API offers them: validate, then propose.

Every method takes the ``Caller`` (identity from the kernel or a token, never
from the request) and checks ownership before anything is proposed. Reads come
from this node's replicated state (through ``EngineNode.read`` and its queries)
and its local store; writes go through Raft. The answers are the typed values of
``odin.engine.views``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import pwd
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from odin import __version__, config
from odin.cluster import commands as c
from odin.cluster.model import Alert, Job, LinkOn, Record, Run, RunReason, run_id
from odin.cluster.placement import unknown_nodes, unknown_nodes_message
from odin.cluster.quotas import UserQuotas, batch_verdict, code_bytes, deploy_verdict
from odin.disk import check_room
from odin.engine import apply as batch
from odin.engine.deliverer import Deliverer, Sends, job_facts, run_facts
from odin.engine.excluded import Exceptions
from odin.engine.identity import Caller
from odin.engine.node import EngineNode, ReadState
from odin.engine.pausing import pause_change
from odin.engine.views import (
    AlertView,
    ApplyResult,
    Deployed,
    JobDetail,
    JobFiles,
    JobSummary,
    LinkAdded,
    LinkRemoved,
    NextRunMemo,
    NodeRecords,
    PlannedRun,
    RecordRow,
    RemovedJob,
    RestoreReport,
    RunOutput,
    RunView,
    TestSent,
    alert_view,
    job_detail,
    job_summary,
    records_from,
    run_view,
)
from odin.errors import (
    ExecutionError,
    InvalidInput,
    JobFileError,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from odin.install import backup
from odin.jobs.calendars import refuse_unknown_calendars
from odin.jobs.fields import Problem
from odin.jobs.ids import is_job_id
from odin.jobs.notify import AlertEvent
from odin.jobs.spec import JobSpec, load_job_yaml
from odin.notify import compose, mask
from odin.notify.destinations import check_destination
from odin.store.sqlite import Store

Builder = Callable[[Job], Any]
RemoteRecords = Callable[[str, str, int, str | None], dict[str, list[Any]] | None]
"""(node, job id, owner uid, run id or None) -> the whole records that node keeps (blocking)."""


@dataclass(frozen=True)
class DeployRequest:
    yaml: str
    code: str
    source: str = ""  # the file it came from, as the client names it (messages of odin apply)


@dataclass(frozen=True)
class ApplyRequest:
    """A batch of job files (``odin apply``); ``keep``: the ids of the rest of a batch sent in
    several requests, which a prune leaves alone."""

    jobs: Sequence[DeployRequest]
    prune: bool = False
    dry_run: bool = False
    keep: Sequence[str] = ()


def _links_of(state: ReadState, job_id: str) -> dict[str, LinkOn]:
    """The job's links, target -> when (a copy): for a query under ``EngineNode.read``."""
    return dict(state.links.get(job_id, {}))


def _last_run(state: ReadState, job_id: str) -> Run | None:
    """The job's last finished run the state holds: for a query under ``EngineNode.read``."""
    window = state.finished.get(job_id)
    return state.runs.get(window[-1]) if window else None


class Service:
    """Validate, authorise, propose; and answer reads from local state."""

    def __init__(
        self,
        node: EngineNode,
        store: Store,
        *,
        default_timezone: str,
        prepare: Callable[[Job], Any] | None = None,
        remote_output: Callable[[Run], Awaitable[dict[str, Any] | None]] | None = None,
        remote_records: RemoteRecords | None = None,
        sender: Sends | None = None,
        deliverer: Deliverer | None = None,
    ) -> None:
        self.sender = sender
        self.deliverer = deliverer
        self.node = node
        self.store = store
        self.remote_records = remote_records
        self.default_timezone = default_timezone
        self.prepare = prepare
        self.remote_output = remote_output
        self.exceptions = Exceptions()  # jobs' except: rules, with public holidays cached

    # -- helpers -----------------------------------------------------------

    def _owned(self, caller: Caller, job_id: str) -> Job:
        if not is_job_id(job_id):
            raise InvalidInput(f"{job_id!r} is not a job id (12 hexadecimal digits, see odin list)")
        job = self.node.job(job_id)
        if job is None or not caller.may_see(job.owner_uid):
            raise NotFound(f"no job with id {job_id}")
        return job

    def _members(self) -> frozenset[str]:
        """The cluster's node names, as replicated (this node among them, even before it is
        listed): where a job's ``nodes:`` may point."""
        return self.node.read(lambda state: frozenset(state.nodes)) | {self.node.name}

    def _check_nodes(
        self, job: Job, source: str = "", members: frozenset[str] | None = None
    ) -> None:
        """Refuse a job whose ``nodes:`` names a node that is not a member: no run of it
        could start there, and runs planned there would pile up in the replicated state."""
        members = self._members() if members is None else members
        unknown = unknown_nodes(job.nodes, members)
        if unknown:
            message = unknown_nodes_message(unknown, members)
            where = f"{source}: job.nodes: " if source else ""
            raise JobFileError(where + message, field="job.nodes")

    def _disks(self) -> tuple[Path, ...]:
        """Where a deploy writes: the run store's directory (code, builds) and Raft's."""
        return (self.store.path.parent, self.node.raft_dir)

    # -- jobs --------------------------------------------------------------

    def _job_from(self, caller: Caller, request: DeployRequest, now: float) -> Job:
        if code_bytes(request.code) > config.MAX_CODE_BYTES:
            where = f"{request.source}: " if request.source else ""
            raise LimitExceeded(
                f"{where}the job's code is over the limit of {config.MAX_CODE_BYTES} bytes"
            )
        spec: JobSpec = load_job_yaml(request.yaml, source=request.source or "job YAML")
        if spec.exceptions:  # the calendars it names must be the caller's
            known = self.node.read(lambda state: state.calendars.names_of(caller.uid))
            refuse_unknown_calendars(request.yaml, known, request.source or "job YAML")
        zone = spec.timezone or self.default_timezone
        return Job(
            id=spec.id,
            owner_uid=caller.uid,
            owner_gid=caller.gid,
            owner=caller.user,
            name=spec.name,
            description=spec.description,
            language=spec.language,
            filename=spec.file.rsplit("/", 1)[-1],
            schedule=spec.schedule,
            timezone=zone,
            code=request.code,
            yaml=request.yaml,
            code_sha=hashlib.sha256(request.code.encode()).hexdigest(),
            timeout_s=spec.timeout,
            retries=spec.retries,
            overlap=spec.overlap,
            catchup=spec.catchup,
            delivery=spec.delivery,
            env=dict(spec.env),
            workdir=spec.workdir,
            nodes=tuple(spec.nodes),
            notify=spec.notify,
            warn_after_s=spec.warn_after,
            grace_s=spec.grace,
            jitter_s=spec.jitter,
            exceptions=spec.exceptions,
            on_excluded=spec.on_excluded,
            created_at=now,
            updated_at=now,
        )

    async def deploy(self, caller: Caller, request: DeployRequest) -> Deployed:
        now = time.time()
        job = self._job_from(caller, request, now)
        self._check_nodes(job)
        existing, count, code = self.node.read(
            lambda state: (
                state.jobs.get(job.id),
                state.owned.get(caller.uid, 0),
                state.code_owned.get(caller.uid, 0),
            )
        )
        if existing is not None and existing.owner_uid != caller.uid:
            raise PermissionDenied(f"job id {job.id} belongs to another user; generate a new id")
        quotas = UserQuotas.configured()
        change = code_bytes(job.code) - (0 if existing is None else code_bytes(existing.code))
        verdict = deploy_verdict(quotas, count, code, existing is None, change)
        if verdict is not None:  # the state machine checks again, against the state it holds
            raise LimitExceeded(verdict)
        check_room(self._disks(), "deploy")
        if self.prepare is not None:
            await self.prepare(job)
        saved: Job = await self.node.propose(c.PutJob(job, quotas))
        return Deployed(job=self.describe_job(saved, now), updated=existing is not None)

    async def apply(self, caller: Caller, request: ApplyRequest) -> ApplyResult:
        """Check every job of a batch, then plan it and, unless a dry run, commit its creates,
        updates and removes in one ``PutJobs`` (the state machine applies all or none)."""
        if request.prune and not request.jobs and not request.keep:
            raise InvalidInput(
                "a prune with no job in the batch would remove every job of yours: refused "
                "(remove them one by one with odin rm)"
            )
        incoming, plan = await asyncio.to_thread(self._plan, caller, request)  # not on the loop
        result = ApplyResult(plan.items, plan.counts(), dry_run=request.dry_run, applied=False)
        if request.dry_run or not plan.changes:
            return result
        check_room(self._disks(), "apply")
        await self._build(plan, incoming)
        command = c.PutJobs(
            jobs=plan.puts,
            removed=tuple(job.id for job in plan.removed),
            owner_uid=caller.uid,
            quotas=UserQuotas.configured(),
        )
        _, gone = await self.node.propose(command)
        for job in gone:
            await asyncio.to_thread(self.store.forget_job, job.id)  # it waits for queued saves
        return dataclasses.replace(result, applied=True)

    def _plan(
        self, caller: Caller, request: ApplyRequest
    ) -> tuple[list[batch.Incoming], batch.Plan]:
        """The batch's jobs, checked (files, ownership, quotas), and its plan (blocking: a
        thousand job files take a while to parse)."""
        incoming = self._incoming(caller, request, time.time())
        ids = [new.job.id for new in incoming]
        uid = caller.uid

        def query(state: ReadState) -> tuple[dict[str, Job], list[Job], int, int]:
            deployed = {i: state.jobs[i] for i in ids if i in state.jobs}
            owned = [j for j in state.jobs.values() if j.owner_uid == uid] if request.prune else []
            return deployed, owned, state.owned.get(uid, 0), state.code_owned.get(uid, 0)

        deployed, owned, count, code = self.node.read(query)
        for new in incoming:
            old = deployed.get(new.job.id)
            if old is not None and old.owner_uid != uid:
                raise PermissionDenied(
                    f"{new.source}: job.id: job id {new.job.id} belongs to another user; "
                    "generate a new id"
                )
        plan = batch.plan(incoming, deployed, owned, prune=request.prune, keep=request.keep)
        verdict = batch_verdict(UserQuotas.configured(), count, code, *_growth(plan, deployed))
        if verdict is not None:  # the state machine checks again, against the state it holds
            raise LimitExceeded(verdict)
        return incoming, plan

    def _incoming(self, caller: Caller, request: ApplyRequest, now: float) -> list[batch.Incoming]:
        """Each job of the batch, built and checked as a deploy would; a file with an id
        another file of the batch has is refused, naming both."""
        members = self._members()
        seen: dict[str, str] = {}
        incoming: list[batch.Incoming] = []
        for index, one in enumerate(request.jobs):
            source = one.source or f"jobs[{index}]"
            job = self._job_from(caller, dataclasses.replace(one, source=source), now)
            self._check_nodes(job, source, members)
            if job.id in seen:
                raise JobFileError(
                    f"{source}: job.id: job id {job.id} is also the id of {seen[job.id]}",
                    field="job.id",
                )
            seen[job.id] = source
            incoming.append(batch.Incoming(job, source))
        return incoming

    async def _build(self, plan: batch.Plan, incoming: Sequence[batch.Incoming]) -> None:
        """Prepare (compile, for Go) each job an apply writes, as a deploy does, before any
        change: a build that fails stops the whole apply, naming the job's file."""
        if self.prepare is None:
            return
        sources = {new.job.id: new.source for new in incoming}
        for job in plan.puts:
            try:
                await self.prepare(job)
            except ExecutionError as error:
                raise ExecutionError(f"{sources[job.id]}: {error.message}") from error

    def list_jobs(self, caller: Caller) -> list[JobSummary]:
        now = time.time()
        rows = self.node.read(  # copy what is needed; the views are built without the lock
            lambda state: [
                (j, _links_of(state, j.id), _last_run(state, j.id), state.streaks.get(j.id, 0))
                for j in state.jobs.values()
                if caller.may_see(j.owner_uid)
            ]
        )
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        memo: NextRunMemo = {}
        members = self._members()
        calendars = self._calendars(caller.uid if not caller.is_root else None)
        return [
            job_summary(
                job,
                links,
                last,
                moment,
                memo,
                members,
                failing,
                excluded=self.exceptions.resolve(job, calendars.get(job.owner_uid, {})),
            )
            for job, links, last, failing in rows
        ]

    def _calendars(self, owner_uid: int | None) -> dict[int, dict[str, tuple[str, ...]]]:
        """The calendars' rules by owner and name: one owner's, or (None) everyone's."""
        if owner_uid is None:
            return self.node.read(lambda state: state.calendars.rules())
        return {owner_uid: self.node.read(lambda state: state.calendars.rules_of(owner_uid))}

    def describe_job(self, job: Job, now: float) -> JobDetail:
        members = self._members()
        links, last, failing = self.node.read(
            lambda state: (
                _links_of(state, job.id),
                _last_run(state, job.id),
                state.streaks.get(job.id, 0),
            )
        )
        calendars = self._calendars(job.owner_uid).get(job.owner_uid, {})
        excluded = self.exceptions.resolve(job, calendars)
        return job_detail(job, links, last, now, members, failing, excluded)

    def describe(self, caller: Caller, job_id: str) -> JobDetail:
        return self.describe_job(self._owned(caller, job_id), time.time())

    async def modify(
        self,
        caller: Caller,
        job_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        schedule: str | None = None,
        paused: bool | None = None,
        pause_until: str | None = None,
    ) -> JobDetail:
        job = self._owned(caller, job_id)
        if all(v is None for v in (name, description, schedule, paused, pause_until)):
            raise InvalidInput(
                "nothing to change: give a new name (-n), description (-d) or schedule (-s), "
                "or --pause, --resume or --pause-until"
            )
        now = time.time()
        paused, paused_until = pause_change(job, paused, pause_until, now)
        spec = load_job_yaml(job.yaml, source="stored job YAML")
        changed = spec.with_changes(name=name, description=description, schedule=schedule)
        command = c.PatchJob(
            job_id=job.id,
            now=now,
            name=None if name is None else changed.name,
            description=None if description is None else changed.description,
            schedule=None if schedule is None else changed.schedule,
            paused=paused,
            yaml=changed.to_yaml(),
            paused_until=paused_until,
        )
        saved: Job = await self.node.propose(command)
        return self.describe_job(saved, time.time())

    async def remove(self, caller: Caller, job_id: str) -> RemovedJob:
        job = self._owned(caller, job_id)
        await self.node.propose(c.RemoveJob(job.id))
        await asyncio.to_thread(self.store.forget_job, job.id)  # it waits for queued saves
        return RemovedJob(removed=job.id, name=job.name)

    def recover(self, caller: Caller, job_id: str) -> JobFiles:
        job = self._owned(caller, job_id)
        stem = job.filename.rsplit(".", 1)[0]
        return JobFiles(yaml_name=f"{stem}.yml", yaml=job.yaml, file=job.filename, code=job.code)

    # -- links -------------------------------------------------------------

    async def link(self, caller: Caller, source: str, target: str, on: str) -> LinkAdded:
        self._owned(caller, source)
        self._owned(caller, target)
        try:
            when = LinkOn(on)
        except ValueError:
            raise InvalidInput(f"--on takes success, failure or always, not {on!r}") from None
        await self.node.propose(c.AddLink(source, target, on))
        return LinkAdded(source=source, target=target, on=when)

    async def unlink(self, caller: Caller, source: str, target: str) -> LinkRemoved:
        self._owned(caller, source)
        self._owned(caller, target)
        await self.node.propose(c.RemoveLink(source, target))
        return LinkRemoved(source=source, target=target)

    # -- runs --------------------------------------------------------------

    async def run_now(self, caller: Caller, job_id: str) -> PlannedRun:
        job = self._owned(caller, job_id)
        check_room((self.node.raft_dir,), "a new run")
        now = time.time()
        run = Run(
            id=run_id(job.id, round(now, 3)),
            job_id=job.id,
            owner_uid=job.owner_uid,
            instant=round(now, 3),
            reason=RunReason.MANUAL,
            node=self.node.name,
            planned_at=now,
        )
        await self.node.propose(c.PlanRuns(runs=(run,), ledger={}))
        return PlannedRun(run=run.id, job=job.id)

    # -- alerts ------------------------------------------------------------

    def alerts(self, caller: Caller, job_id: str | None, limit: int) -> list[AlertView]:
        """The caller's recent alerts (one job's, or all they may see), newest first."""
        if job_id is not None:
            self._owned(caller, job_id)

        def query(state: ReadState) -> list[Alert]:
            jobs = [job_id] if job_id is not None else list(state.alerts_of)
            return [
                state.alerts[aid]
                for jid in jobs
                for aid in state.alerts_of.get(jid, ())
                if aid in state.alerts and caller.may_see(state.alerts[aid].owner_uid)
            ]

        found = self.node.read(query)
        found.sort(key=lambda alert: (alert.created_at, alert.id), reverse=True)
        return [alert_view(alert) for alert in found[:limit]]

    async def notify_test(self, caller: Caller, job_id: str) -> list[TestSent]:
        """Send a test alert to each of the job's destinations, from this node, now."""
        job = self._owned(caller, job_id)
        if not job.notify:
            raise InvalidInput(f"job {job.id} has no notify: destinations to test")
        if self.sender is None:
            raise Unavailable("this node cannot send alerts")
        last = self.node.read(lambda state: _last_run(state, job.id))
        url = None if self.deliverer is None else self.deliverer.dashboard_url
        now = time.time()
        message = compose(
            event=str(AlertEvent.TEST),
            key=f"{job.id}@{now:.3f}:{AlertEvent.TEST}",
            job=job_facts(job),
            run=None if last is None else run_facts(last),
            detail=f"a test alert, sent by {caller.user} with odin notify test",
            dashboard_url=url,
            at=now,
            test=True,
        )
        sender = self.sender

        async def one(to: str) -> TestSent:
            try:
                dest = check_destination(to)
            except Problem as problem:
                return TestSent(to=mask(to), ok=False, outcome=problem.detail)
            outcome = await sender.send(dest, message)
            return TestSent(to=mask(to), ok=outcome.ok, outcome=outcome.detail)

        return list(await asyncio.gather(*(one(entry.to) for entry in job.notify)))

    def runs(self, caller: Caller, job_id: str, limit: int) -> list[RunView]:
        job = self._owned(caller, job_id)
        live = {r.id: r for r in self.node.runs_of(job.id) if r.owner_uid == job.owner_uid}
        # A job id can be reused after a remove: never show another owner's runs under it.
        history = {r.id: r for r in self.store.runs(job.id, limit) if r.owner_uid == job.owner_uid}
        merged = {**history, **live}
        ordered = sorted(merged.values(), key=lambda r: (r.instant, r.id), reverse=True)
        return [run_view(r) for r in ordered[:limit]]

    def run(self, caller: Caller, run_id_: str) -> Run:
        job_id = run_id_.split("@", 1)[0]
        job = self._owned(caller, job_id)
        run = self.node.run(run_id_) or self.store.run(run_id_)
        if run is None or run.owner_uid != job.owner_uid or not caller.may_see(run.owner_uid):
            raise NotFound(f"no run with id {run_id_}")
        return run

    async def output(self, caller: Caller, run_id_: str) -> RunOutput:
        """A run's output: kept here, else asked of its node, else its replicated tail; the
        store is read on a worker thread (a read first waits for queued saves)."""
        run = await asyncio.to_thread(self.run, caller, run_id_)
        stored = await asyncio.to_thread(self.store.output, run.id)
        if stored is None and run.node != self.node.name and self.remote_output is not None:
            fetched = RunOutput.from_json(await self.remote_output(run))
            if fetched is not None:
                return fetched
        if stored is None:
            return RunOutput(
                run=run.id,
                output=run.output_tail,
                bytes=run.output_bytes,
                dropped=run.dropped_bytes,
                tail_only=True,
            )
        return _whole_output(run.id, stored)

    def local_output(self, run_id_: str) -> RunOutput:
        """The full output this node keeps for a run (for another node asking for it)."""
        stored = self.store.output(run_id_)
        if stored is None:
            raise NotFound(f"no output of run {run_id_} on node {self.node.name}")
        return _whole_output(run_id_, stored)

    def stats(self, caller: Caller, job_id: str, only_run: str | None) -> list[RecordRow]:
        """The SDK records of a job's runs, oldest run first (or of one run); blocking."""
        views = self.runs(caller, job_id, config.RUNS_KEPT_IN_STORE_PER_JOB)
        if only_run is not None:
            views = [v for v in views if v.id == only_run]
            if not views:
                raise NotFound(f"no run with id {only_run} for job {job_id}")
        views = self.with_full_records(caller, job_id, views, only_run)
        return [
            RecordRow(run=v.id, seq=r.seq, ts=r.ts, type=r.type, desc=r.desc, value=r.value)
            for v in reversed(views)
            for r in v.records
        ]

    def with_full_records(
        self, caller: Caller, job_id: str, views: list[RunView], only_run: str | None = None
    ) -> list[RunView]:
        """``views`` of the job's runs with all their records where the state has a summary:
        from this node's run store, or asked of the node that ran them (blocking)."""
        job = self._owned(caller, job_id)
        partial: dict[str, list[str]] = {}
        for view in views:
            if view.record_count > len(view.records):
                partial.setdefault(view.node, []).append(view.id)
        whole: dict[str, tuple[Record, ...]] = {}
        for node, ids in partial.items():
            found = self._records_on(node, job, ids, only_run)
            whole.update((run, records_from(found[run])) for run in ids if run in found)
        return [dataclasses.replace(v, records=whole[v.id]) if v.id in whole else v for v in views]

    def _records_on(
        self, node: str, job: Job, ids: list[str], only_run: str | None
    ) -> dict[str, list[Any]]:
        """The whole records ``node`` keeps of these runs of ``job``, as JSON data (none if it
        cannot say)."""
        if node == self.node.name:
            return self.store.job_records(job.id, job.owner_uid, ids)
        if self.remote_records is None:
            return {}
        return self.remote_records(node, job.id, job.owner_uid, only_run) or {}

    def local_records(self, job_id: str, owner_uid: int, run_id_: str | None) -> NodeRecords:
        """The whole records this node keeps of a job's runs (for another node asking)."""
        ids = None if run_id_ is None else [run_id_]
        kept = self.store.job_records(job_id, owner_uid, ids)
        return NodeRecords(records={run: records_from(data) for run, data in kept.items()})

    # -- backups (root only) ------------------------------------------------

    @staticmethod
    def require_root(caller: Caller, action: str) -> None:
        """Refuse anyone but root: a backup holds every user's jobs and code."""
        if not caller.is_root:
            raise PermissionDenied(f"only root may {action} (it holds every user's jobs and code)")

    def backup(self, caller: Caller, now: float) -> bytes:
        """The backup document of the whole replicated state (every user's jobs and code),
        as JSON: the state goes in as the bytes its snapshot makes, not decoded again."""
        self.require_root(caller, "back up the cluster")
        state = self.node.state_json()
        head: dict[str, Any] = backup.document(
            {}, node=self.node.name, created_at=now, odin=__version__
        )
        head["state"] = orjson.Fragment(state)
        return orjson.dumps(head)

    async def restore(self, caller: Caller, document: Any, owner_map: list[str]) -> RestoreReport:
        """Re-create a backup's jobs and links (``odin.install.backup`` checks and plans it)
        through the ordinary Raft commands, so that every node applies them like any deploy;
        what the cluster has already is left alone."""
        self.require_root(caller, "restore a backup")
        mapping = backup.parse_owner_map(owner_map)
        parsed = backup.map_owners(backup.parse(document), mapping)
        jobs, links = self.node.read(
            lambda state: (dict(state.jobs), {src: dict(ts) for src, ts in state.links.items()})
        )
        plan = backup.plan_restore(parsed, jobs, links)
        for job in plan.put:  # jobs first: a link needs both ends
            await self.node.propose(c.PutJob(job))
        for link in plan.add:
            await self.node.propose(c.AddLink(link.source, link.target, str(link.on)))
        return RestoreReport(
            jobs_restored=len(plan.put),
            jobs_unchanged=plan.jobs_unchanged,
            links_restored=len(plan.add),
            links_unchanged=plan.links_unchanged,
            missing_owners=_missing_owners(parsed),
            owners_mapped=mapping,
            backup_created_at=parsed.created_at,
            backup_node=parsed.node,
        )


def _growth(plan: batch.Plan, deployed: dict[str, Job]) -> tuple[int, int]:
    """How many jobs an apply adds (less those it removes) and how much code (net)."""
    added = -len(plan.removed)
    change = -sum(code_bytes(job.code) for job in plan.removed)
    for job in plan.puts:
        old = deployed.get(job.id)
        added += old is None
        change += code_bytes(job.code) - (0 if old is None else code_bytes(old.code))
    return added, change


def _whole_output(run: str, stored: tuple[bytes, int, int]) -> RunOutput:
    data, total, dropped = stored
    text = data.decode("utf-8", errors="replace")
    return RunOutput(run=run, output=text, bytes=total, dropped=dropped, tail_only=False)


def _missing_owners(parsed: backup.Backup) -> list[str]:
    """Owners with no account here: their jobs are restored but cannot run until they have."""
    missing: set[str] = set()
    for job in parsed.jobs:
        try:
            pwd.getpwuid(job.owner_uid)
        except KeyError:
            missing.add(f"{job.owner} (uid {job.owner_uid})")
    return sorted(missing)
