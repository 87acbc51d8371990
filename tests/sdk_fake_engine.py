"""A small real engine for testing the job SDKs: the records endpoint, nothing else.

It speaks the protocol the SDKs are built for (HTTP/1.1 over a Unix socket,
``POST /v1/runs/{run_id}/records`` with a bearer token) and can be told to be
slow, to fail with 5xx for a while, or to refuse. The real engine is tested
end to end elsewhere; this one exists so the SDKs are tested against a socket.
"""

from __future__ import annotations

import json
import os
import shutil
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote

RECORD_TYPES = frozenset({"watch", "condition", "result"})


@dataclass
class Behaviour:
    """How the engine misbehaves: answers after ``delay_s``, then ``fail_first`` 503s."""

    delay_s: float = 0.0
    fail_first: int = 0
    refuse_status: int | None = None


@dataclass
class Captured:
    """What the engine saw; ``records`` is de-duplicated by seq, as the real engine keeps them."""

    requests: list[dict[str, object]] = field(default_factory=list)
    arrivals: list[dict[str, object]] = field(default_factory=list)
    by_seq: dict[int, dict[str, object]] = field(default_factory=dict)

    @property
    def records(self) -> list[dict[str, object]]:
        return [self.by_seq[seq] for seq in sorted(self.by_seq)]


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False


class FakeEngine:
    """A records endpoint on a fresh Unix socket; use as a context manager."""

    def __init__(
        self,
        *,
        run_id: str = "report@2024-11-29T00:00:00Z",
        token: str = "run-token-1",
        behaviour: Behaviour | None = None,
        socket_path: str | None = None,
    ) -> None:
        self.run_id, self.token = run_id, token
        self.behaviour = behaviour or Behaviour()
        self.captured = Captured()
        self._tmp = tempfile.mkdtemp(prefix="odin-sdk-")
        self.socket_path = socket_path or os.path.join(self._tmp, "engine.sock")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None

    def env(self, **extra: str) -> dict[str, str]:
        """The environment the engine gives a run."""
        return {
            "ODIN_SOCKET": self.socket_path,
            "ODIN_JOB_ID": "job-from-env",
            "ODIN_JOB_NAME": "name from env",
            "ODIN_RUN_ID": self.run_id,
            "ODIN_RUN_TOKEN": self.token,
            "ODIN_NODE": "master-node",
            **extra,
        }

    def start(self) -> FakeEngine:
        self._server = _Server(self.socket_path, self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> FakeEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def records(self) -> list[dict[str, object]]:
        with self._lock:
            return list(self.captured.records)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.captured.requests)

    def answer(self, path: str, auth: str, body: bytes) -> tuple[int, dict[str, object]]:
        """The reply to one request; records are kept only when the reply is 200."""
        with self._lock:
            self.captured.requests.append({"path": path, "auth": auth})
        if self._stopping.wait(self.behaviour.delay_s):
            return 503, _error("Unavailable", "stopping")
        if path != f"/v1/runs/{quote(self.run_id, safe='')}/records":
            return 404, _error("NotFound", f"no run at {path}")
        if auth != f"Bearer {self.token}" or self.behaviour.refuse_status is not None:
            return self.behaviour.refuse_status or 401, _error("PermissionDenied", "bad token")
        return self._take(body)

    def _take(self, body: bytes) -> tuple[int, dict[str, object]]:
        with self._lock:
            if self.behaviour.fail_first > 0:
                self.behaviour.fail_first -= 1
                return 503, _error("Unavailable", "try later")
            try:
                records = _valid_records(json.loads(body))
            except (ValueError, KeyError, TypeError) as exc:
                return 422, _error("InvalidInput", str(exc))
            self.captured.arrivals.extend(records)
            for record in records:
                self.captured.by_seq.setdefault(int(str(record["seq"])), record)
            return 200, {"accepted": len(records)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, reply = engine.answer(
                    self.path, self.headers.get("Authorization", ""), body
                )
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the SDK gave up waiting: that is the point of the timeout

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def _error(kind: str, message: str) -> dict[str, object]:
    return {"error": {"type": kind, "message": message}}


def _valid_records(payload: dict[str, object]) -> list[dict[str, object]]:
    records = payload["records"]
    if not isinstance(records, list):
        raise TypeError("records must be a list")
    for record in records:
        if (
            set(record) != {"seq", "ts", "type", "desc", "value"}
            or record["type"] not in RECORD_TYPES
        ):
            raise ValueError(f"bad record {record!r}")
        if not isinstance(record["ts"], float | int) or not isinstance(record["seq"], int):
            raise ValueError(f"bad seq or ts in {record!r}")
    return list(records)


@dataclass(frozen=True)
class JobRun:
    returncode: int
    stdout: str
    stderr: str
    elapsed_s: float

    def stderr_records(self) -> list[dict[str, object]]:
        """Records printed on stderr as ``odin: {json}`` lines."""
        prefix = "odin: {"
        return [
            json.loads(line[len("odin: ") :])
            for line in self.stderr.splitlines()
            if line.startswith(prefix)
        ]


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """A fresh job environment (like the engine's), plus ``extra``."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return {**base, **extra}


def run_job(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 30.0
) -> JobRun:
    start = time.monotonic()
    done = subprocess.run(
        list(command), cwd=cwd, env=clean_env(env), capture_output=True, text=True, timeout=timeout
    )
    return JobRun(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def wait_until(predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Wait for ``predicate`` with a deadline (polling, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.01)
