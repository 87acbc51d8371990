"""The login page and the three ways through it: one-time link, PAM password, OIDC.

Each way ends in ``_start_session``, which drops whatever the browser's cookie
held (a fixed session id cannot be planted) and stores a new session with a new
CSRF token. Failures re-render the login page with the reason.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response

from odin.dashboard.app import Dashboard
from odin.dashboard.auth import check_csrf, check_password, csrf_token
from odin.engine.identity import Caller, caller_from_uid
from odin.errors import OdinError, PermissionDenied

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


def _refused(request: Request, dash: Dashboard, message: str, status: int = 403) -> Response:
    return dash.render(request, "login.html", status, error=message)


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

    @app.get("/login/{token}")
    async def redeem_link(request: Request, token: str) -> Response:
        uid = dash.minter.redeem(token)
        if uid is None:
            return _refused(request, dash, LINK_REFUSED)
        try:
            who = caller_from_uid(uid)
        except PermissionDenied as error:
            return _refused(request, dash, str(error))
        return _start_session(request, dash, who, "link")

    @app.post("/login/password")
    async def password_login(
        request: Request,
        username: Annotated[str, Form(max_length=256)] = "",
        password: Annotated[str, Form(max_length=4096)] = "",
        csrf: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        check_csrf(request, csrf)
        service = dash.settings.pam_service
        try:
            who = await asyncio.to_thread(check_password, username, password, service)
        except PermissionDenied as error:
            return _refused(request, dash, str(error), 401)
        return _start_session(request, dash, who, "password")

    @app.post("/logout")
    async def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
        check_csrf(request, csrf)
        sid = request.session.get("sid")
        if isinstance(sid, str):
            dash.sessions.delete(sid)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)
