"""Privilege boundaries, tried as real users against a real engine (needs root).

One engine (with its dashboard) serves the whole module: Alice owns a job that
printed a secret and made SDK records; Bob and Eve try to reach them by every
id, path and parameter the API and the dashboard take.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from engine_harness import Engine, free_port, job_id_of, needs_root, odin, user_dir, wait_for
from engine_harness import write_job as write_job_file
from real_users import (
    ALICE,
    BOB,
    EVE,
    Request,
    deploy,
    finished,
    processes_of,
    raw_http,
    runs_of,
)

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root: real users"),
    pytest.mark.slow,
]

SECRET = "ALICE-SECRET-7f3a"
SECRET_JOB = (
    "import pyodin\n"
    f"print({SECRET!r}, flush=True)\n"
    "odin = pyodin.Odin()\n"
    f"odin.watch({SECRET!r}, 42)\n"
)


class World:
    """The module's engine and Alice's secret job, run once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.engine = Engine(root=root, dashboard_port=free_port())
        self.engine.start()
        try:
            self._populate()
        except BaseException:
            self.engine.stop()
            raise

    def _populate(self) -> None:
        root = self.root
        self.alice_home = user_dir(root / "homes", ALICE)
        self.bob_home = user_dir(root / "homes", BOB)
        path = write_job_file(self.alice_home, "secret", SECRET_JOB)
        self.job = job_id_of(path)
        deploy(self.engine, path)
        odin("run", "-i", self.job, engine=self.engine, user=ALICE)
        [run] = wait_for(lambda: finished(self.engine, self.job), what="alice's run")
        assert run["status"] == "succeeded" and run["records"], run
        self.run = str(run["id"])
        bob_path = write_job_file(self.bob_home, "mine", "print('bob')\n")
        self.bob_job = job_id_of(bob_path)
        deploy(self.engine, bob_path, user=BOB)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="odin-privilege-"))
    os.chmod(root, 0o755)  # other users traverse it to their files and the socket
    made = World(root)
    yield made
    made.engine.stop()
    shutil.rmtree(root, ignore_errors=True)


def _leaks(text: str) -> bool:
    return SECRET in text or "print(" in text


# -- non-members ------------------------------------------------------------------

ACTING_ROUTES = [
    ("GET", "/v1/whoami", None),
    ("GET", "/v1/jobs", None),
    ("POST", "/v1/jobs", {"yaml": "x", "code": "y"}),
    ("GET", "/v1/jobs/{job}", None),
    ("PATCH", "/v1/jobs/{job}", {"name": "x"}),
    ("DELETE", "/v1/jobs/{job}", None),
    ("GET", "/v1/jobs/{job}/files", None),
    ("POST", "/v1/jobs/{job}/runs", None),
    ("GET", "/v1/jobs/{job}/runs", None),
    ("GET", "/v1/jobs/{job}/stats", None),
    ("POST", "/v1/links", {"source": "{job}", "target": "{job}"}),
    ("DELETE", "/v1/links?source={job}&target={job}", None),
    ("GET", "/v1/runs/{run}", None),
    ("GET", "/v1/runs/{run}/output", None),
    ("GET", "/v1/runs/{run}/follow", None),
    ("GET", "/v1/nodes", None),
    ("POST", "/v1/nodes", {"name": "evil", "http": ":1", "raft": ":2"}),
    ("DELETE", "/v1/nodes/master-node", None),
    ("POST", "/v1/dashboard/link", None),
    ("POST", "/v1/internal/shutdown", None),
    ("GET", "/v1/internal/runs/{run}/output", None),
    ("POST", "/v1/apply", {"dry_run": "true"}),
    ("GET", "/v1/reference", None),
    ("GET", "/openapi.json", None),
]


def _requests(world: World, tcp: int | None = None) -> list[Request]:
    def fill(text: str) -> str:
        return text.replace("{job}", world.job).replace("{run}", quote(world.run, safe=""))

    out = []
    for method, path, body in ACTING_ROUTES:
        filled = None if body is None else {k: fill(v) for k, v in body.items()}
        out.append(Request(method, fill(path), filled, tcp_port=tcp))
    return out


