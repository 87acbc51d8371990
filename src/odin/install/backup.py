"""The backup file: the replicated state, wrapped with a format name and versions.

A backup is JSON::

    {"format": "odin-backup", "v": 1, "odin": "0.1.0", "created_at": 1700000000.0,
     "node": "master-node", "state": <StateMachine.snapshot(), itself with "v">}

A restore does not load the snapshot wholesale: it re-creates the jobs and links
through the ordinary commands (``PutJob``, ``AddLink``), so it goes through the
Raft log like any deploy. ``plan_restore`` decides what to propose, and refuses
(changing nothing) a file that is not an Odin backup, a version this Odin does
not know, a job id held by another user, or links that would make a cycle.
``map_owners`` first matches each owner with this host's accounts by uid *and*
name: a uid that is someone else here, or a name that has another uid here, is
refused unless the restore maps that owner explicitly (``--map-owner OLD=NEW``).
Runs, the tick ledger and node membership are not restored: restored jobs
resume from the time of the restore, like a fresh deploy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pwd
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from odin import config
from odin.cluster.model import SCHEMA_VERSION, Job, LinkOn
from odin.cluster.state import reaches
from odin.errors import Conflict, InvalidInput, LimitExceeded, OdinError
from odin.jobs.ids import is_job_id
from odin.jobs.spec import JobSpec, load_job_yaml
from odin.schedule import parse as parse_schedule

FORMAT = "odin-backup"
VERSION = 1
# Fields set by the engine rather than the YAML, and their types.
BOOKKEEPING_TYPES: dict[str, tuple[type[Any], ...]] = {
    "paused": (bool,),
    "created_at": (int, float),
    "updated_at": (int, float),
    "version": (int,),
}
# Fields that a redeploy changes on its own: two jobs that differ only here are the same.
BOOKKEEPING = ("version", "created_at", "updated_at")

Links = Mapping[str, Mapping[str, LinkOn]]


@dataclass(frozen=True)
class Link:
    source: str
    target: str
    on: LinkOn


@dataclass(frozen=True)
class Backup:
    """A checked backup: the jobs and links it holds, and where it came from."""

    jobs: tuple[Job, ...]
    links: tuple[Link, ...]
    created_at: float
    node: str
    runs: int


def document(
    state: Mapping[str, Any], *, node: str, created_at: float, odin: str
) -> dict[str, Any]:
    """Wrap a state snapshot (already decoded from JSON) as a backup document."""
    return {
        "format": FORMAT,
        "v": VERSION,
        "odin": odin,
        "created_at": created_at,
        "node": node,
        "state": dict(state),
    }


def _not_a_backup(why: str) -> InvalidInput:
    return InvalidInput(f"this is not an Odin backup ({why}); make one with: odin backup -f FILE")


def _field(data: Mapping[str, Any], name: str, kind: type[Any], where: str) -> Any:
    value = data.get(name)
    if not isinstance(value, kind):
        raise _not_a_backup(f"{where}{name!r} is missing or not a {kind.__name__}")
    return value


def _version(data: Mapping[str, Any], supported: int, what: str) -> None:
    version = data.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _not_a_backup(f"{what} has no version")
    if version > supported:
        raise InvalidInput(
            f"this backup's {what} has version {version}; this Odin reads up to {supported}: "
            "upgrade Odin first"
        )


# The fields a job cannot be restored without, and their JSON types.
JOB_FIELDS: dict[str, type[Any]] = {
    "id": str,
    "owner_uid": int,
    "owner_gid": int,
    "owner": str,
    "name": str,
    "language": str,
    "filename": str,
    "timezone": str,
    "code_sha": str,
    "schedule": str,
    "code": str,
    "yaml": str,
}


def _job(index: int, item: Any) -> Job:
    if not isinstance(item, dict):
        raise _not_a_backup(f"job #{index} is not a mapping")
    for name, kind in JOB_FIELDS.items():
        _field(item, name, kind, f"job #{index}: ")
    try:
        job = Job.from_dict(item)
    except (TypeError, ValueError, AttributeError) as error:
        raise _not_a_backup(f"job #{index} is malformed: {error}") from None
    _check_job(job)
    return job


def _check_job(job: Job) -> None:
    """The checks a deploy makes, so that a hand-edited backup cannot plant a bad job."""
    if not is_job_id(job.id):
        raise _not_a_backup(f"{job.id!r} is not a job id")
    if len(job.code.encode()) > config.MAX_CODE_BYTES:
        raise LimitExceeded(f"job {job.id}: code over the limit of {config.MAX_CODE_BYTES} bytes")
    if hashlib.sha256(job.code.encode()).hexdigest() != job.code_sha:
        raise InvalidInput(f"job {job.id}: its code does not match its checksum (damaged file?)")
    for name, kinds in BOOKKEEPING_TYPES.items():
        value = getattr(job, name)
        if isinstance(value, bool) != (kinds == (bool,)) or not isinstance(value, kinds):
            raise _not_a_backup(f"job {job.id}: {name} is {value!r}")
    try:
        spec = load_job_yaml(job.yaml, source=f"job {job.id}")
        parse_schedule(job.schedule, default_tz=job.timezone)
    except OdinError as error:
        raise InvalidInput(f"job {job.id} in the backup is not valid: {error}") from None
    if spec.id != job.id:
        raise _not_a_backup(f"job {job.id}: its YAML names id {spec.id}")
    _check_policy(job, spec)


def _check_policy(job: Job, spec: JobSpec) -> None:
    """The run policy is derived from the YAML at deploy and never patched: they must agree."""
    derived = {
        "language": spec.language,
        "timeout_s": spec.timeout,
        "retries": spec.retries,
        "overlap": spec.overlap,
        "catchup": spec.catchup,
        "delivery": spec.delivery,
        "env": dict(spec.env),
        "workdir": spec.workdir,
        "nodes": tuple(spec.nodes),
        "notify": spec.notify,  # checked by the YAML's loader, as at deploy
        "warn_after_s": spec.warn_after,
        "grace_s": spec.grace,
        "exceptions": spec.exceptions,
        "on_excluded": spec.on_excluded,
    }
    for name, expected in derived.items():
        if getattr(job, name) != expected:
            raise _not_a_backup(f"job {job.id}: {name} does not match the job's YAML")


def _jobs(state: Mapping[str, Any]) -> tuple[Job, ...]:
    items = _field(state, "jobs", list, "state.")
    jobs = tuple(_job(index, item) for index, item in enumerate(items, start=1))
    ids = [job.id for job in jobs]
    if len(set(ids)) != len(ids):
        raise _not_a_backup("a job id appears twice")
    return jobs


def _links(state: Mapping[str, Any]) -> tuple[Link, ...]:
    links: list[Link] = []
    for source, targets in _field(state, "links", dict, "state.").items():
        if not isinstance(targets, dict):
            raise _not_a_backup(f"the links of {source} are not a mapping")
        for target, on in targets.items():
            try:
                links.append(Link(str(source), str(target), LinkOn(on)))
            except ValueError:
                raise _not_a_backup(f"link {source} -> {target} fires on {on!r}") from None
    return tuple(links)


def parse(data: Any) -> Backup:
    """Check a decoded backup document and extract what a restore needs."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _not_a_backup(f'no "format": "{FORMAT}" field')
    _version(data, VERSION, "file")
    state = _field(data, "state", dict, "")
    _version(state, SCHEMA_VERSION, "state")
    jobs = _jobs(state)
    links = _links(state)
    known = {job.id for job in jobs}
    for link in links:
        if link.source not in known or link.target not in known:
            raise _not_a_backup(f"link {link.source} -> {link.target} names a job it lacks")
    runs = state.get("runs", [])
    created = data.get("created_at")
    return Backup(
        jobs=jobs,
        links=links,
        created_at=float(created) if isinstance(created, int | float) else 0.0,
        node=str(data.get("node", "")),
        runs=len(runs) if isinstance(runs, list) else 0,
    )


