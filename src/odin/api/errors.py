"""HTTP statuses of Odin's errors: one table, keyed by error class."""

from __future__ import annotations

from typing import Any

from odin import errors as e

HTTP_STATUS: dict[type[e.OdinError], int] = {
    e.InvalidInput: 400,
    e.ScheduleError: 400,
    e.JobFileError: 400,
    e.NotFound: 404,
    e.PermissionDenied: 403,
    e.NotAMember: 403,
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