def test_a_non_member_can_do_nothing_on_the_socket(world: World) -> None:
    os.chmod(world.engine.socket, 0o666)  # even with the socket open to all, the kernel uid decides
    try:
        replies = raw_http(world.engine, EVE, _requests(world))
    finally:
        os.chmod(world.engine.socket, 0o660)
    for (method, path, _), reply in zip(ACTING_ROUTES, replies, strict=True):
        assert reply.status == 403, (method, path, reply)
        assert not _leaks(reply.text)
    assert "not a member" in replies[0].text
    # With the socket's normal mode, Eve cannot even connect.
    [closed] = raw_http(world.engine, EVE, [Request("GET", "/v1/jobs")])
    assert closed.status == -1 and "PermissionError" in closed.text


def test_the_tcp_port_refuses_every_request_without_a_node_token(world: World) -> None:
    port = world.engine.http_port
    forged = (("x-odin-node-token", "guess"), ("authorization", "Bearer guess"))
    requests = _requests(world, tcp=port)
    requests += [
        Request(r.method, r.path, r.body, headers=forged, tcp_port=port) for r in _requests(world)
    ]
    for user in (EVE, ALICE):  # a member gets no further over TCP than anybody
        replies = raw_http(world.engine, user, requests)
        for request, reply in zip(requests, replies, strict=True):
            assert reply.status == 403, (user, request, reply)
            assert not _leaks(reply.text)


def test_the_dashboard_shows_nothing_without_a_session_and_nothing_of_others(
    world: World,
) -> None:
    base = f"http://127.0.0.1:{world.engine.dashboard_port}"
    pages = [
        "/jobs",
        f"/jobs/{world.job}",
        f"/runs/{quote(world.run, safe='')}",
        f"/runs/{quote(world.run, safe='')}/output",
        f"/events/runs/{quote(world.run, safe='')}",
        "/cluster",
    ]
    with httpx.Client(base_url=base, timeout=10) as anonymous:
        for page in pages:
            reply = anonymous.get(page)
            assert reply.status_code in (303, 307, 401, 403), (page, reply.status_code)
            assert not _leaks(reply.text)
    [eve_link] = raw_http(world.engine, EVE, [Request("POST", "/v1/dashboard/link")])
    assert eve_link.status == -1 or eve_link.status == 403
    [bob_link] = raw_http(world.engine, BOB, [Request("POST", "/v1/dashboard/link")])
    assert bob_link.status == 200
    url = httpx.URL(bob_link.json()["url"])
    with httpx.Client(base_url=base, timeout=10) as bob:
        confirm = bob.get(url.path)  # the link asks to confirm; the confirmation logs in
        nonce = confirm.text.split('name="nonce" value="', 1)[1].split('"', 1)[0]
        assert bob.post(url.path, data={"nonce": nonce}).status_code == 303
        assert world.bob_job in bob.get("/jobs").text
        for page in pages[1:5]:
            reply = bob.get(page)
            assert reply.status_code >= 400, (page, reply.status_code)
            assert not _leaks(reply.text), page
        assert world.job not in bob.get("/jobs").text


# -- members against each other -------------------------------------------------------


