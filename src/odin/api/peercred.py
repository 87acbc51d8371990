"""Caller identity from the kernel: SO_PEERCRED on the engine's Unix socket.

uvicorn builds the ASGI scope inside its protocol class, so the hook lives
there: when a connection is made we ask the kernel who is on the other end and
wrap the app so that every request on that connection carries the answer in
``scope["extensions"]["odin.peer"]``. Nothing a client sends can change it. TCP
connections carry no peer credentials (``None``): they need a token.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

PEER_KEY = "odin.peer"


@dataclass(frozen=True)
class PeerCredentials:
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCredentials | None:
    """The credentials of the process at the other end of a Unix socket, else None."""
    if sock.family != socket.AF_UNIX:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return PeerCredentials(pid=pid, uid=uid, gid=gid)


class PeerCredProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus the kernel's word on who connected."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        creds = peer_credentials(sock) if sock is not None else None
        inner = self.app

        async def app_with_peer(scope: Any, receive: Any, send: Any) -> None:
            extensions = dict(scope.get("extensions") or {})
            extensions[PEER_KEY] = creds
            scope["extensions"] = extensions
            await inner(scope, receive, send)

        self.app = app_with_peer
