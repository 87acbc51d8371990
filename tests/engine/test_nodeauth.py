"""Signed node-to-node requests: the pure signing and checking, then a real engine's TCP port.

The unit tests drive ``odin.engine.nodeauth`` with explicit clocks; the end-to-end tests
sign requests with the engine's real cluster secret and send them, byte for byte, to its
internal API over TCP (needs root: a real user's run makes the output to fetch).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, wait_for, write_job
from odin import config
from odin.engine.nodeauth import AUTH_HEADER, NodeAuth, ReplayCache, node_key, parse
from odin.errors import PermissionDenied, Unavailable

SECRET = "ab" * 32
NOW = 1_700_000_000.0
TARGET = "/v1/internal/runs/j%40123/output?x=1"
ALICE = "odin-alice"
MARKER = "NODE-AUTH-OUTPUT-5e1d"


def _signed(auth: NodeAuth, method: str = "GET", target: str = TARGET, body: bytes = b"") -> str:
    return auth.headers(method, target, body, now=NOW)[AUTH_HEADER]


# -- signing and checking (pure) ---------------------------------------------------


def test_a_signed_request_passes() -> None:
    auth = NodeAuth(SECRET)
    auth.verify("GET", TARGET.encode(), b"", _signed(auth), now=NOW + 1)
    body = b'{"a": 1}'
    auth.verify("POST", TARGET.encode(), body, _signed(auth, "POST", body=body), now=NOW - 1)


def test_a_request_signed_with_another_key_is_refused() -> None:
    other = NodeAuth("cd" * 32)
    with pytest.raises(PermissionDenied):
        NodeAuth(SECRET).verify("GET", TARGET.encode(), b"", _signed(other), now=NOW)


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("POST", TARGET, b""),  # method
        ("GET", "/v1/internal/runs/j%40124/output?x=1", b""),  # path
        ("GET", "/v1/internal/runs/j%40123/output?x=2", b""),  # query
        ("GET", "/v1/internal/runs/j%40123/output", b""),  # query dropped
        ("GET", TARGET, b"x"),  # body
    ],
)
def test_a_tampered_request_is_refused(method: str, target: str, body: bytes) -> None:
    auth = NodeAuth(SECRET)
    with pytest.raises(PermissionDenied):
        auth.verify(method, target.encode(), body, _signed(auth), now=NOW)
    assert len(auth.replays) == 0  # nothing unauthenticated takes room in the cache


@pytest.mark.parametrize("late", [config.NODE_CLOCK_SKEW_S + 0.01, 3600.0])
def test_a_stale_request_is_refused(late: float) -> None:
    auth = NodeAuth(SECRET)
    with pytest.raises(PermissionDenied, match="clocks must agree"):
        auth.verify("GET", TARGET.encode(), b"", _signed(auth), now=NOW + late)


@pytest.mark.parametrize("early", [config.NODE_CLOCK_SKEW_S + 0.01, 3600.0])
def test_a_request_from_the_future_is_refused(early: float) -> None:
    auth = NodeAuth(SECRET)
    with pytest.raises(PermissionDenied, match="clocks must agree"):
        auth.verify("GET", TARGET.encode(), b"", _signed(auth), now=NOW - early)


def test_a_request_at_the_edge_of_the_window_passes() -> None:
    auth = NodeAuth(SECRET)
    auth.verify("GET", TARGET.encode(), b"", _signed(auth), now=NOW + config.NODE_CLOCK_SKEW_S)
    auth.verify("GET", TARGET.encode(), b"", _signed(auth), now=NOW - config.NODE_CLOCK_SKEW_S)


def test_a_replayed_request_is_refused() -> None:
    auth = NodeAuth(SECRET)
    header = _signed(auth)
    auth.verify("GET", TARGET.encode(), b"", header, now=NOW)
    for later in (0.0, 1.0, config.NODE_CLOCK_SKEW_S):
        with pytest.raises(PermissionDenied, match="replayed"):
            auth.verify("GET", TARGET.encode(), b"", header, now=NOW + later)
    with pytest.raises(PermissionDenied, match="clocks must agree"):  # the cache let it go
        auth.verify("GET", TARGET.encode(), b"", header, now=NOW + config.NODE_CLOCK_SKEW_S + 1)


def test_every_request_gets_its_own_nonce_and_signature() -> None:
    auth = NodeAuth(SECRET)
    stamps = {parse(_signed(auth)) for _ in range(100)}
    assert len({s.nonce for s in stamps}) == len({s.signature for s in stamps}) == 100


def test_the_replay_cache_is_bounded_and_forgets_with_the_window() -> None:
    cache = ReplayCache(capacity=3, window_s=5.0)
    for i in range(3):
        cache.admit(f"n{i}", sent_at=NOW + i, now=NOW + i)
    with pytest.raises(Unavailable):  # full: refused, never an old nonce evicted early
        cache.admit("n3", sent_at=NOW + 3, now=NOW + 3)
    assert len(cache) == 3
    with pytest.raises(PermissionDenied):
        cache.admit("n0", sent_at=NOW, now=NOW + 5.0)  # still inside n0's window
    cache.admit("n3", sent_at=NOW + 5.5, now=NOW + 5.5)  # n0 expired and made room
    assert len(cache) == 3
    cache.admit("n0", sent_at=NOW + 20, now=NOW + 20)  # everything before expired
    assert len(cache) == 1


def test_malformed_and_bearer_headers_are_refused() -> None:
    auth = NodeAuth(SECRET)
    good = _signed(auth)
    old_token = hmac.new(SECRET.encode(), b"odin node api v1", hashlib.sha256).hexdigest()
    for value in ("", old_token, good + ",x", good.replace("t=", "t=-"), good.upper()):
        with pytest.raises(PermissionDenied):
            auth.verify("GET", TARGET.encode(), b"", value, now=NOW)


def test_neither_the_secret_nor_the_key_nor_the_old_token_travels() -> None:
    auth = NodeAuth(SECRET)
    header = _signed(auth)
    old_token = hmac.new(SECRET.encode(), b"odin node api v1", hashlib.sha256).hexdigest()
    assert node_key(SECRET).hex() != old_token  # a sniffed v1 token is not the v2 key
    for kept in (SECRET, node_key(SECRET).hex(), old_token):
        assert kept not in header


# -- against a real engine ------------------------------------------------------------


@dataclass
class World:
    engine: Engine
    secret: str
    run_path: str


@pytest.fixture(scope="module")
def world(alice: object) -> Iterator[World]:
    if needs_root:
        pytest.skip("needs root: a real user's run")
    root = Path(tempfile.mkdtemp(prefix="odin-nodeauth-"))
    os.chmod(root, 0o755)
    engine = Engine(root=root).start()
    try:
        yield World(engine, _secret_of(engine), _finished_run(engine, root))
    finally:
        engine.stop()
        shutil.rmtree(root, ignore_errors=True)


def _secret_of(engine: Engine) -> str:
    return (engine.data_dir / "cluster.secret").read_text().strip()


def _finished_run(engine: Engine, root: Path) -> str:
    """Run a job of Alice's that prints MARKER; the internal API path of its output."""
    path = write_job(user_dir(root, ALICE), "printer", f"print({MARKER!r})\n")
    job = job_id_of(path)
    odin("deploy", "-f", str(path), engine=engine, user=ALICE)
    odin("run", "-i", job, engine=engine, user=ALICE)

    def succeeded() -> str | None:
        runs = odin("log", "-i", job, "-o", "json", engine=engine, user=ALICE).json()
        done = [r for r in runs if r["status"] == "succeeded"]
        return str(done[0]["id"]) if done else None

    run = wait_for(succeeded, what="alice's run")
    return f"/v1/internal/runs/{quote(run, safe='')}/output"


