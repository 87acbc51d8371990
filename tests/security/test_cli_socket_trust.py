"""The CLI talks only to a socket that root or the caller set up and serves.

Eve (not in group ``odin``) plants a listening socket where Alice's CLI looks
when root's socket is missing and ``XDG_RUNTIME_DIR`` is unset:
``/tmp/odin-<alice uid>/``. Her server, a stdlib-only Python run as Eve, records
every byte it receives and answers like an engine that deployed the job. Alice's
real CLI must refuse with exit code 4, naming the path and the owner found, and
send nothing; root's engine and Alice's own engine still serve her.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine_harness import BIN, Engine, free_port, needs_root, user_dir, wait_for, write_job
from odin import paths

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root: real users"),
    pytest.mark.slow,
]

ALICE, EVE = "odin-alice", "odin-eve"
SECRET = "ALICE-CODE-5e1f"

# Eve's fake engine: make its directory (or a symlink to one), listen, record what
# arrives, then answer as if the job were deployed (so a CLI that talked prints "Deployed").
EVE_SERVER = r"""
import json, os, socket, sys
plan = json.loads(sys.argv[1])
if plan.get("mkdir"):
    os.mkdir(plan["mkdir"])
    os.chmod(plan["mkdir"], plan["mode"])
if plan.get("symlink"):
    os.symlink(plan["symlink"][1], plan["symlink"][0])
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(plan["socket"])
os.chmod(plan["socket"], 0o666)
server.listen(8)
open(plan["record"], "wb").close()
print("ready", flush=True)
job = {"id": "0123456789ab", "name": "eve", "schedule_text": "never", "next_run": None}
body = json.dumps({"job": job, "updated": False}).encode()
reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
while True:
    conn, _ = server.accept()
    conn.settimeout(0.5)
    with conn, open(plan["record"], "ab") as record:
        try:
            while chunk := conn.recv(65536):
                record.write(chunk)
                record.flush()
        except TimeoutError:
            conn.sendall(reply + b"Connection: close\r\n\r\n" + body)
        except OSError:
            pass
"""


def _demoted(user: str) -> dict[str, Any]:
    """Popen arguments that run a child as ``user`` (their uid, gid and groups)."""
    entry = pwd.getpwnam(user)
    return {
        "user": entry.pw_uid,
        "group": entry.pw_gid,
        "extra_groups": os.getgrouplist(user, entry.pw_gid),
    }


@contextlib.contextmanager
def eve_serving(plan: dict[str, Any]) -> Iterator[None]:
    """Run Eve's fake engine on ``plan`` until the block ends, whatever happens in it."""
    server = subprocess.Popen(
        [sys.executable, "-I", "-c", EVE_SERVER, json.dumps(plan)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **_demoted(EVE),
    )
    try:
        assert server.stdout is not None and server.stderr is not None
        ready = server.stdout.readline()
        assert ready.strip() == "ready", server.stderr.read()
        yield
    finally:
        server.kill()
        server.wait(timeout=30)


def odin_as(
    user: str | None, *args: str, socket: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI as ``user`` (root if None), with only PATH and LANG (and ODIN_SOCKET if given)."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    if socket is not None:
        env["ODIN_SOCKET"] = str(socket)
    command = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), str(BIN / "odin"), *args]
    if user is not None:
        command = ["/usr/sbin/runuser", "-u", user, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def fallback() -> Iterator[Path]:
    """``/tmp/odin-<alice uid>``, Alice's socket directory without XDG_RUNTIME_DIR; removed after."""
    path = Path(f"/tmp/odin-{pwd.getpwnam(ALICE).pw_uid}")
    if path.exists() or path.is_symlink():
        pytest.skip(f"{path} exists already: not planting over someone's files")
    try:
        yield path
    finally:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)


@pytest.fixture
def unused_port() -> int:
    """An HTTP port whose root socket (``/run/odin/odin-<port>.sock``) does not exist."""
    port = free_port()
    assert not paths.socket_for_port(port).exists()
    return port


def alice_job(world_dir: Path) -> Path:
    return write_job(user_dir(world_dir, ALICE), "planted", f"print({SECRET!r})\n")