def parse_owner_map(items: Iterable[str]) -> dict[str, str]:
    """``OLDNAME=NEWNAME`` items (``--map-owner``) as a mapping, each old name once."""
    mapping: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new or "=" in new:
            raise InvalidInput(f"--map-owner {item!r}: write it as OLDNAME=NEWNAME")
        if mapping.setdefault(old, new) != new:
            raise InvalidInput(f"--map-owner maps {old} twice ({mapping[old]} and {new})")
    return mapping


def _account(
    lookup: Callable[[Any], pwd.struct_passwd], key: int | str
) -> pwd.struct_passwd | None:
    """This host's account by uid or name (``lookup``), or None when there is none."""
    try:
        return lookup(key)
    except KeyError:
        return None


def owner_mismatch(job: Job) -> str | None:
    """How this host's accounts disagree with the job's owner (name and uid), if they do."""
    where = f"{job.owner} (uid {job.owner_uid} in the backup)"
    by_uid = _account(pwd.getpwuid, job.owner_uid)
    if by_uid is not None and by_uid.pw_name == job.owner:
        return None
    if by_uid is not None:
        return f"{where}: uid {job.owner_uid} is {by_uid.pw_name} here"
    by_name = _account(pwd.getpwnam, job.owner)
    if by_name is not None:
        return f"{where}: {job.owner} is uid {by_name.pw_uid} here"
    return None  # no account by either: restored, and reported as a missing owner


