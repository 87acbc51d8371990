"""A small HTTP client for the engine's API over its Unix socket.

It uses the standard library's ``http.client`` on an ``AF_UNIX`` socket: the
CLI starts fast, and the engine learns who calls from the kernel. The CLI learns
who serves from the kernel too: it talks only to a socket in a directory of
root's or the caller's, served by root or the caller (``odin.cli.trust``).
Errors come back as the engine's own ``OdinError`` classes (by their wire name).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from odin import config, paths
from odin.cli import trust
from odin.errors import ERROR_TYPES, NotAMember, OdinError, Unavailable

TIMEOUT_S = 120.0


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("odin", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        """Connect, but only to a socket that root or the caller set up and serves."""
        path = Path(self.unix_path)
        trust.check_socket_dir(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
            trust.check_peer(sock, path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _socket_dirs() -> list[Path]:
    """Where the sockets of this host's nodes live: beside ODIN_SOCKET, root's, then this user's."""
    dirs: list[Path] = []
    env = os.environ.get("ODIN_SOCKET")
    if env:
        dirs.append(Path(env).parent)
    dirs.append(paths.runtime_dir(0))
    if os.geteuid() != 0:
        dirs.append(paths.runtime_dir(os.geteuid()))
    return list(dict.fromkeys(dirs))


def socket_path(port: str | None) -> Path:
    """Which engine to talk to: ``--port`` if given, else ODIN_SOCKET, else the default node."""
    env = os.environ.get("ODIN_SOCKET")
    if not port and env:
        return Path(env)
    number = paths.parse_address(port)[1] if port else config.DEFAULT_HTTP_PORT
    names = [f"odin-{number}.sock"]
    if number == config.DEFAULT_HTTP_PORT:
        names.insert(0, "odin.sock")
    candidates = [d / n for d in _socket_dirs() for n in names]
    return next((c for c in candidates if _present(c)), candidates[0])


def _present(path: Path) -> bool:
    """Whether something is at ``path``; one we may not reach counts (connecting says why)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return True


def other_nodes(path: Path) -> list[str]:
    """The HTTP ports of the other nodes whose sockets are on this host (for error messages)."""
    found: list[str] = []
    for directory in _socket_dirs():
        if trust.directory_problem(directory) is not None:
            continue  # not root's or the caller's: its sockets are no nodes of theirs
        for candidate in sorted(directory.glob("odin-*.sock")):
            port = candidate.name.removeprefix("odin-").removesuffix(".sock")
            if candidate.resolve() != path.resolve() and port.isdigit() and port not in found:
                found.append(port)
    return found


def _send(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    payload: bytes | None,
    headers: dict[str, str],
) -> None:
    """Send a request; an engine that hung up mid-body (over its bound) has answered: read it."""
    try:
        conn.request(method, path, body=payload, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        if payload is None:
            raise


def quote_id(value: str) -> str:
    return quote(value, safe="")


class EngineClient:
    """Calls the engine; every failure is an ``OdinError``."""

    def __init__(self, path: Path, timeout: float = TIMEOUT_S) -> None:
        self.path = path
        self.timeout = timeout

    def _connection(self) -> http.client.HTTPConnection:
        return UnixHTTPConnection(str(self.path), self.timeout)

    def _unreachable(self, error: OSError) -> OdinError:
        if isinstance(error, PermissionError):
            return NotAMember(
                f"permission denied on {self.path}: only root and members of group "
                f"'{config.ODIN_GROUP}' may use Odin (sudo usermod -aG {config.ODIN_GROUP} $USER, "
                "then log in again)"
            )
        others = other_nodes(self.path)
        hint = (
            f"other nodes on this host: --port {', --port '.join(others)}"
            if others
            else "start one with 'odin-engine' (or 'make run'), or pick another node with --port"
        )
        return Unavailable(
            f"no Odin engine is answering on {self.path} ({error.strerror or error}); {hint}"
        )

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        kept = {k: v for k, v in (query or {}).items() if v is not None and v != []}
        if kept:
            path = f"{path}?{urlencode(kept, doseq=True)}"  # a list value: the key repeated
        conn = self._connection()
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            _send(conn, method, path, payload, headers)
            response = conn.getresponse()
            data = response.read()
        except OSError as error:
            raise self._unreachable(error) from None
        finally:
            conn.close()
        return _decode(response.status, data)

    def stream(self, path: str) -> Iterator[bytes]:
        conn = self._connection()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            if response.status != 200:
                _decode(response.status, response.read())
            while chunk := response.read1(65536):
                yield chunk
        except OSError as error:
            raise self._unreachable(error) from None
        finally:
            conn.close()


def _decode(status: int, data: bytes) -> Any:
    try:
        value = json.loads(data) if data else None
    except ValueError:
        raise OdinError(f"the engine answered {status} with something that is not JSON") from None
    if status >= 400:
        detail = value.get("error", {}) if isinstance(value, dict) else {}
        cls = ERROR_TYPES.get(str(detail.get("type")), OdinError)
        message = str(detail.get("message") or f"the engine answered {status}")
        raise cls(message)
    return value