def _raw(method: str, target: str, port: int, header: tuple[str, str] | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    if header is not None:
        lines.append(f"{header[0]}: {header[1]}")
    if method == "POST":
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _send(port: int, request: bytes) -> tuple[int, str]:
    """Send ``request`` as is over TCP; the reply's status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode(errors="replace")


def _signed_request(world: World, method: str, target: str, now: float | None = None) -> bytes:
    [(name, value)] = NodeAuth(world.secret).headers(method, target, now=now).items()
    return _raw(method, target, world.engine.http_port, (name, value))


@pytest.mark.slow
def test_a_signed_request_works_once_and_its_verbatim_replay_is_refused(world: World) -> None:
    port = world.engine.http_port
    request = _signed_request(world, "GET", world.run_path)
    status, body = _send(port, request)
    assert status == 200 and MARKER in body, (status, body)
    status, body = _send(port, request)  # the same bytes again, as an eavesdropper would
    assert status == 403 and "replayed" in body and MARKER not in body, (status, body)
    fresh = _signed_request(world, "GET", world.run_path)
    assert _send(port, fresh)[0] == 200  # the node itself keeps working


@pytest.mark.slow
def test_a_signed_request_sent_after_the_window_is_refused(world: World) -> None:
    port = world.engine.http_port
    request = _signed_request(world, "GET", world.run_path)
    time.sleep(config.NODE_CLOCK_SKEW_S + 1.0)
    status, body = _send(port, request)
    assert status == 403 and "clocks must agree" in body and MARKER not in body, (status, body)
    future = _signed_request(world, "GET", world.run_path, now=time.time() + 60)
    status, body = _send(port, future)
    assert status == 403 and MARKER not in body, (status, body)


@pytest.mark.slow
def test_a_signature_for_one_request_does_not_fit_another(world: World) -> None:
    port = world.engine.http_port
    [(name, value)] = NodeAuth(world.secret).headers("GET", world.run_path).items()
    for method, target in (("POST", "/v1/internal/shutdown"), ("GET", world.run_path + "?a=1")):
        status, body = _send(port, _raw(method, target, port, (name, value)))
        assert status == 403 and MARKER not in body, (method, target, status, body)
    assert world.engine.answers()  # the shutdown was refused
    status, body = _send(port, _raw("GET", world.run_path, port, (name, value)))
    assert status == 200 and MARKER in body, (status, body)  # on its own request it was good


@pytest.mark.slow
def test_the_old_bearer_node_token_is_refused(world: World) -> None:
    port = world.engine.http_port
    old_token = hmac.new(world.secret.encode(), b"odin node api v1", hashlib.sha256).hexdigest()
    for method, target in (("GET", world.run_path), ("POST", "/v1/internal/shutdown")):
        status, body = _send(port, _raw(method, target, port, ("X-Odin-Node", old_token)))
        assert status == 403 and MARKER not in body, (method, target, status, body)
    assert world.engine.answers()
