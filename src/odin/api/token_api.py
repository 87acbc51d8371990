"""API tokens over HTTP: managed on the socket, used on the dashboard's listener under ``/api``.

``token_router`` adds ``/v1/tokens`` to the socket API: a member (or root) makes, lists and
revokes tokens there, known by the kernel (SO_PEERCRED) as for every other call.

``token_api`` is the API for automation on another host: the CLI's operations on one's own
jobs, at ``/api/v1/...`` on the dashboard's address (``with_token_api`` sends ``/api`` there
and every other path to the dashboard, so no dashboard cookie or session is ever read for
it). Before any body is read, ``TokenGate`` admits a request only

- over HTTPS, or from a loopback address, or when the dashboard's settings say it is behind
  TLS (``public_url`` https, or its own ``tls_cert``): a token never travels in clear on a
  network the engine can see;
- from an address that has not had ``TOKEN_FAILURES_PER_ADDRESS`` tokens refused in the last
  ``TOKEN_FAILURE_WINDOW_S`` (429 with ``Retry-After``);
- with ``Authorization: Bearer <token>`` naming a live token (401 otherwise: unknown,
  expired or revoked, each said so).

Each route then requires its scope (403 naming it) and acts through the same ``Service``
call as the socket API, as the token's owner on the owner's jobs only. Tokens, nodes,
backups, dashboard logins and internal routes have no route here: asking answers 403.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from odin import __version__, config
from odin.api.app import (
    FOLLOW_RESPONSES,
    ApplyBody,
    CallerDep,
    DeployBody,
    LinkBody,
    ModifyBody,
    _follow,
    _json,
)
from odin.api.bodylimit import drained
from odin.api.errors import ERROR_RESPONSES, error_body, install_handlers, status_for
from odin.cluster.tokens import TokenScope
from odin.dashboard.throttle import RateLimiter
from odin.engine.launcher import Launcher
from odin.engine.service import ApplyRequest, DeployRequest, Service
from odin.engine.tokens import (
    TokenCaller,
    TokenCreated,
    TokenRequest,
    TokenRevoked,
    TokenService,
    TokenView,
)
from odin.engine.views import (
    AlertView,
    ApplyAction,
    ApplyResult,
    Deployed,
    JobDetail,
    JobFiles,
    JobSummary,
    LinkAdded,
    LinkRemoved,
    PlannedRun,
    RecordRow,
    RemovedJob,
    RunOutput,
    RunView,
    TestSent,
    run_view,
)
from odin.errors import LimitExceeded, NotAuthenticated, NotFound, OdinError, PermissionDenied

log = logging.getLogger("odin.tokens")

API_PREFIX = "/api"
TOKEN_KEY = "odin.token"  # the scope extension that carries the checked token's caller
PLAIN_HTTP = (
    "API tokens are taken only over HTTPS (or from this host): serve the dashboard with TLS "
    "(tls_cert and tls_key in dashboard.yml) or behind a TLS reverse proxy with an https "
    "public_url; see docs/api.md#tokens"
)
REFUSED: dict[str, str] = {
    "tokens": "make, list or revoke tokens",
    "nodes": "see or change the cluster's nodes",
    "admin": "back up or restore the cluster",
    "dashboard": "log in to the dashboard",
    "internal": "call the nodes' internal API",
    "loop": "read the engine's internals",
}


# -- on the socket: making, listing and revoking tokens --------------------------------


class TokenBody(BaseModel):
    name: str = Field(max_length=config.TOKEN_NAME_CHARS)
    scopes: list[TokenScope] = Field(min_length=1, max_length=len(TokenScope))
    # Seconds from now; null: it never expires.
    expires_in: float | None = Field(
        default=config.TOKEN_DEFAULT_EXPIRY_S,
        ge=config.MIN_DURATION_S,
        le=config.MAX_DURATION_S,
    )


def token_router(tokens: TokenService) -> APIRouter:
    """``/v1/tokens`` for the socket API: the caller's own tokens (root: everyone's)."""
    router = APIRouter()

    @router.post("/v1/tokens")
    async def create_token(who: CallerDep, body: TokenBody) -> TokenCreated:
        """Make an API token for the caller's own jobs; its secret is in this answer only."""
        request = TokenRequest(body.name, tuple(body.scopes), body.expires_in)
        return await tokens.create(who, request)

    @router.get("/v1/tokens")
    async def list_tokens(who: CallerDep) -> list[TokenView]:
        """The caller's tokens (root: everyone's), never their secrets."""
        return tokens.list_tokens(who)

    @router.delete("/v1/tokens/{token_id}")
    async def revoke_token(who: CallerDep, token_id: str) -> TokenRevoked:
        """Revoke a token: every node refuses it (401) once this answers."""
        return await tokens.revoke(who, token_id)

    return router