def _bob_attempts(world: World) -> list[Request]:
    job, run, mine = world.job, quote(world.run, safe=""), world.bob_job
    # what any member may read: no job in it (the API's own reference and OpenAPI document)
    skip = ("/nodes", "dashboard", "whoami", "/v1/reference", "/openapi.json")
    tries = [r for r in _requests(world) if not any(part in r.path for part in skip)]
    tries += [
        Request("POST", "/v1/links", {"source": mine, "target": job}),
        Request("POST", "/v1/links", {"source": job, "target": mine}),
        Request("DELETE", f"/v1/links?source={job}&target={mine}"),
        Request("GET", f"/v1/jobs/{mine}/stats?run={run}"),
        Request("GET", f"/v1/jobs/{mine}/runs/../../jobs/{job}"),
        Request("GET", f"/v1/jobs/{mine}%2f..%2f{job}"),
        Request("GET", f"/v1/runs/{mine}@..%2f..%2f{run}"),
        Request("GET", f"/v1/runs/{job}@{quote(world.run.split('@')[1], safe='')}%00"),
        Request("GET", f"/v1/runs/{run}%0a/output"),
        Request("GET", f"/v1/jobs/{job}%00/files"),
        Request("GET", "/v1/jobs/..%2f..%2f..%2fetc%2fpasswd/files"),
        Request("GET", "/v1/jobs/%2fetc%2fshadow/files"),
        Request("POST", f"/v1/runs/{run}/records", {"records": []}),
        Request(
            "POST",
            f"/v1/runs/{run}/records",
            {"records": []},
            headers=(("authorization", "Bearer x"),),
        ),
    ]
    return tries


def test_a_member_cannot_reach_another_members_job_by_any_id_or_path(world: World) -> None:
    before = odin("describe", "-i", world.job, "-o", "json", engine=world.engine, user=ALICE).json()
    requests = _bob_attempts(world)
    for request, reply in zip(requests, raw_http(world.engine, BOB, requests), strict=True):
        listing = (request.method, request.path) == ("GET", "/v1/jobs")  # Bob's own list
        assert listing or reply.status in (400, 403, 404, 405, 422), (request, reply)
        assert world.job not in reply.text or reply.status >= 400, (request, reply)
        assert not _leaks(reply.text), (request, reply)
        assert reply.status != 500
    after = odin("describe", "-i", world.job, "-o", "json", engine=world.engine, user=ALICE).json()
    assert after == {**before, "next_runs": after["next_runs"]}
    assert [r["id"] for r in runs_of(world.engine, world.job)] == [world.run]
    assert world.job not in odin("list", "-o", "json", engine=world.engine, user=BOB).stdout
    stats = odin("stats", "-i", world.bob_job, "-o", "json", engine=world.engine, user=BOB)
    assert SECRET not in stats.stdout


def test_a_reused_job_id_does_not_reveal_the_previous_owners_runs(world: World) -> None:
    code = f"import time\nprint({SECRET!r}, flush=True)\ntime.sleep(60)\n"
    path = write_job_file(world.alice_home, "gone", code)
    job = job_id_of(path)
    deploy(world.engine, path)
    odin("run", "-i", job, engine=world.engine, user=ALICE)
    wait_for(
        lambda: any(r["status"] == "running" for r in runs_of(world.engine, job)),
        what="alice's run",
    )
    odin("rm", "-i", job, engine=world.engine, user=ALICE)
    theft = write_job_file(world.bob_home, "theft", "print('bob')\n", job_id=job)
    wait_for(
        lambda: (
            odin("deploy", "-f", str(theft), engine=world.engine, user=BOB, check=False).returncode
            == 0
        ),
        what="bob to take the freed id",
    )
    wait_for(lambda: _finished_cancel_seen(world, job), timeout=15, what="the cancelled run")
    seen = odin("log", "-i", job, "--output", "-o", "json", engine=world.engine, user=BOB).stdout
    assert "gone.py" not in seen and SECRET not in seen
    out = odin("log", "-i", job, "--output", engine=world.engine, user=BOB).stdout
    assert SECRET not in out