def _mapped(job: Job, new_name: str) -> Job:
    """``job`` given to this host's user ``new_name``: their name, uid and gid."""
    entry = _account(pwd.getpwnam, new_name)
    if entry is None:
        raise InvalidInput(f"--map-owner {job.owner}={new_name}: there is no user {new_name} here")
    return dataclasses.replace(
        job, owner=entry.pw_name, owner_uid=entry.pw_uid, owner_gid=entry.pw_gid
    )


def map_owners(backup: Backup, mapping: Mapping[str, str]) -> Backup:
    """The backup with its owners renamed by ``mapping`` (old name → a user of this host).

    Refuses, changing nothing, a mapping of a name that owns no job, and any owner
    left unmapped whose uid is another user here or whose name has another uid here
    (their jobs would run as someone else); the error lists every such owner.
    """
    owners = {job.owner for job in backup.jobs}
    stray = sorted(set(mapping) - owners)
    if stray:
        raise InvalidInput(
            f"--map-owner names {', '.join(stray)}, who own(s) no job in this backup "
            f"(its owners: {', '.join(sorted(owners)) or 'none'})"
        )
    jobs = tuple(_mapped(j, mapping[j.owner]) if j.owner in mapping else j for j in backup.jobs)
    unmapped = (job for job in backup.jobs if job.owner not in mapping)
    mismatches = sorted({m for m in map(owner_mismatch, unmapped) if m is not None})
    if mismatches:
        raise Conflict(
            "the backup's owners do not match this host's users, nothing was restored: "
            f"{'; '.join(mismatches)}. Say whose the jobs become with --map-owner "
            "OLDNAME=NEWNAME (--map-owner alice=alice keeps the name and takes its uid here)"
        )
    return dataclasses.replace(backup, jobs=jobs)


@dataclass(frozen=True)
class RestorePlan:
    """What a restore proposes; the unchanged ones make a second restore a no-op."""

    put: tuple[Job, ...]
    jobs_unchanged: int
    add: tuple[Link, ...]
    links_unchanged: int


def _content(job: Job) -> dict[str, Any]:
    data = job.to_dict()
    for name in BOOKKEEPING:
        data.pop(name)
    return data


def _check_cycles(links: Links, adding: tuple[Link, ...]) -> None:
    graph = {source: set(targets) for source, targets in links.items()}
    for link in adding:
        if reaches(graph, link.target, link.source):
            raise Conflict(
                f"restoring link {link.source} -> {link.target} would make a cycle with the "
                "links the cluster has now; unlink one of them first"
            )
        graph.setdefault(link.source, set()).add(link.target)


def plan_restore(backup: Backup, jobs: Mapping[str, Job], links: Links) -> RestorePlan:
    """Jobs and links to propose against the current ``jobs`` and ``links``."""
    for job in backup.jobs:
        current = jobs.get(job.id)
        if current is not None and current.owner_uid != job.owner_uid:
            raise Conflict(
                f"job id {job.id} belongs to uid {current.owner_uid} here but to uid "
                f"{job.owner_uid} in the backup; remove one of them first"
            )
    put = tuple(j for j in backup.jobs if j.id not in jobs or _content(jobs[j.id]) != _content(j))
    add = tuple(k for k in backup.links if links.get(k.source, {}).get(k.target) != k.on)
    _check_cycles(links, add)
    return RestorePlan(
        put=put,
        jobs_unchanged=len(backup.jobs) - len(put),
        add=add,
        links_unchanged=len(backup.links) - len(add),
    )
