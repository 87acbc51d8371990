"""The login page and the three ways through it: one-time link, PAM password, OIDC.

Each way ends in ``_start_session``, which drops whatever the browser's cookie
held (a fixed session id cannot be planted) and stores a new session with a new
CSRF token. Failures re-render the login page with the reason; a refused
password always with the same reason (``LOGIN_FAILED``). Opening a link only
shows whom it logs in: the login happens when that browser posts the page's
form back (``link_nonce``).
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response

from odin import config
from odin.dashboard.app import Dashboard
from odin.dashboard.auth import (
    LOGIN_FAILED,
    check_csrf,
    check_link_nonce,
    csrf_token,
    link_nonce,
)
from odin.dashboard.throttle import TooManyLogins
from odin.engine.identity import Caller, caller_from_uid
from odin.errors import OdinError, PermissionDenied, Unavailable

LINK_REFUSED = (
    "This login link was already used or has expired (links work once, for a minute). "
    "Run `odin dashboard` again for a new one."
)


def _start_session(request: Request, dash: Dashboard, who: Caller, method: str) -> Response:
    old = request.session.get("sid")
    if isinstance(old, str):
        dash.sessions.delete(old)
    request.session.clear()
    request.session["sid"] = dash.sessions.create(who.uid, method)
    csrf_token(request)
    return RedirectResponse("/jobs", status_code=303)


def _refused(
    request: Request,
    dash: Dashboard,
    message: str,
    status: int = 403,
    headers: dict[str, str] | None = None,
) -> Response:
    """The login page again, with why the login did not happen."""
    page = dash.render(request, "login.html", status, error=message)
    page.headers.update(headers or {})
    return page


def routes(app: FastAPI, dash: Dashboard) -> None:
    @app.get("/")
    async def home() -> Response:
        return RedirectResponse("/jobs", status_code=303)

    @app.get("/login")
    async def login_page(request: Request) -> Response:
        try:
            dash.caller(request)
            return RedirectResponse("/jobs", status_code=303)
        except OdinError:
            return dash.render(request, "login.html")

    @app.get("/login/oidc")
    async def oidc_start(request: Request) -> Response:
        if dash.oidc is None:
            return _refused(request, dash, "No OpenID Connect provider is configured.", 404)
        return await dash.oidc.start(request)

    @app.get("/login/oidc/callback")
    async def oidc_finish(request: Request) -> Response:
        if dash.oidc is None:
            return _refused(request, dash, "No OpenID Connect provider is configured.", 404)
        try:
            who = await dash.oidc.finish(request)
        except PermissionDenied as error:
            return _refused(request, dash, str(error))
        return _start_session(request, dash, who, "oidc")

    _password_route(app, dash)  # before the links: /login/{token} would match it too
    _link_routes(app, dash)

    @app.post("/logout")
    async def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
        check_csrf(request, csrf)
        sid = request.session.get("sid")
        if isinstance(sid, str):
            dash.sessions.delete(sid)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)


def _link_routes(app: FastAPI, dash: Dashboard) -> None:
    @app.get("/login/{token}")
    async def confirm_link(request: Request, token: str) -> Response:
        uid = dash.minter.peek(token)
        if uid is None:
            return _refused(request, dash, LINK_REFUSED)
        try:
            who = caller_from_uid(uid)
        except PermissionDenied as error:
            return _refused(request, dash, str(error))
        current = _current_user(request, dash)
        nonce = link_nonce(request, token)
        page = dash.render(
            request, "login_confirm.html", who=who, current=current, nonce=nonce, token=token
        )
        page.headers["Cache-Control"] = "no-store"
        return page

    @app.post("/login/{token}")
    async def redeem_link(
        request: Request, token: str, nonce: Annotated[str, Form(max_length=200)] = ""
    ) -> Response:
        try:
            check_link_nonce(request, token, nonce)
        except PermissionDenied as error:
            return _refused(request, dash, str(error))
        uid = dash.minter.redeem(token)
        if uid is None:
            return _refused(request, dash, LINK_REFUSED)
        try:
            who = caller_from_uid(uid)
        except PermissionDenied as error:
            return _refused(request, dash, str(error))
        return _start_session(request, dash, who, "link")


def _current_user(request: Request, dash: Dashboard) -> str | None:
    """Who this browser is logged in as now, if anyone (the confirmation page says so)."""
    try:
        return dash.caller(request).user
    except OdinError:
        return None


def _password_route(app: FastAPI, dash: Dashboard) -> None:
    @app.post("/login/password")
    async def password_login(
        request: Request,
        username: Annotated[str, Form(max_length=256)] = "",
        password: Annotated[str, Form(max_length=4096)] = "",
        csrf: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        check_csrf(request, csrf)
        address = request.client.host if request.client else ""
        try:
            who = await dash.passwords.check(address, username, password)
        except TooManyLogins as error:
            wait = str(math.ceil(error.retry_after))
            return _refused(request, dash, LOGIN_FAILED, 429, {"Retry-After": wait})
        except Unavailable as error:
            busy = {"Retry-After": str(math.ceil(config.DASHBOARD_LOGIN_FAILURE_S))}
            return _refused(request, dash, str(error), 503, busy)
        except PermissionDenied:
            return _refused(request, dash, LOGIN_FAILED, 401)
        return _start_session(request, dash, who, "password")
