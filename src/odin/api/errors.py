"""HTTP statuses of Odin's errors: one table, keyed by error class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from odin import errors as e

HTTP_STATUS: dict[type[e.OdinError], int] = {
    e.InvalidInput: 400,
    e.ScheduleError: 400,
    e.JobFileError: 400,
    e.NotFound: 404,
    e.PermissionDenied: 403,
    e.NotAMember: 403,
    e.NotAuthenticated: 401,
    e.Conflict: 409,
    e.LimitExceeded: 413,
    e.Unavailable: 503,
    e.NotLeader: 503,
    e.ExecutionError: 422,
}


def status_for(error: e.OdinError) -> int:
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def error_body(error: e.OdinError) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type(error).__name__, "message": error.message}
    for extra in ("field", "line", "position", "expected", "suggestion", "leader"):
        value = getattr(error, extra, None)
        if value is not None:
            body[extra] = value
    return {"error": body}


@dataclass(frozen=True)
class ErrorDetail:
    """An error as the API sends it; the optional fields are left out when they have no
    value (``error_body``)."""

    type: str  # the OdinError class: NotFound, PermissionDenied...
    message: str
    field: str | None = None  # JobFileError: where in the job YAML
    line: int | None = None
    position: int | None = None  # ScheduleError: where in the schedule text
    expected: str | None = None
    suggestion: str | None = None
    leader: str | None = None  # NotLeader: the new leader, if known


@dataclass(frozen=True)
class ErrorBody:
    """Every error answer's body (described in the OpenAPI document; ``error_body`` makes it)."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "default": {"model": ErrorBody, "description": "An error (the status is in HTTP_STATUS)"}
}
"""What every operation answers on an error, for ``FastAPI(responses=...)``."""


def http_error_body(status: int, detail: str) -> dict[str, Any]:
    """The body of an error the web framework raised itself (no such path, wrong method)."""
    kind = "NotFound" if status == 404 else "InvalidInput" if status < 500 else "OdinError"
    return {"error": {"type": kind, "message": detail}}


def install_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with the one JSON error body: an ``OdinError`` by this
    table, a malformed request as 400, a missing path or method as its HTTP status."""

    @app.exception_handler(e.OdinError)
    async def odin_error(_: Request, error: e.OdinError) -> JSONResponse:
        return JSONResponse(error_body(error), status_code=status_for(error))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        body = {"error": {"type": "InvalidInput", "message": f"{where}: {first.get('msg')}"}}
        return JSONResponse(body, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        body = http_error_body(error.status_code, str(error.detail))
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)
