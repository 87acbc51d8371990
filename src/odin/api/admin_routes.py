"""Root-only administration endpoints: back up and restore the replicated state.

``GET /v1/admin/snapshot`` returns the whole replicated state (every user's
jobs and code) as a backup document; ``POST /v1/admin/restore`` takes one back.
Both go through the service (``Service.backup`` and ``Service.restore``), which
checks that the caller is root (a backup holds everyone's code) and re-creates
the jobs and links through the ordinary Raft commands. The file format and its
checks live in ``odin.install.backup``; here is only the HTTP: reading a bounded
body and describing the answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from odin import config
from odin.api.app import CallerDep
from odin.engine.service import Service
from odin.engine.views import RestoreReport
from odin.errors import InvalidInput, LimitExceeded

MAP_OWNER_HELP = (
    "OLDNAME=NEWNAME, repeatable: the backup's jobs of OLDNAME become this host's user "
    "NEWNAME's (their uid and gid); needed when an owner's uid is another user here, or "
    "their name has another uid here"
)


@dataclass(frozen=True)
class BackupDocument:
    """A backup (``odin.install.backup``): the replicated state as its snapshots hold it."""

    format: str
    v: int
    odin: str  # the version that wrote it
    created_at: float
    node: str
    state: dict[str, Any]


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


def admin_router(service: Service) -> APIRouter:
    """The admin endpoints, over ``service``."""
    router = APIRouter(prefix="/v1/admin", tags=["admin"])

    @router.get("/snapshot", response_model=BackupDocument)
    async def snapshot(who: CallerDep) -> Response:
        # On a worker thread: encoding the whole state takes long with many jobs.
        document = await asyncio.to_thread(service.backup, who, time.time())
        return Response(document, media_type="application/json")

    @router.post("/restore")
    async def restore(
        who: CallerDep,
        request: Request,
        map_owner: Annotated[list[str] | None, Query(description=MAP_OWNER_HELP)] = None,
    ) -> RestoreReport:
        service.require_root(who, "restore a backup")  # before the body is read
        return await service.restore(who, await _document(request), map_owner or [])

    return router