def assert_refused(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 4, done
    assert "Deployed" not in done.stdout and "Traceback" not in done.stderr, done
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for needle in needles:
        assert needle in done.stderr, (needle, done.stderr)


def test_a_socket_an_outsider_planted_in_the_fallback_directory_gets_nothing(
    world_dir: Path, fallback: Path, unused_port: int
) -> None:
    job = alice_job(world_dir)
    record = user_dir(world_dir, EVE) / "received"
    planted = fallback / f"odin-{unused_port}.sock"
    plan = {"mkdir": str(fallback), "mode": 0o755, "socket": str(planted), "record": str(record)}
    with eve_serving(plan):
        done = odin_as(ALICE, "deploy", "-f", str(job), "-p", str(unused_port))
    assert_refused(done, str(planted), "odin-eve", "belongs to neither root nor you")
    assert record.read_bytes() == b""


@pytest.mark.parametrize("shape", ["world-writable", "symlink"])
def test_a_fallback_directory_others_can_write_or_a_symlink_is_refused(
    world_dir: Path, fallback: Path, unused_port: int, shape: str
) -> None:
    job = alice_job(world_dir)
    eve_home = user_dir(world_dir, EVE)
    record = eve_home / "received"
    plan: dict[str, Any]
    if shape == "world-writable":  # root's own directory, but anyone may put a socket in it
        fallback.mkdir()
        os.chmod(fallback, 0o777)
        plan = {"socket": str(fallback / f"odin-{unused_port}.sock"), "record": str(record)}
        needles = ["writable by group or others", "owned by root", "mode 0777"]
    else:
        real = eve_home / "real"
        plan = {
            "mkdir": str(real),
            "mode": 0o755,
            "symlink": [str(fallback), str(real)],
            "socket": str(real / f"odin-{unused_port}.sock"),
            "record": str(record),
        }
        needles = ["is a symlink", "owned by odin-eve"]
    with eve_serving(plan):
        done = odin_as(ALICE, "deploy", "-f", str(job), "-p", str(unused_port))
    assert_refused(done, str(fallback / f"odin-{unused_port}.sock"), *needles)
    assert record.read_bytes() == b""


def test_odin_socket_served_by_an_outsider_is_refused_after_connecting(world_dir: Path) -> None:
    """The directory passes (root's, 0755) but the kernel says Eve serves it: nothing is sent."""
    job = alice_job(world_dir)
    eve_home = user_dir(world_dir, EVE)
    record = eve_home / "received"
    trusted = world_dir / "trusted"
    trusted.mkdir(mode=0o755)
    moved = trusted / "odin.sock"
    with eve_serving({"socket": str(eve_home / "odin.sock"), "record": str(record)}):
        os.rename(eve_home / "odin.sock", moved)  # root moves it: the socket stays Eve's
        os.lchown(moved, 0, 0)
        as_alice = odin_as(ALICE, "deploy", "-f", str(job), socket=moved)
        as_root = odin_as(None, "deploy", "-f", str(job), socket=moved)
    for done in (as_alice, as_root):
        assert_refused(done, str(moved), "runs as odin-eve", "nothing was sent")
    assert record.read_bytes() == b""


def test_root_engine_still_serves_a_member(engine: Engine, world_dir: Path) -> None:
    job = alice_job(world_dir)
    done = odin_as(ALICE, "deploy", "-f", str(job), socket=engine.socket)
    assert done.returncode == 0 and done.stdout.startswith("Deployed job "), done
    listed = odin_as(ALICE, "list", "-o", "json", socket=engine.socket)
    assert [j["name"] for j in json.loads(listed.stdout)] == ["planted"]


def test_a_members_own_engine_serves_her_but_not_root(world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    sock = home / "odin.sock"
    command = [
        str(BIN / "odin-engine"),
        *("--data-dir", str(home / "data"), "--socket", str(sock)),
        *("--http", f":{free_port()}", "--raft", f":{free_port()}"),
        *("--no-dashboard", "--log-level", "warning"),
    ]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home)}
    log = (world_dir / "alice-engine.log").open("wb")
    own = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        **_demoted(ALICE),
    )
    try:
        wait_for(lambda: odin_as(ALICE, "list", socket=sock).returncode == 0, what="alice's engine")
        refused = odin_as(None, "list", socket=sock)
        assert refused.returncode == 4 and "odin-alice (uid" in refused.stderr, refused
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(own.pid, signal.SIGTERM)
        try:
            own.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(own.pid, signal.SIGKILL)
            own.wait()
        log.close()
