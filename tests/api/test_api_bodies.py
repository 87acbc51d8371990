"""Request bodies: who may send one, and how large, is decided before the engine reads it.

A real engine gets bodies of up to 200 MB, streamed by a small client (run as a
real user through ``runuser``) from a generator, so neither side of the test
holds them: with a ``Content-Length`` and chunked. The engine's peak memory is
read from ``/proc/<pid>/status`` (``VmHWM``, reset through ``clear_refs``
before each request): a caller with no right to send anything is refused with
the body left unread, and a member's body is cut off at the bound.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, write_job
from odin import config
from odin.engine.nodeauth import AUTH_HEADER, NodeAuth
from real_users import ALICE, EVE

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root: sends bodies as real users"),
    pytest.mark.slow,
]

HUGE = 200 * config.MIB  # what an attacker streams
MEMORY_BOUND_KIB = 50 * 1024  # the most the engine's memory may grow while it refuses one
QUICK_S = 10.0  # a refusal takes less than this

_STREAM = r"""
import json, socket, sys, threading, time
target, path, total, chunked, headers = json.loads(sys.argv[1])
if isinstance(target, int):
    sock = socket.create_connection(("127.0.0.1", target), timeout=60)
else:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(60)
    sock.connect(target)
head = f"POST {path} HTTP/1.1\r\nHost: odin\r\nConnection: close\r\n"
head += "Content-Type: application/json\r\n"
head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n"
piece = b"0" * 65536
sent = [0]

def pieces():
    left = total
    while left > 0:
        data = piece[:left]
        left -= len(data)
        yield b"%x\r\n%s\r\n" % (len(data), data) if chunked else data
    if chunked:
        yield b"0\r\n\r\n"

def send():
    try:
        sock.sendall(head.encode() + b"\r\n")
        for data in pieces():
            sock.sendall(data)
            sent[0] += len(data)
    except OSError:
        pass

start = time.monotonic()
threading.Thread(target=send, daemon=True).start()
reply = b""
try:
    while chunk := sock.recv(65536):
        reply += chunk
except OSError as error:
    reply = reply or type(error).__name__.encode()
seconds = time.monotonic() - start
status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else -1
text = reply.split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace")
print(json.dumps({"status": status, "text": text, "seconds": seconds, "sent": sent[0]}))
"""


@dataclass(frozen=True)
class Outcome:
    status: int
    text: str
    seconds: float
    sent: int  # body bytes the client got into its socket before the engine hung up
    growth_kib: int  # the engine's peak memory over its memory before the request

    def error(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.text)["error"]
        return body


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    root = Path(tempfile.mkdtemp(prefix="odin-bodies-"))
    os.chmod(root, 0o755)  # Alice and Eve traverse it to the socket
    running = Engine(root=root).start()
    yield running
    running.stop()
    shutil.rmtree(root, ignore_errors=True)


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def stream(
    engine: Engine,
    *,
    total: int,
    chunked: bool,
    user: str | None = None,
    port: int | None = None,
    path: str = "/v1/jobs",
    headers: tuple[tuple[str, str], ...] = (),
) -> Outcome:
    """POST ``total`` bytes to ``path`` on TCP ``port`` (else the socket) as ``user`` (root when
    None); the engine's peak memory over its memory before, too."""
    assert engine.proc is not None
    pid = engine.proc.pid
    target = str(engine.socket) if port is None else port
    args = json.dumps([target, path, total, chunked, dict(headers)])
    command = ["/usr/bin/python3", "-I", "-c", _STREAM, args]
    if user is not None:
        command = ["/usr/sbin/runuser", "-u", user, "--", *command]
    before = _memory_kib(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    peak = _memory_kib(pid, "VmHWM")
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    return Outcome(reply["status"], reply["text"], reply["seconds"], reply["sent"], peak - before)


def _refused_unread(outcome: Outcome, status: int, error_type: str) -> None:
    """Refused with the API's JSON error, quickly, with most of the body never read."""
    assert outcome.status == status, outcome
    assert outcome.error()["type"] == error_type, outcome
    assert outcome.seconds < QUICK_S, outcome
    assert outcome.sent < HUGE // 4, outcome  # the rest stayed with the client
    assert outcome.growth_kib < MEMORY_BOUND_KIB, outcome


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_body_on_the_tcp_port_without_a_node_token_is_refused_unread(
    engine: Engine, chunked: bool
) -> None:
    outcome = stream(engine, total=HUGE, chunked=chunked, port=engine.http_port)
    _refused_unread(outcome, 403, "PermissionDenied")
    stale = f"t={int(time.time() * 1000) - 3_600_000},n={'0' * 32},s={'0' * 64}"
    for forged in ("guess", stale):
        headers = ((AUTH_HEADER, forged),)
        outcome = stream(
            engine, total=HUGE, chunked=chunked, port=engine.http_port, headers=headers
        )
        _refused_unread(outcome, 403, "PermissionDenied")
    assert engine.answers()


def test_a_small_refused_body_is_dropped_so_that_the_client_reads_the_answer(
    engine: Engine,
) -> None:
    """A client that sends its body after its headers still reads the 403, and its connection
    stays usable: a small refused body is read and dropped, not left to reset the connection."""
    body = json.dumps({"yaml": "x", "code": "y"}).encode()
    head = b"POST /v1/jobs HTTP/1.1\r\nHost: odin\r\nContent-Type: application/json\r\n"
    with socket.create_connection(("127.0.0.1", engine.http_port), timeout=10) as sock:
        sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body))
        time.sleep(0.3)  # long enough for an engine that answers at once to hang up
        sock.sendall(body + b"GET /v1/health HTTP/1.1\r\nHost: odin\r\nConnection: close\r\n\r\n")
        reply = _read_all(sock)
    assert reply.startswith(b"HTTP/1.1 403 ") and b"PermissionDenied" in reply, reply
    assert b"HTTP/1.1 200 " in reply, reply


