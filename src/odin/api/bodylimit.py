"""Who may send the API a request body, and how large one, decided before any of it is read.

FastAPI reads a request's whole body before its dependencies learn who calls, so a
caller with no right to anything could make the engine buffer any amount before its
403 (300 MB took an engine from 370 MB to 1.27 GB). This pure ASGI middleware runs
first. On the Unix socket a body is admitted from root and members of group odin
(SO_PEERCRED), and from any process on a run's records route (the route checks the
run's token and process). On the TCP port it is admitted only with a node's stamp that
parses and is on time (``nodeauth``: the stamp's signature covers the body, so
``from_node`` checks it once the bounded body is read). Anyone else is refused before
the body is read. An admitted body is refused past ``MAX_REQUEST_BODY_BYTES`` (root's
restore: ``MAX_BACKUP_BYTES``): from its Content-Length at once, or as it streams.
A refusal leaves the rest of the body unread and closes the connection, except that a
refused body of at most ``REFUSED_BODY_DRAIN_BYTES`` is read and dropped first: closing on
unread bytes makes the kernel reset the connection, and the client would lose the answer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from odin import config
from odin.api.errors import error_body, status_for
from odin.api.peercred import PEER_KEY, PeerCredentials
from odin.engine import nodeauth
from odin.engine.identity import caller_from_uid
from odin.errors import LimitExceeded, OdinError, PermissionDenied

RESTORE_PATH = "/v1/admin/restore"  # root's restore: a backup may be far larger than a deploy
_NODE_STAMP = nodeauth.AUTH_HEADER.lower().encode("latin-1")
_TCP_REFUSED = (
    f"this port takes a request body only from the cluster's nodes ({nodeauth.AUTH_HEADER}): "
    "use the engine's Unix socket"
)


def over_limit(limit: int) -> LimitExceeded:
    """The error for a body past ``limit``, naming it."""
    return LimitExceeded(f"request body over {limit} bytes")


def _header(scope: Scope, name: bytes) -> str | None:
    """The value of header ``name`` (lower case), read from the scope: no body is touched."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None


def _declared_length(scope: Scope) -> int:
    """The Content-Length (0 when absent; the server has already refused a malformed one)."""
    value = (_header(scope, b"content-length") or "").strip()
    return int(value) if value.isdigit() else 0


def has_body(scope: Scope) -> bool:
    """Whether the request carries a body: a non-zero Content-Length or a chunked stream."""
    return _header(scope, b"transfer-encoding") is not None or _declared_length(scope) > 0


def _is_records_route(path: str) -> bool:
    """``/v1/runs/{run_id}/records``: its caller is a run's process, proven by the run's token."""
    parts = path.split("/")
    return len(parts) == 5 and parts[1:3] == ["v1", "runs"] and parts[4] == "records"


def _check_node_stamp(auth: nodeauth.NodeAuth, value: str) -> None:
    """All of a node's stamp that can be checked without the body: it parses and is on time."""
    try:
        stamp = nodeauth.parse(value)
    except PermissionDenied:
        raise PermissionDenied(_TCP_REFUSED) from None
    if abs(time.time() - stamp.millis / 1000) > auth.window_s:
        raise PermissionDenied(_TCP_REFUSED)


async def admit(scope: Scope, auth: nodeauth.NodeAuth) -> int:
    """The bound on this request's body if its caller may send one at all; raise if not."""
    peer: PeerCredentials | None = (scope.get("extensions") or {}).get(PEER_KEY)
    path: str = scope["path"]
    if peer is None:
        _check_node_stamp(auth, _header(scope, _NODE_STAMP) or "")
        return config.MAX_REQUEST_BODY_BYTES
    if _is_records_route(path):
        return config.MAX_REQUEST_BODY_BYTES
    # NotAMember for anybody else; in a thread like FastAPI's own (user lookups may block).
    who = await asyncio.to_thread(caller_from_uid, peer.uid, peer.pid)
    if who.is_root and path == RESTORE_PATH:
        return config.MAX_BACKUP_BYTES
    return config.MAX_REQUEST_BODY_BYTES


async def drained(scope: Scope, receive: Receive) -> bool:
    """Read and drop a refused body if it is at most ``REFUSED_BODY_DRAIN_BYTES``; False (with
    the rest unread) when it is longer, or declared longer, or the client went away."""
    most = config.REFUSED_BODY_DRAIN_BYTES
    seen = 0
    if _declared_length(scope) > most:
        return False
    while seen <= most:
        message = await receive()
        if message["type"] != "http.request":
            return False
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return seen <= most
    return False


async def refuse(send: Send, error: OdinError, *, close: bool) -> None:
    """Answer with the API's JSON error; ``close`` the connection when the body stays unread."""
    body = orjson.dumps(error_body(error))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status_for(error), "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Bounded:
    """One admitted request, its body counted as it streams and cut off past ``limit``."""

    limit: int
    received: int = 0
    started: bool = False
    refused: bool = False

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request; past the bound, answer 413 and drop what the app answers then."""

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    await self._cut_off(send)
            return message

        async def unless_refused(message: Message) -> None:
            if self.refused:
                return
            self.started = self.started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, counted, unless_refused)
        except LimitExceeded:
            if not self.refused:
                raise

    async def _cut_off(self, send: Send) -> None:
        """Answer 413 (unless the app has begun an answer) and stop the app's reading."""
        error = over_limit(self.limit)
        if not self.started:
            self.refused = True
            await refuse(send, error, close=True)
        raise error


class BodyLimit:
    """ASGI middleware: a request's body is admitted, bounded or refused before it is read."""

    def __init__(self, app: ASGIApp, node_auth: nodeauth.NodeAuth) -> None:
        self.app = app
        self.node_auth = node_auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass requests without a body; admit, bound or refuse the others."""
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        try:
            limit = await admit(scope, self.node_auth)
            if _declared_length(scope) > limit:
                raise over_limit(limit)
        except OdinError as error:
            await refuse(send, error, close=not await drained(scope, receive))
            return
        await _Bounded(limit).run(self.app, scope, receive, send)
