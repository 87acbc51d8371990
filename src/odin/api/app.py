"""The engine's HTTP API (FastAPI): one app for the Unix socket and the TCP port.

Who calls comes from the kernel (SO_PEERCRED, see ``peercred``) or, for an
SDK inside a run, from the run's token; never from the request body. Every
``OdinError`` becomes a JSON error with the status from ``api.errors``.

Every answer has a type (the service's are in ``odin.engine.views``, the few of
this module's own below), so the OpenAPI document at ``/openapi.json`` describes
each operation's answer and its errors, and the schema fuzz test
(``tests/api/test_fuzz_api.py``) checks real answers against it. A list goes out as
JSON bytes made by orjson (``_json``), its type given as ``response_model``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from odin import __version__, config
from odin.api.bodylimit import BodyLimit
from odin.api.errors import ERROR_RESPONSES, install_handlers
from odin.api.peercred import PEER_KEY, PeerCredentials
from odin.api.reference import reference_page
from odin.engine.identity import Caller, caller_from_uid
from odin.engine.launcher import Launcher
from odin.engine.loopwatch import LoopWatch, Stalls
from odin.engine.nodeauth import AUTH_HEADER, NodeAuth
from odin.engine.nodes import NodeAdmin, NodeRequest, local_address
from odin.engine.records import add_records
from odin.engine.service import ApplyRequest, DeployRequest, Service
from odin.engine.views import (
    AlertView,
    ApplyResult,
    Deployed,
    JobDetail,
    JobFiles,
    JobSummary,
    LinkAdded,
    LinkRemoved,
    NodeAdded,
    NodeRecords,
    NodeRemoved,
    NodeRow,
    PlannedRun,
    RecordRow,
    RemovedJob,
    RunOutput,
    RunView,
    TestSent,
    run_view,
)
from odin.errors import PermissionDenied

log = logging.getLogger("odin.api")


class DeployBody(BaseModel):
    yaml: str = Field(max_length=config.MAX_YAML_BYTES)
    code: str = Field(max_length=config.MAX_CODE_BYTES)


class ApplyJobBody(BaseModel):
    yaml: str = Field(max_length=config.MAX_YAML_BYTES)
    code: str = Field(max_length=config.MAX_CODE_BYTES)
    source: str = Field(default="", max_length=config.MAX_PATH_CHARS)  # its file, for messages


class ApplyBody(BaseModel):
    jobs: list[ApplyJobBody] = Field(max_length=config.MAX_JOBS_PER_USER)
    prune: bool = False  # remove the caller's jobs that are neither in jobs nor in keep
    dry_run: bool = False  # the plan only: nothing changes
    keep: list[Annotated[str, Field(max_length=64)]] = Field(
        default=[], max_length=config.MAX_JOBS_PER_USER
    )  # ids of the rest of a batch sent in several requests (a prune leaves them)


class ModifyBody(BaseModel):
    name: str | None = Field(default=None, max_length=config.MAX_NAME_CHARS)
    description: str | None = Field(default=None, max_length=config.MAX_DESCRIPTION_CHARS)
    schedule: str | None = Field(default=None, max_length=config.MAX_SCHEDULE_CHARS)
    paused: bool | None = None
    pause_until: str | None = Field(default=None, max_length=200)  # "Monday 08:00", ISO...


class LinkBody(BaseModel):
    source: str = Field(max_length=64)
    target: str = Field(max_length=64)
    on: str = Field(default="success", max_length=16)


class NodeBody(BaseModel):
    name: str = Field(max_length=64)
    http: str = Field(max_length=300)
    raft: str = Field(max_length=300)


class RecordsBody(BaseModel):
    records: list[Any] = Field(max_length=config.MAX_RECORDS_PER_RUN)


# -- this module's own answers (the service's are in odin.engine.views) ----------------


@dataclass(frozen=True)
class Health:
    ok: bool
    version: str
    node: str


@dataclass(frozen=True)
class WhoAmI:
    uid: int
    gid: int
    user: str
    root: bool


@dataclass(frozen=True)
class RecordsAccepted:
    accepted: int  # records in the request (those already held are not kept twice)


@dataclass(frozen=True)
class Stopping:
    stopping: str  # the node's name


@dataclass(frozen=True)
class LoopReport:
    """How long this engine's event loop was held (``odin.engine.loopwatch.Stalls``)."""

    worst_s: float
    recent_s: float
    window_s: int
    # Pairs as two-item arrays (a tuple type would be "prefixItems", which schemathesis
    # reads as OpenAPI 3.0's invalid array-valued "items"):
    buckets: Sequence[Sequence[int | float]]  # [bound in seconds, wakes at most that late]
    wakes: int
    total_s: float
    peaks: Sequence[Sequence[int | float]]  # [Unix second, worst delay in it], oldest first


FOLLOW_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The run's output as it is written, until it ends (nothing if it "
        "is not running on this node)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


HTML_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "default": {
        "description": "An error (the status is in HTTP_STATUS)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
}
"""An HTML page's errors: JSON like every other error (not the page's own media type)."""