# -- on the dashboard's listener: using them ---------------------------------------------


class Throttled(LimitExceeded):
    """Too many refused tokens from one address; ``retry_after`` seconds until it may retry."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def is_loopback(host: str) -> bool:
    """Whether a client address is this host's own (IPv4, IPv6 or IPv4-mapped)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None


class TokenGate:
    """ASGI middleware: a request reaches the token API only over a safe transport, from an
    address not throttled, with a live token; checked before any of its body is read."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: TokenService,
        *,
        behind_tls: bool,
        failures: RateLimiter | None = None,
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.behind_tls = behind_tls
        self.failures = failures or RateLimiter(
            config.TOKEN_FAILURES_PER_ADDRESS,
            config.TOKEN_FAILURE_WINDOW_S,
            max_keys=config.TOKEN_TRACKED,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no websocket or lifespan here: a connection without an answer is dropped
        try:
            who = await self._admit(scope)
        except OdinError as error:
            await _refuse(scope, receive, send, error)
            return
        extensions = dict(scope.get("extensions") or {})
        extensions[TOKEN_KEY] = who
        scope["extensions"] = extensions
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope) -> TokenCaller:
        client = scope.get("client") or ("", 0)
        host = str(client[0])
        if not (self.behind_tls or scope.get("scheme") == "https" or is_loopback(host)):
            raise PermissionDenied(PLAIN_HTTP)
        wait = self.failures.wait_s(host)
        if wait > 0:
            raise Throttled(
                "too many refused API tokens from this address: try again later",
                retry_after=wait,
            )
        given = _header(scope, b"authorization")
        try:
            return await self.tokens.authenticate(given)
        except NotAuthenticated as error:
            if given:  # a token was tried (a request with none guesses nothing)
                self.failures.record(host)
                log.info("refused an API token from %s: %s", host or "?", error)
            raise


async def _refuse(scope: Scope, receive: Receive, send: Send, error: OdinError) -> None:
    """The API's JSON error, with ``WWW-Authenticate`` on 401 and ``Retry-After`` on 429; the
    connection is closed when the body is left unread."""
    status = status_for(error)
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    if isinstance(error, Throttled):
        status = 429
        headers.append((b"retry-after", str(math.ceil(error.retry_after)).encode()))
        error = LimitExceeded(error.message)  # its wire name, which clients know
    if isinstance(error, NotAuthenticated):
        headers.append((b"www-authenticate", b'Bearer realm="odin"'))
    body = orjson.dumps(error_body(error))
    headers.append((b"content-length", str(len(body)).encode()))
    if not await drained(scope, receive):
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def token_caller(request: Request) -> TokenCaller:
    """The caller the gate admitted (the API is never reached without one)."""
    who = request.scope.get("extensions", {}).get(TOKEN_KEY)
    if not isinstance(who, TokenCaller):
        raise NotAuthenticated("no API token")
    return who


def _needs(scope: TokenScope, action: str) -> Any:
    """A dependency: the token's caller, if its scopes grant ``scope`` (403 naming it)."""

    def dependency(request: Request) -> TokenCaller:
        who = token_caller(request)
        who.require(scope, action)
        return who

    return Depends(dependency)