def _finished_cancel_seen(world: World, job: str) -> bool:
    """True once Alice's removed run has ended: its process is gone and its output stored."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"gone.py" in (entry / "cmdline").read_bytes():
                return False
        except OSError:
            continue
    return True


# -- names and paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("file", "../../../../etc/passwd"),
        ("file", "/etc/shadow"),
        ("file", "a\\u0000b.py"),
        ("file", "a\\nb.py"),
        ("name", "two\\nlines"),
        ("id", "../../etc"),
        ("id", "abc\\u0000def0123"),
        ("workdir", "relative/dir"),
        ("workdir", "/tmp/\\u0000x"),
    ],
)
def test_names_and_paths_that_could_leave_the_users_space_are_refused(
    world: World, field: str, value: str
) -> None:
    fresh = secrets.token_hex(6)
    defaults = {"id": fresh, "name": "n", "file": "n.py", "workdir": "/tmp"}
    defaults[field] = value
    yaml = (
        "provider:\n  name: odin\n  version: 1.0.0\njob:\n"
        f'  id: "{defaults["id"]}"\n  name: "{defaults["name"]}"\n  description: "d"\n'
        f'  language: python\n  file: "{defaults["file"]}"\n  schedule: "never"\n'
        f'  workdir: "{defaults["workdir"]}"\n'
    )
    [reply] = raw_http(
        world.engine, ALICE, [Request("POST", "/v1/jobs", {"yaml": yaml, "code": "print(1)"})]
    )
    assert reply.status == 400, reply
    error = reply.json()["error"]
    assert error["type"] in ("JobFileError", "InvalidInput") and field in error["message"], error
    listed = odin("list", "-o", "json", engine=world.engine, user=ALICE).json()
    assert fresh not in [j["id"] for j in listed]


def test_recover_does_not_follow_symlinks_planted_in_the_target(world: World) -> None:
    shared = world.root / "shared"
    shared.mkdir(exist_ok=True)
    os.chmod(shared, 0o1777)
    victim = world.alice_home / "precious.txt"
    victim.write_text("keep me\n")
    bob = pwd.getpwnam(BOB)
    alice = pwd.getpwnam(ALICE)
    os.chown(victim, alice.pw_uid, alice.pw_gid)
    for name in ("secret.yml", "secret.py", ".secret.yml.odin-tmp", ".secret.py.odin-tmp"):
        link = shared / name
        link.symlink_to(victim)
        os.lchown(link, bob.pw_uid, bob.pw_gid)
    for force in ((), ("--force",)):
        result = odin(
            "recover",
            "-i",
            world.job,
            *force,
            engine=world.engine,
            user=ALICE,
            cwd=shared,
            check=False,
        )
        assert result.returncode != 0, result
        assert victim.read_text() == "keep me\n"
    # A directory of her own with a link she planted herself is replaced, not written through.
    own = user_dir(world.root / "restore", ALICE)
    (own / "secret.py").symlink_to(victim)
    os.lchown(own / "secret.py", alice.pw_uid, alice.pw_gid)
    odin("recover", "-i", world.job, "--force", engine=world.engine, user=ALICE, cwd=own)
    assert victim.read_text() == "keep me\n"
    assert not (own / "secret.py").is_symlink() and SECRET in (own / "secret.py").read_text()


def test_recover_does_not_follow_a_symlink_planted_in_a_middle_component(world: World) -> None:
    """Bob's link in the middle of the target path, in his own directory (where the kernel's
    protected_symlinks does not apply), takes neither root's nor Alice's recover elsewhere."""
    victim = world.root / "victim"  # root's: recover must write nothing into victim/inner
    (victim / "inner").mkdir(parents=True)
    bob = pwd.getpwnam(BOB)
    planted = world.bob_home / "elsewhere"
    planted.symlink_to(victim)
    os.lchown(planted, bob.pw_uid, bob.pw_gid)
    for user in (None, ALICE):
        result = odin(
            "recover",
            *("-i", world.job, "-d", str(planted / "inner"), "--force"),
            engine=world.engine,
            user=user,
            check=False,
        )
        assert result.returncode == 4, result
        assert f"'elsewhere' in it is a symlink owned by {BOB}" in result.stderr, result.stderr
        assert list((victim / "inner").iterdir()) == []
    # A link of root's own on the way is followed, as before.
    (world.root / "root-link").symlink_to(victim)
    odin(
        "recover",
        "-i",
        world.job,
        "-d",
        str(world.root / "root-link" / "inner"),
        engine=world.engine,
    )
    assert SECRET in (victim / "inner" / "secret.py").read_text()


def test_a_job_runs_only_as_its_owner_and_only_where_its_owner_may_go(world: World) -> None:
    probe = "import os\nprint('ids', os.getuid(), os.geteuid(), os.getgid(), os.getcwd())\n"
    path = write_job_file(world.alice_home, "who", probe, extra='  user: "root"\n')
    [reply] = raw_http(
        world.engine,
        ALICE,
        [Request("POST", "/v1/jobs", {"yaml": path.read_text(), "code": probe})],
    )
    assert reply.status == 400 and "user" in reply.text  # the YAML cannot name a user
    walled = world.root / "walled"
    walled.mkdir(mode=0o700, exist_ok=True)
    sneaky = world.alice_home / "into-walled"
    sneaky.symlink_to(walled)
    for workdir in (str(walled), str(sneaky), "/root"):
        path = write_job_file(world.alice_home, "where", probe, extra=f'  workdir: "{workdir}"\n')
        job = job_id_of(path)
        deploy(world.engine, path)
        odin("run", "-i", job, engine=world.engine, user=ALICE)
        [run] = wait_for(partial(finished, world.engine, job), what=f"run in {workdir}")
        assert run["status"] == "failed", (workdir, run)
        out = odin("log", "-i", job, "--output", engine=world.engine, user=ALICE).stdout
        assert "may not enter its working directory" in out and "ids" not in out
        odin("rm", "-i", job, engine=world.engine, user=ALICE)
    path = write_job_file(world.alice_home, "who", probe)
    deploy(world.engine, path)
    odin("run", "-i", job_id_of(path), engine=world.engine, user=ALICE)
    wait_for(lambda: finished(world.engine, job_id_of(path)), what="the probe")
    out = odin("log", "-i", job_id_of(path), "--output", engine=world.engine, user=ALICE).stdout
    alice = pwd.getpwnam(ALICE)
    assert f"ids {alice.pw_uid} {alice.pw_uid} {alice.pw_gid}" in out


DAEMON = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open({pidfile!r}, "w") as out:
            out.write(str(os.getpid()))
        time.sleep(300)
    os._exit(0)
time.sleep(0.5)
print("parent leaves")
"""