def _read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def test_a_huge_body_from_a_non_member_on_the_socket_is_refused_unread(engine: Engine) -> None:
    os.chmod(engine.socket, 0o666)  # even with the socket open to all, the kernel uid decides
    try:
        outcome = stream(engine, total=HUGE, chunked=True, user=EVE)
    finally:
        os.chmod(engine.socket, 0o660)
    _refused_unread(outcome, 403, "NotAMember")
    assert "not a member" in outcome.error()["message"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_members_body_over_the_bound_gets_413_naming_it(engine: Engine, chunked: bool) -> None:
    bound = config.MAX_REQUEST_BODY_BYTES
    for total in (bound + 1, HUGE):
        outcome = stream(engine, total=total, chunked=chunked, user=ALICE)
        assert outcome.status == 413, outcome
        assert outcome.error()["type"] == "LimitExceeded", outcome
        assert f"request body over {bound} bytes" in outcome.error()["message"], outcome
        assert outcome.seconds < QUICK_S and outcome.growth_kib < MEMORY_BOUND_KIB, outcome
    assert outcome.sent < HUGE // 4, outcome


def test_a_nodes_stream_over_the_bound_is_cut_off(engine: Engine) -> None:
    """A well-formed, timely stamp admits a body (its signature is checked once the body is
    read); even so the body is read no further than the bound."""
    secret = (engine.data_dir / "cluster.secret").read_text().strip()
    stamp = tuple(NodeAuth(secret).headers("POST", "/v1/jobs").items())
    outcome = stream(engine, total=HUGE, chunked=True, port=engine.http_port, headers=stamp)
    _refused_unread(outcome, 413, "LimitExceeded")
    assert str(config.MAX_REQUEST_BODY_BYTES) in outcome.error()["message"]


def test_the_largest_valid_deploy_still_succeeds(engine: Engine) -> None:
    """Code of 1 MiB less a little, all control characters: JSON escapes each to 6 bytes."""
    bound = config.MAX_REQUEST_BODY_BYTES
    assert bound >= 6 * (config.MAX_CODE_BYTES + config.MAX_YAML_BYTES) + config.KIB
    home = user_dir(engine.root, ALICE)
    code = "#" + "\x01" * (config.MAX_CODE_BYTES - 2) + "\n"
    path = write_job(home, "largest", code)
    body = json.dumps({"yaml": path.read_text(), "code": code}).encode()
    assert len(body) > 6 * (config.MAX_CODE_BYTES - 2), len(body)
    odin("deploy", "-f", str(path), engine=engine, user=ALICE)
    [job] = [j for j in odin("list", "-o", "json", engine=engine).json() if j["name"] == "largest"]
    assert job["id"] == job_id_of(path)


def test_a_restore_over_the_request_bound_still_reaches_the_backup_check(engine: Engine) -> None:
    """Root's restore has the backup's bound, not the request bound: a 9 MiB document is read."""
    total = config.MAX_REQUEST_BODY_BYTES + config.MIB
    outcome = stream(engine, total=total, chunked=True, path="/v1/admin/restore")
    assert outcome.status == 400, outcome
    assert "not an Odin backup" in outcome.error()["message"], outcome
    assert outcome.sent >= total, outcome


def test_the_cli_reports_the_bound_when_its_body_is_over_it(engine: Engine) -> None:
    """The engine answers 413 and hangs up mid-body: the CLI reads that answer, not 'no engine'."""
    home = user_dir(engine.root, ALICE)
    path = write_job(home, "huge", "#" + "x" * (config.MAX_REQUEST_BODY_BYTES * 2) + "\n")
    result = odin("deploy", "-f", str(path), engine=engine, user=ALICE, check=False)
    assert result.returncode != 0, result
    assert f"request body over {config.MAX_REQUEST_BODY_BYTES} bytes" in result.stderr, result