Reader = Annotated[TokenCaller, _needs(TokenScope.READ, "read jobs")]
Deployer = Annotated[TokenCaller, _needs(TokenScope.DEPLOY, "deploy or change jobs")]
Runner = Annotated[TokenCaller, _needs(TokenScope.RUN, "run jobs")]


@dataclass(frozen=True)
class TokenWhoAmI:
    uid: int
    gid: int
    user: str
    root: bool  # always False: a token never acts as root
    token: str  # the token's id
    name: str
    scopes: list[TokenScope]


def token_api(
    service: Service, launcher: Launcher, tokens: TokenService, *, behind_tls: bool
) -> ASGIApp:
    """The token API app (paths under ``/api/v1``), behind its gate."""
    app = FastAPI(
        title="Odin engine API (tokens)",
        version=__version__,
        responses=ERROR_RESPONSES,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        max_body_size=config.MAX_REQUEST_BODY_BYTES,  # past the gate: a token's owner only
    )
    install_handlers(app)
    _read_routes(app, service, launcher)
    _write_routes(app, service)
    _refused_routes(app)
    return TokenGate(app, tokens, behind_tls=behind_tls)


def with_token_api(api: ASGIApp, dashboard: ASGIApp) -> ASGIApp:
    """One ASGI app for the dashboard's listener: ``/api`` to the token API, the rest to the
    dashboard (whose cookies and sessions the token API never sees)."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            await api(scope, receive, send)
        else:
            await dashboard(scope, receive, send)

    return dispatch


def _read_routes(app: FastAPI, service: Service, launcher: Launcher) -> None:
    """What any token may do: read its owner's jobs, runs, output, records and alerts."""
    v1 = API_PREFIX + "/v1"

    @app.get(v1 + "/whoami")
    async def whoami(who: Reader) -> TokenWhoAmI:
        return TokenWhoAmI(
            uid=who.uid,
            gid=who.gid,
            user=who.user,
            root=False,
            token=who.token_id,
            name=who.token_name,
            scopes=list(who.scopes),
        )

    @app.get(v1 + "/jobs", response_model=list[JobSummary])
    async def list_jobs(who: Reader) -> Response:
        who.used("list")
        return _json(await asyncio.to_thread(service.list_jobs, who))

    @app.get(v1 + "/jobs/{job_id}")
    async def describe(who: Reader, job_id: str) -> JobDetail:
        who.used("describe", f"job {job_id}")
        return service.describe(who, job_id)

    @app.get(v1 + "/jobs/{job_id}/runs", response_model=list[RunView])
    async def runs(
        who: Reader, job_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 20
    ) -> Response:
        who.used("log", f"job {job_id}")
        return _json(await asyncio.to_thread(service.runs, who, job_id, limit))

    @app.get(v1 + "/jobs/{job_id}/stats", response_model=list[RecordRow])
    async def stats(
        who: Reader, job_id: str, run: Annotated[str | None, Query(max_length=200)] = None
    ) -> Response:
        who.used("stats", f"job {job_id}")
        return _json(await asyncio.to_thread(service.stats, who, job_id, run))

    @app.get(v1 + "/alerts", response_model=list[AlertView])
    async def alerts(
        who: Reader,
        job: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> Response:
        who.used("alerts", f"job {job}" if job else "")
        return _json(await asyncio.to_thread(service.alerts, who, job, limit))

    @app.get(v1 + "/runs/{run_id}")
    async def run_detail(who: Reader, run_id: str) -> RunView:
        who.used("log", f"run {run_id}")
        return run_view(await asyncio.to_thread(service.run, who, run_id))

    @app.get(v1 + "/runs/{run_id}/output")
    async def output(who: Reader, run_id: str) -> RunOutput:
        who.used("log --output", f"run {run_id}")
        return await service.output(who, run_id)

    @app.get(
        v1 + "/runs/{run_id}/follow", response_class=StreamingResponse, responses=FOLLOW_RESPONSES
    )
    async def follow(who: Reader, run_id: str) -> StreamingResponse:
        who.used("log --follow", f"run {run_id}")
        await asyncio.to_thread(service.run, who, run_id)
        return StreamingResponse(_follow(launcher, run_id), media_type="application/octet-stream")


def _write_routes(app: FastAPI, service: Service) -> None:
    """What the deploy and run scopes add: change and run the owner's jobs."""
    v1 = API_PREFIX + "/v1"

    @app.post(v1 + "/jobs")
    async def deploy(who: Deployer, body: DeployBody) -> Deployed:
        result = await service.deploy(who, DeployRequest(yaml=body.yaml, code=body.code))
        who.used("deploy", f"job {result.job.id}")
        return result

    @app.post(v1 + "/apply", response_model=ApplyResult)
    async def apply(who: Deployer, body: ApplyBody) -> Response:
        jobs = [DeployRequest(yaml=j.yaml, code=j.code, source=j.source) for j in body.jobs]
        request = ApplyRequest(jobs, prune=body.prune, dry_run=body.dry_run, keep=body.keep)
        result = await service.apply(who, request)
        changed = [item.id for item in result.items if item.action is not ApplyAction.UNCHANGED]
        who.used("apply" + (" --dry-run" if body.dry_run else ""), f"jobs {','.join(changed)}")
        return _json(result)

    @app.patch(v1 + "/jobs/{job_id}")
    async def modify(who: Deployer, job_id: str, body: ModifyBody) -> JobDetail:
        who.used("modify", f"job {job_id}")
        return await service.modify(
            who,
            job_id,
            name=body.name,
            description=body.description,
            schedule=body.schedule,
            paused=body.paused,
        )

    @app.delete(v1 + "/jobs/{job_id}")
    async def remove(who: Deployer, job_id: str) -> RemovedJob:
        who.used("remove", f"job {job_id}")
        return await service.remove(who, job_id)

    @app.get(v1 + "/jobs/{job_id}/files")
    async def recover(who: Deployer, job_id: str) -> JobFiles:
        who.used("recover", f"job {job_id}")
        return service.recover(who, job_id)

    @app.post(v1 + "/jobs/{job_id}/notify/test", response_model=list[TestSent])
    async def notify_test(who: Deployer, job_id: str) -> Response:
        who.used("notify test", f"job {job_id}")
        return _json(await service.notify_test(who, job_id))

    @app.post(v1 + "/links")
    async def link(who: Deployer, body: LinkBody) -> LinkAdded:
        who.used("link", f"jobs {body.source} -> {body.target}")
        return await service.link(who, body.source, body.target, body.on)

    @app.delete(v1 + "/links")
    async def unlink(
        who: Deployer,
        source: Annotated[str, Query(max_length=64)],
        target: Annotated[str, Query(max_length=64)],
    ) -> LinkRemoved:
        who.used("unlink", f"jobs {source} -> {target}")
        return await service.unlink(who, source, target)

    @app.post(v1 + "/jobs/{job_id}/runs")
    async def run_now(who: Runner, job_id: str) -> PlannedRun:
        planned = await service.run_now(who, job_id)
        who.used("run", f"job {job_id} (run {planned.run})")
        return planned


def _refused_routes(app: FastAPI) -> None:
    """Whatever else is asked under ``/api/v1``: 403 for what tokens may never do, else 404."""

    @app.api_route(
        API_PREFIX + "/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
    )
    async def not_for_tokens(request: Request, rest: str) -> Response:
        who = token_caller(request)
        first = rest.split("/", 1)[0]
        if first in REFUSED or rest.endswith("/records"):
            what = REFUSED.get(first, "write a run's records")
            log.info(
                "API token %s of %s (uid %d) refused: %s /api/v1/%s",
                who.token_id,
                who.user,
                who.uid,
                request.method,
                rest,
            )
            raise PermissionDenied(
                f"an API token cannot {what}: do it on a node's host, over the engine's socket"
            )
        raise NotFound(f"no such operation: {request.method} /api/v1/{rest}")