def test_a_job_that_daemonises_is_still_killed_when_its_run_ends(world: World) -> None:
    pidfile = world.alice_home / "daemon.pid"
    path = write_job_file(world.alice_home, "daemon", DAEMON.format(pidfile=str(pidfile)))
    deploy(world.engine, path)
    odin("run", "-i", job_id_of(path), engine=world.engine, user=ALICE)
    [run] = wait_for(lambda: finished(world.engine, job_id_of(path)), what="the daemon's run")
    assert run["status"] == "succeeded"
    daemon = int(pidfile.read_text())
    wait_for(lambda: not _alive(daemon), timeout=10, what="the daemonised child to be killed")
    assert not [p for p in processes_of(ALICE) if p == daemon]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_recover_force_with_a_planted_temporary_name_fails_cleanly(world: World) -> None:
    target = user_dir(world.root / "planted", ALICE)
    (target / ".secret.py.odin-tmp").symlink_to("/nonexistent")
    result = odin(
        "recover",
        "-i",
        world.job,
        "--force",
        engine=world.engine,
        user=ALICE,
        cwd=target,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr[-400:]
    assert result.returncode == 0 and SECRET in (target / "secret.py").read_text()


class _Boom:
    """Unpickling this runs a shell command: what a forged Raft message would try."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_the_raft_port_runs_nothing_from_a_peer_without_the_secret(world: World) -> None:
    import pickle
    import socket
    import struct

    marker = world.root / "raft-pwned"
    payload = pickle.dumps(_Boom(marker))
    framings = [payload, struct.pack("i", len(payload)) + payload, b"\x00" * 64 + payload]
    for frame in framings:
        with socket.create_connection(("127.0.0.1", world.engine.raft_port), timeout=5) as peer:
            peer.sendall(frame)
            peer.settimeout(1)
            with contextlib.suppress(TimeoutError, ConnectionError):
                peer.recv(1024)  # the engine answers or hangs up once it has read the frame
    assert world.engine.answers()
    assert not marker.exists()
