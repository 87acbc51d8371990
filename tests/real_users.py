"""Helpers for the end-to-end tests that act as real users (no tests here).

``raw_http`` sends hand-built HTTP requests over an engine's Unix socket *as a
real user* (a short stdlib-only Python run through ``runuser``), so the engine
learns the caller from SO_PEERCRED exactly as for the CLI, and paths may hold
anything the CLI would refuse or quote (``../``, ``%00``, newlines).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine_harness import Engine, odin

ALICE, BOB, EVE = "odin-alice", "odin-bob", "odin-eve"

_CLIENT = r"""
import json, socket, sys
out = []
for method, path, body, headers, tcp in json.load(sys.stdin):
    data = body.encode("latin-1") if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: odin\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    raw = head.encode("latin-1") + b"\r\n" + data
    try:
        if tcp:
            sock = socket.create_connection(("127.0.0.1", tcp), timeout=20)
        else:
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(20)
            sock.connect(sys.argv[1])
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        sock.close()
        reply = b"".join(chunks)
        status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0
        text = reply.split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace")
        out.append([status, text])
    except OSError as error:
        out.append([-1, f"{type(error).__name__}: {error}"])
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    tcp_port: int | None = None


@dataclass(frozen=True)
class Reply:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def raw_http(engine: Engine, user: str | None, requests: list[Request]) -> list[Reply]:
    """Send ``requests`` in order as ``user`` (root when None); one reply per request."""
    payload = [
        [
            r.method,
            r.path,
            None if r.body is None else (r.body if isinstance(r.body, str) else json.dumps(r.body)),
            dict(r.headers),
            r.tcp_port,
        ]
        for r in requests
    ]
    command = ["/usr/bin/python3", "-I", "-c", _CLIENT, str(engine.socket)]
    if user is not None:
        command = ["/usr/sbin/runuser", "-u", user, "--", *command]
    done = subprocess.run(
        command, input=json.dumps(payload), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [Reply(status, text) for status, text in json.loads(done.stdout)]


def runs_of(engine: Engine, job_id: str, user: str = ALICE, port: str | None = None) -> list[Any]:
    extra = ["-p", port] if port else []
    result = odin("log", "-i", job_id, "-o", "json", "-n", "200", *extra, engine=engine, user=user)
    runs: list[Any] = result.json()
    return runs


def finished(engine: Engine, job_id: str, user: str = ALICE) -> list[Any]:
    return [r for r in runs_of(engine, job_id, user) if r["status"] not in ("planned", "running")]


def deploy(engine: Engine, yaml_path: Path, user: str = ALICE) -> None:
    odin("deploy", "-f", str(yaml_path), engine=engine, user=user)


def processes_of(user: str) -> list[int]:
    """Live (non-zombie) processes of ``user``, from /proc."""
    import pwd

    uid = pwd.getpwnam(user).pw_uid
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)] and "zombie" not in fields.get(
            "State", ""
        ):
            found.append(int(name))
    return found


def pids_with_arg(fragment: str) -> list[int]:
    """Processes whose command line contains ``fragment`` (a unique temporary path)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if fragment.encode() in cmdline:
            found.append(int(name))
    return found


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def engine_exit(engine: Engine, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Start the engine expecting it to refuse: its exit code and output."""
    return subprocess.run(
        engine.command(), capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
    )


PY = sys.executable
