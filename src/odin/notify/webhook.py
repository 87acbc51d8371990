"""Alerts to webhooks: one JSON POST, signed when the engine has a webhook secret.

The signature (``X-Odin-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``) lets
a receiver check that the alert came from this engine and is fresh; ``Idempotency-Key`` lets it
drop the repeats that retries may bring.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Final

import httpx

import odin
from odin import config
from odin.notify.message import Message
from odin.notify.outcome import Outcome, http_outcome

SIGNATURE_HEADER: Final = "X-Odin-Signature"
EVENT_HEADER: Final = "X-Odin-Event"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
USER_AGENT: Final = f"odin/{odin.__version__}"


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Odin-Signature`` value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def new_client() -> httpx.AsyncClient:
    """The HTTP client the engine sends webhooks with: bounded in time, never redirected."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.ALERT_SEND_TIMEOUT_S), follow_redirects=False
    )


async def post(
    client: httpx.AsyncClient,
    url: str,
    message: Message,
    secret: bytes | None,
    now: Callable[[], float],
) -> Outcome:
    """POST ``message`` to ``url`` once; network and HTTP problems come back as an ``Outcome``."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        IDEMPOTENCY_HEADER: message.key,
        EVENT_HEADER: message.event,
    }
    if secret is not None:
        headers[SIGNATURE_HEADER] = signature(secret, int(now()), message.body)
    try:
        async with asyncio.timeout(config.ALERT_SEND_TIMEOUT_S):
            async with client.stream(
                "POST",
                url,
                content=message.body,
                headers=headers,
                follow_redirects=False,
                timeout=config.ALERT_SEND_TIMEOUT_S,
            ) as response:
                # Only the status matters: the answer's body is left unread.
                return http_outcome(response.status_code)
    except TimeoutError:
        return Outcome.retryable("timed out")
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        return Outcome.refused("the URL cannot be used")
    except httpx.HTTPError as error:
        return network_outcome(error)


def network_outcome(error: httpx.HTTPError) -> Outcome:
    """A short reason for a network failure (never the URL); all of them may be retried."""
    if isinstance(error, httpx.ConnectTimeout):
        return Outcome.retryable("timed out connecting")
    if isinstance(error, httpx.TimeoutException):
        return Outcome.retryable("timed out waiting for the answer")
    if isinstance(error, httpx.RemoteProtocolError):
        return Outcome.retryable("the receiver closed the connection or did not speak HTTP")
    if not isinstance(error, httpx.ConnectError):
        return Outcome.retryable("network error")
    for cause in _causes(error):
        if isinstance(cause, ConnectionRefusedError):
            return Outcome.retryable("connection refused")
        if isinstance(cause, socket.gaierror):
            return Outcome.retryable("host not found")
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Outcome.retryable("TLS certificate not trusted")
        if isinstance(cause, ssl.SSLError):
            return Outcome.retryable("TLS handshake failed")
    return Outcome.retryable("could not connect")


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from (httpx wraps httpcore wraps the OS's)."""
    seen: set[int] = set()
    found: BaseException | None = error
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        yield found
        found = found.__cause__ or found.__context__
