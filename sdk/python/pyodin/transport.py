"""One HTTP/1.1 POST over a Unix socket, with one deadline for the whole exchange.

``http.client`` applies its timeout per socket operation, so a server that
trickles bytes could hold the job far longer; this client checks one deadline
before every operation instead. It speaks just enough HTTP for the engine:
``Connection: close``, ``Content-Length`` or chunked replies.
"""

from __future__ import annotations

import socket
import time

from .errors import OdinSDKError
from .values import Value

HEADER_END = b"\r\n\r\n"


class TransportError(OdinSDKError):
    """The exchange did not complete (refused, timed out, garbled)."""


class Reply(Value):
    __slots__ = ("status", "body")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body


def post(
    socket_path: str, path: str, headers: dict[str, str], body: bytes, timeout: float
) -> Reply:
    """POST ``body``; raise ``TransportError`` unless a whole reply came within ``timeout``."""
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(_remaining(deadline))
            sock.connect(socket_path)
            _send_all(sock, _request(path, headers, body), deadline)
            return _read_reply(sock, deadline)
    except (OSError, ValueError) as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}") from exc


def _request(path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: odin", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the engine did not answer in time")
    return left


def _send_all(sock: socket.socket, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        sock.settimeout(_remaining(deadline))
        view = view[sock.send(view) :]


def _read_reply(sock: socket.socket, deadline: float) -> Reply:
    received = b""
    while True:
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(65536)
        received += chunk
        reply = _parse(received, complete=not chunk)
        if reply is not None:
            return reply
        if not chunk:
            raise ValueError("the engine closed the connection mid-reply")


def _parse(data: bytes, *, complete: bool) -> Reply | None:
    """The reply in ``data``, or None while more bytes are needed."""
    head, found, rest = data.partition(HEADER_END)
    if not found:
        return None
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(rest)
        return None if body is None else Reply(status, body)
    if "content-length" in headers:
        length = int(headers["content-length"])
        return Reply(status, rest[:length]) if len(rest) >= length else None
    return Reply(status, rest) if complete else None


def _dechunk(data: bytes) -> bytes | None:
    body = b""
    while True:
        size_line, found, data = data.partition(b"\r\n")
        if not found:
            return None
        size = int(size_line.split(b";")[0], 16)
        if size == 0:  # then optional trailers and an empty line
            return body if data.startswith(b"\r\n") or b"\r\n\r\n" in data else None
        if len(data) < size + 2:
            return None
        body, data = body + data[:size], data[size + 2 :]
