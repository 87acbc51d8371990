"""The dashboard's web app: server-rendered pages, htmx fragments, event streams, metrics.

``create_dashboard`` is called by the composition root with the same service,
launcher and ``LinkMinter`` as the socket API. Every page acts for the
``Caller`` of its session through the same ``Service`` methods as the CLI, so
the CLI's rules hold here unchanged: a user sees only their own jobs, root all.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from odin import __version__, config
from odin.api.errors import status_for
from odin.cluster.model import Job
from odin.dashboard import metrics as m
from odin.dashboard import views
from odin.dashboard.auth import LinkMinter, SessionStore, csrf_token, private_token
from odin.dashboard.headers import SecurityHeaders
from odin.dashboard.live import SharedPolls
from odin.dashboard.oidc import OidcLogin
from odin.dashboard.settings import DashboardSettings
from odin.dashboard.throttle import PasswordGate
from odin.engine.identity import Caller, caller_from_uid
from odin.engine.launcher import Launcher
from odin.engine.loopwatch import LoopWatch
from odin.engine.service import Service
from odin.engine.views import NodeRow
from odin.errors import NotAMember, OdinError, PermissionDenied

HERE = Path(__file__).parent
SESSION_COOKIE = "odin_session"
METRICS_TOKEN_FILE = "metrics.token"


class NotLoggedIn(PermissionDenied):
    """No valid session: pages redirect to the login page, fragments answer 401."""


@dataclass
class Dashboard:
    """What every route needs: the engine's parts and the dashboard's own state."""

    service: Service
    launcher: Launcher
    node_info: Callable[[], list[NodeRow]]
    settings: DashboardSettings
    minter: LinkMinter
    sessions: SessionStore
    templates: Jinja2Templates
    metrics: m.RunMetrics
    next_runs: m.NextRuns
    metrics_token: str
    oidc: OidcLogin | None
    passwords: PasswordGate
    loop_watch: LoopWatch
    polls: SharedPolls

    def caller(self, request: Request) -> Caller:
        """The logged-in caller; membership is checked again at every request."""
        sid = request.session.get("sid")
        session = self.sessions.get(sid) if isinstance(sid, str) else None
        if session is None:
            raise NotLoggedIn("please log in")
        return caller_from_uid(session.uid)

    def render(self, request: Request, name: str, code: int = 200, **context: Any) -> Response:
        context.setdefault("user", None)
        context.update(
            request=request,
            csrf=csrf_token(request),
            version=__version__,
            oidc_name=self.oidc.settings.name if self.oidc else None,
        )
        return self.templates.TemplateResponse(request, name, context, status_code=code)


def create_dashboard(
    *,
    service: Service,
    launcher: Launcher,
    node_info: Callable[[], list[NodeRow]],
    data_dir: Path,
    settings: DashboardSettings,
    minter: LinkMinter,
    loop_watch: LoopWatch,
) -> FastAPI:
    """The dashboard app, to be served on its own TCP address (default 127.0.0.1:4200)."""
    dash = _dashboard(service, launcher, node_info, data_dir, settings, minter, loop_watch)
    app = FastAPI(
        title="Odin dashboard",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        max_body_size=config.DASHBOARD_MAX_BODY_BYTES,  # its forms are small; anyone may post
    )
    app.state.dashboard = dash
    app.add_middleware(
        SessionMiddleware,
        secret_key=private_token(data_dir / "dashboard.key"),
        session_cookie=SESSION_COOKIE,
        max_age=int(settings.session_ttl_s),
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _errors(app, dash)
    from odin.dashboard import login, pages

    login.routes(app, dash)
    pages.routes(app, dash)
    _metrics_route(app, dash)
    return app


def _dashboard(
    service: Service,
    launcher: Launcher,
    node_info: Callable[[], list[NodeRow]],
    data_dir: Path,
    settings: DashboardSettings,
    minter: LinkMinter,
    loop_watch: LoopWatch,
) -> Dashboard:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["local_time"] = views.local_time
    templates.env.filters["seconds"] = views.seconds
    templates.env.filters["duration"] = views.duration
    run_metrics = m.RunMetrics()
    run_metrics.seed(service.node.runs())
    service.node.on_event(run_metrics.handle)
    oidc = None
    if settings.oidc is not None:
        oidc = OidcLogin(settings.oidc, settings.url("/login/oidc/callback"))
    return Dashboard(
        service=service,
        launcher=launcher,
        node_info=node_info,
        settings=settings,
        minter=minter,
        sessions=SessionStore(data_dir / "dashboard.db", settings.session_ttl_s),
        templates=templates,
        metrics=run_metrics,
        next_runs=m.NextRuns(),
        metrics_token=private_token(data_dir / METRICS_TOKEN_FILE),
        oidc=oidc,
        passwords=PasswordGate(settings.pam_service),
        loop_watch=loop_watch,
        polls=SharedPolls(),
    )


def _is_fragment(request: Request) -> bool:
    return "hx-request" in request.headers or request.url.path.startswith("/events/")


def _errors(app: FastAPI, dash: Dashboard) -> None:
    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, _: NotLoggedIn) -> Response:
        if _is_fragment(request):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(OdinError)
    async def odin_error(request: Request, error: OdinError) -> Response:
        status = status_for(error)
        if _is_fragment(request):
            return dash.render(request, "_error.html", status, error=error, status=status)
        user = None if isinstance(error, NotAMember) else request.session.get("sid")
        return dash.render(
            request, "error.html", status, error=error, status=status, logged_in=bool(user)
        )


def _metrics_route(app: FastAPI, dash: Dashboard) -> None:
    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        visible = _metrics_reader(request, dash)
        if visible is None:
            return PlainTextResponse(
                "metrics need a bearer token (see docs/dashboard.md) or a dashboard login\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="odin"'},
            )
        accept = ",".join(request.headers.getlist("accept"))
        body, content_type = await asyncio.to_thread(_metrics_text, dash, visible, accept)
        return Response(body, media_type=content_type, headers={"Vary": "Accept"})


def _metrics_text(
    dash: Dashboard, visible: Callable[[int], bool], accept: str
) -> tuple[bytes, str]:
    """The exposition and its content type (OpenMetrics if ``accept`` asks for it), built on a
    worker thread: it walks every job and replicated run, and asks the Raft thread for its facts."""
    jobs, watches, health = _jobs(dash), _watches(dash), _health(dash)
    cluster = cluster_facts(dash)
    return m.exposition(
        dash.metrics, jobs, watches, cluster, visible, accept, health, dash.next_runs
    )


def _metrics_reader(request: Request, dash: Dashboard) -> Callable[[int], bool] | None:
    """Who reads /metrics: the token holder sees everything, a session user their own jobs."""
    given = request.headers.get("authorization", "")
    if given.startswith("Bearer ") and secrets.compare_digest(
        given.removeprefix("Bearer ").strip(), dash.metrics_token
    ):
        return lambda _uid: True
    try:
        return dash.caller(request).may_see
    except OdinError:
        return None


def _jobs(dash: Dashboard) -> dict[str, Job]:
    return dash.service.node.jobs()


def _health(dash: Dashboard) -> m.JobHealth:
    """Each job's last success and failure streak, and the alerts, from the replicated state."""
    node = dash.service.node
    now = time.time()
    return node.read(lambda state: m.job_health(state, now, node.name))


