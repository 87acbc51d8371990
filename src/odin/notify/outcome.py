"""The result of one attempt to deliver an alert, and how an HTTP status maps to one.

Kept apart from ``odin.notify.send`` so that the transports (webhook, mail, service) and the
dispatcher can all use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

# Statuses that say "not now" rather than "never": the same request may succeed later.
RETRY_STATUSES: Final = frozenset(
    {HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_EARLY, HTTPStatus.TOO_MANY_REQUESTS}
)


@dataclass(frozen=True)
class Outcome:
    """Whether an attempt delivered the alert, whether another attempt may, and a short why.

    ``detail`` is shown to the job's owner: it never holds a secret or the destination's URL.
    """

    ok: bool
    retry: bool
    detail: str

    @classmethod
    def sent(cls, detail: str) -> Outcome:
        return cls(ok=True, retry=False, detail=detail)

    @classmethod
    def retryable(cls, detail: str) -> Outcome:
        return cls(ok=False, retry=True, detail=detail)

    @classmethod
    def refused(cls, detail: str) -> Outcome:
        return cls(ok=False, retry=False, detail=detail)


def http_outcome(status: int) -> Outcome:
    """The outcome of an HTTP answer: 2xx sent, 408/425/429/5xx retried, anything else final."""
    if 200 <= status < 300:
        return Outcome.sent(f"HTTP {status}")
    if status in RETRY_STATUSES or 500 <= status < 600:
        return Outcome.retryable(f"HTTP {status}")
    if 300 <= status < 400:
        return Outcome.refused(f"HTTP {status}: redirects are not followed, give the final URL")
    return Outcome.refused(f"HTTP {status}: the receiver refused it")
