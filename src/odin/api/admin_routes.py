"""Root-only administration endpoints: back up and restore the replicated state.

``GET /v1/admin/snapshot`` returns the whole replicated state (every user's
jobs and code) as a backup document; ``POST /v1/admin/restore`` takes one back
and re-creates its jobs and links through the ordinary Raft commands, so that
every node applies them like any deploy. Both are for root only: a backup holds
everyone's code. The file format and the checks live in ``odin.install.backup``.
"""

from __future__ import annotations

import json
import pwd
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from odin import __version__, config
from odin.api.app import CallerDep
from odin.cluster.commands import AddLink, PutJob
from odin.engine.identity import Caller
from odin.engine.node import EngineNode
from odin.errors import InvalidInput, LimitExceeded, PermissionDenied
from odin.install import backup

MAP_OWNER_HELP = (
    "OLDNAME=NEWNAME, repeatable: the backup's jobs of OLDNAME become this host's user "
    "NEWNAME's (their uid and gid); needed when an owner's uid is another user here, or "
    "their name has another uid here"
)


def _root_only(who: Caller, action: str) -> None:
    if not who.is_root:
        raise PermissionDenied(f"only root may {action} (it holds every user's jobs and code)")


def _snapshot(node: EngineNode) -> bytes:
    """The backup document, with the state spliced in as the bytes the snapshot made."""
    with node.lock:
        state = node.state.snapshot()
    head = backup.document({}, node=node.name, created_at=time.time(), odin=__version__)
    del head["state"]
    text = json.dumps(head, separators=(",", ":"))
    return text[:-1].encode() + b',"state":' + state + b"}"


async def _document(request: Request) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > config.MAX_BACKUP_BYTES:
        raise LimitExceeded(f"a backup is limited to {config.MAX_BACKUP_BYTES} bytes")
    body = await request.body()
    try:
        return json.loads(body)
    except ValueError:
        raise InvalidInput(
            "this is not an Odin backup (not JSON); make one with: odin backup -f FILE"
        ) from None


def _missing_owners(parsed: backup.Backup) -> list[str]:
    """Owners with no account here: their jobs are restored but cannot run until they have."""
    missing: set[str] = set()
    for job in parsed.jobs:
        try:
            pwd.getpwuid(job.owner_uid)
        except KeyError:
            missing.add(f"{job.owner} (uid {job.owner_uid})")
    return sorted(missing)


async def _restore(node: EngineNode, plan: backup.RestorePlan) -> None:
    """Jobs first (a link needs both ends), each one a committed command."""
    for job in plan.put:
        await node.propose(PutJob(job))
    for link in plan.add:
        await node.propose(AddLink(link.source, link.target, str(link.on)))


def admin_router(node: EngineNode) -> APIRouter:
    """The admin endpoints over ``node``'s replicated state."""
    router = APIRouter(prefix="/v1/admin", tags=["admin"])

    @router.get("/snapshot")
    async def snapshot(who: CallerDep) -> Response:
        _root_only(who, "back up the cluster")
        return Response(_snapshot(node), media_type="application/json")

    @router.post("/restore")
    async def restore(
        who: CallerDep,
        request: Request,
        map_owner: Annotated[list[str] | None, Query(description=MAP_OWNER_HELP)] = None,
    ) -> dict[str, Any]:
        _root_only(who, "restore a backup")
        mapping = backup.parse_owner_map(map_owner or [])
        parsed = backup.map_owners(backup.parse(await _document(request)), mapping)
        with node.lock:
            jobs = dict(node.state.jobs)
            links = {source: dict(targets) for source, targets in node.state.links.items()}
        plan = backup.plan_restore(parsed, jobs, links)
        await _restore(node, plan)
        return {
            "jobs_restored": len(plan.put),
            "jobs_unchanged": plan.jobs_unchanged,
            "links_restored": len(plan.add),
            "links_unchanged": plan.links_unchanged,
            "missing_owners": _missing_owners(parsed),
            "owners_mapped": mapping,
            "backup_created_at": parsed.created_at,
            "backup_node": parsed.node,
        }

    return router