def peer_of(request: Request) -> PeerCredentials | None:
    peer: PeerCredentials | None = request.scope.get("extensions", {}).get(PEER_KEY)
    return peer


def caller(request: Request) -> Caller:
    peer = peer_of(request)
    if peer is None:
        raise PermissionDenied("this port does not identify callers: use the engine's Unix socket")
    return caller_from_uid(peer.uid, peer.pid)


CallerDep = Annotated[Caller, Depends(caller)]


async def from_node(request: Request) -> None:
    """Only another node of the cluster passes: with a signature made for this very request."""
    auth: NodeAuth = request.app.state.node_auth
    path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    query: bytes = request.scope.get("query_string", b"")
    target = path + b"?" + query if query else path
    body = await request.body()
    auth.verify(request.method, target, body, request.headers.get(AUTH_HEADER, ""))


NodeDep = Annotated[None, Depends(from_node)]


def create_app(service: Service, launcher: Launcher, admin: NodeAdmin) -> FastAPI:
    """The API over ``service``; ``admin`` lists and changes the cluster's nodes."""
    app = FastAPI(
        title="Odin engine API",
        version=__version__,
        responses=ERROR_RESPONSES,
        # Served below to members only; FastAPI's /docs and /redoc load scripts from a CDN.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.node_auth = admin.membership.auth
    app.add_middleware(BodyLimit, node_auth=admin.membership.auth)  # before any body is read

    install_handlers(app)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document(who: CallerDep) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/v1/reference", response_class=HTMLResponse, responses=HTML_ERROR_RESPONSES)
    async def reference(who: CallerDep) -> HTMLResponse:
        """This API's reference: every operation, its parameters and answers, as one page."""
        return HTMLResponse(reference_page(app.openapi()))

    @app.get("/v1/health")
    async def health() -> Health:
        return Health(ok=True, version=__version__, node=service.node.name)

    @app.get("/v1/whoami")
    async def whoami(who: CallerDep) -> WhoAmI:
        return WhoAmI(uid=who.uid, gid=who.gid, user=who.user, root=who.is_root)

    @app.post("/v1/jobs")
    async def deploy(who: CallerDep, body: DeployBody) -> Deployed:
        return await service.deploy(who, DeployRequest(yaml=body.yaml, code=body.code))

    @app.post("/v1/apply", response_model=ApplyResult)
    async def apply(who: CallerDep, body: ApplyBody) -> Response:
        """Plan a batch of job files against the caller's jobs and, unless a dry run, apply
        it: every create, update and (with prune) remove in one atomic change."""
        jobs = [DeployRequest(yaml=j.yaml, code=j.code, source=j.source) for j in body.jobs]
        request = ApplyRequest(jobs, prune=body.prune, dry_run=body.dry_run, keep=body.keep)
        return _json(await service.apply(who, request))

    @app.get("/v1/jobs", response_model=list[JobSummary])
    async def list_jobs(who: CallerDep) -> Response:
        return _json(await asyncio.to_thread(service.list_jobs, who))

    @app.get("/v1/jobs/{job_id}")
    async def describe(who: CallerDep, job_id: str) -> JobDetail:
        return service.describe(who, job_id)

    @app.patch("/v1/jobs/{job_id}")
    async def modify(who: CallerDep, job_id: str, body: ModifyBody) -> JobDetail:
        return await service.modify(
            who,
            job_id,
            name=body.name,
            description=body.description,
            schedule=body.schedule,
            paused=body.paused,
            pause_until=body.pause_until,
        )

    @app.delete("/v1/jobs/{job_id}")
    async def remove(who: CallerDep, job_id: str) -> RemovedJob:
        return await service.remove(who, job_id)

    @app.get("/v1/jobs/{job_id}/files")
    async def recover(who: CallerDep, job_id: str) -> JobFiles:
        return service.recover(who, job_id)

    @app.post("/v1/jobs/{job_id}/runs")
    async def run_now(who: CallerDep, job_id: str) -> PlannedRun:
        return await service.run_now(who, job_id)

    @app.get("/v1/jobs/{job_id}/runs", response_model=list[RunView])
    async def runs(
        who: CallerDep, job_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 20
    ) -> Response:
        return _json(await asyncio.to_thread(service.runs, who, job_id, limit))

    @app.get("/v1/jobs/{job_id}/stats", response_model=list[RecordRow])
    async def stats(
        who: CallerDep, job_id: str, run: Annotated[str | None, Query(max_length=200)] = None
    ) -> Response:
        return _json(await asyncio.to_thread(service.stats, who, job_id, run))

    @app.get("/v1/alerts", response_model=list[AlertView])
    async def alerts(
        who: CallerDep,
        job: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> Response:
        return _json(await asyncio.to_thread(service.alerts, who, job, limit))

    @app.post("/v1/jobs/{job_id}/notify/test", response_model=list[TestSent])
    async def notify_test(who: CallerDep, job_id: str) -> Response:
        return _json(await service.notify_test(who, job_id))

    @app.post("/v1/links")
    async def link(who: CallerDep, body: LinkBody) -> LinkAdded:
        return await service.link(who, body.source, body.target, body.on)

    @app.delete("/v1/links")
    async def unlink(
        who: CallerDep,
        source: Annotated[str, Query(max_length=64)],
        target: Annotated[str, Query(max_length=64)],
    ) -> LinkRemoved:
        return await service.unlink(who, source, target)

    @app.get("/v1/runs/{run_id}")
    async def run_detail(who: CallerDep, run_id: str) -> RunView:
        return run_view(await asyncio.to_thread(service.run, who, run_id))  # it may read the store

    @app.get("/v1/runs/{run_id}/output")
    async def output(who: CallerDep, run_id: str) -> RunOutput:
        return await service.output(who, run_id)

    @app.get(
        "/v1/runs/{run_id}/follow", response_class=StreamingResponse, responses=FOLLOW_RESPONSES
    )
    async def follow(who: CallerDep, run_id: str) -> StreamingResponse:
        await asyncio.to_thread(service.run, who, run_id)
        return StreamingResponse(_follow(launcher, run_id), media_type="application/octet-stream")

    @app.post("/v1/runs/{run_id}/records")
    async def records(request: Request, run_id: str, body: RecordsBody) -> RecordsAccepted:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        peer = peer_of(request)
        accepted = add_records(launcher, run_id, token, peer.pid if peer else None, body.records)
        return RecordsAccepted(accepted=accepted)

    @app.get("/v1/nodes")
    async def nodes(who: CallerDep) -> list[NodeRow]:
        return admin.rows()

    @app.post("/v1/nodes")
    async def add_node(who: CallerDep, body: NodeBody) -> NodeAdded:
        http, spawn = local_address(body.http)
        raft, _ = local_address(body.raft)
        return await admin.add(who, NodeRequest(body.name, http, raft), spawn=spawn)

    @app.delete("/v1/nodes/{name}")
    async def remove_node(who: CallerDep, name: str) -> NodeRemoved:
        return await admin.remove(who, name)

    @app.post("/v1/internal/shutdown")
    async def shutdown(_: NodeDep) -> Stopping:
        admin.stopping.set()
        return Stopping(stopping=service.node.name)

    @app.get("/v1/internal/runs/{run_id}/output")
    async def node_output(_: NodeDep, run_id: str) -> RunOutput:
        return await asyncio.to_thread(service.local_output, run_id)

    @app.get("/v1/internal/jobs/{job_id}/records", response_model=NodeRecords)
    async def node_records(
        _: NodeDep,
        job_id: str,
        owner: Annotated[int, Query(ge=0)],
        run: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        return _json(await asyncio.to_thread(service.local_records, job_id, owner, run))

    from odin.api.admin_routes import admin_router  # it imports CallerDep from here

    app.include_router(admin_router(service))
    from odin.api.calendar_routes import calendar_router  # likewise
    from odin.engine.calendar_service import CalendarService

    app.include_router(calendar_router(CalendarService(service)))
    return app


def loop_router(watch: LoopWatch) -> APIRouter:
    """``GET /v1/loop``: how long this engine's event loop was held (``odin.engine.loopwatch``)."""
    router = APIRouter()

    @router.get("/v1/loop")
    async def loop_stalls(who: CallerDep) -> LoopReport:
        return loop_report(watch.stalls(time.time()))

    return router


def loop_report(stalls: Stalls) -> LoopReport:
    return LoopReport(
        worst_s=stalls.worst_s,
        recent_s=stalls.recent_s,
        window_s=stalls.window_s,
        buckets=[[b, n] for b, n in zip(stalls.bounds, stalls.counts, strict=True)],
        wakes=stalls.wakes,
        total_s=stalls.total_s,
        peaks=[[second, worst] for second, worst in stalls.peaks],
    )


async def _follow(launcher: Launcher, run_id: str) -> AsyncIterator[bytes]:
    """Stream a live run's output until it ends (nothing if it is not running here)."""
    live = launcher.live.get(run_id)
    if live is None:
        return
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1024)

    def watcher(_: str, chunk: bytes | None) -> None:
        if queue.full():
            queue.get_nowait()  # a slow reader loses the oldest chunk, never the end
        queue.put_nowait(chunk)

    backlog = bytes(live.recent)
    live.watchers.append(watcher)
    try:
        if backlog:
            yield backlog
        while (chunk := await queue.get()) is not None:
            yield chunk
    finally:
        if watcher in live.watchers:
            live.watchers.remove(watcher)


def _json(data: Any) -> Response:
    """Lists as JSON bytes directly (orjson writes the dataclasses of ``odin.engine.views``
    as they are): FastAPI's per-item validation of a list answer, and even the standard
    encoder, cost more than building it (100,000 jobs). The route's ``response_model``
    still describes it in the OpenAPI document."""
    return Response(orjson.dumps(data), media_type="application/json")