def _watches(dash: Dashboard) -> dict[m.WatchKey, float]:
    """The last numeric value of each (job, owner, watch series) in the replicated window."""
    runs = sorted(dash.service.node.runs(), key=lambda r: r.instant)
    latest: dict[m.WatchKey, tuple[float, float]] = {}
    for run in runs:
        for record in run.records:
            if record.type == "watch" and views.is_number(record.value):
                key = (run.job_id, run.owner_uid, record.desc)
                if key not in latest or latest[key][0] <= record.ts:
                    latest[key] = (record.ts, float(record.value))
    return {key: value for key, (_ts, value) in latest.items()}


def cluster_facts(dash: Dashboard) -> m.ClusterFacts:
    """Raft facts of this node; blocking (asks the Raft thread): call it in a thread."""
    node = dash.service.node
    deliverer = dash.service.deliverer  # sends alerts while this node leads
    try:
        raft: dict[str, Any] = dict(node.log.status())
        members = tuple(node.log.members())
    except OdinError:
        raft, members = {}, ()
    return m.ClusterFacts(
        node=node.name,
        is_leader=node.is_leader(),
        members=members,
        raft=raft,
        running=len(dash.launcher.live),
        stalls=dash.loop_watch.stalls(time.time()),
        launches=dash.launcher.admission.view(),
        alert_attempts=None if deliverer is None else dict(deliverer.attempts),
    )
