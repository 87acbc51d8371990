"""Users' data at rest: nothing the engine writes can be read by another user (needs root).

The attack from the security review: an outsider reads a member's secret output line
and ``watch`` values with ``strings`` on the run store. Here a root engine starts
with the widest umask (0), a member's job prints a secret and records it with the
SDK, a second node is added and removed, a backup is written; then every file under
the data directory is checked for its mode and owner, and an outsider and another
member try to read each one.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine_harness import Engine, free_port, job_id_of, needs_root, odin, user_dir, wait_for
from engine_harness import write_job as write_job_file
from real_users import ALICE, BOB, EVE, deploy, finished

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root: real users"),
    pytest.mark.slow,
]

SECRET = "MODES-SECRET-5c1e"
JOB = f"import pyodin\nprint({SECRET!r}, flush=True)\npyodin.Odin().watch({SECRET!r}, 7)\n"
# Trees job users must read or run: the SDKs and the Python prelude, the start gate,
# the alias that lets Node jobs import the SDK. Nothing of any user is in them.
PUBLIC = ("sdk", "bin", "code/node_modules")
# Directories job users pass through (0711): they list nothing.
PASSAGES = ("", "code", "builds", "nodes")

# Run as another user who knows every name under the data dir (root lists them): each
# file it can open, and whether it holds the secret.
PROBE = """
import json, sys
found = []
for path in json.load(sys.stdin):
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError:
        continue
    found.append([path, sys.argv[1].encode() in data])
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    root = Path(tempfile.mkdtemp(prefix="odin-modes-"))
    os.chmod(root, 0o755)  # other users traverse it to their files and the socket
    running = Engine(root=root, umask=0).start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def populated(engine: Engine) -> Engine:
    home = user_dir(engine.root / "homes", ALICE)
    job = job_id_of(write_job_file(home, "secret", JOB))
    deploy(engine, home / "secret.yml")
    for _ in range(2):  # the second run uses the bytecode the first one cached
        odin("run", "-i", job, engine=engine, user=ALICE)
        wait_for(lambda: len(finished(engine, job)) >= 1, what="alice's run")
    wait_for(lambda: len(finished(engine, job)) >= 2, what="alice's second run")
    assert all(run["status"] == "succeeded" for run in finished(engine, job))
    http, raft = free_port(), free_port()
    odin("nodes", "add", "-n", "spare", "-a", f":{http}", "-r", f":{raft}", engine=engine)
    odin("nodes", "remove", "-n", "spare", engine=engine)
    backup = engine.root / "backup.json"
    subprocess.run(
        [str(Path(sys.executable).parent / "odin"), "backup", "-f", str(backup)],
        env={"PATH": "/usr/bin:/bin", "ODIN_SOCKET": str(engine.socket)},
        check=True,
        umask=0,
        capture_output=True,
    )
    assert SECRET.encode() in backup.read_bytes()
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    return engine


def _relative(engine: Engine, path: Path) -> str:
    """The path within its own data directory (a node added on this host has one in
    ``nodes/<name>``, laid out the same)."""
    parts = path.relative_to(engine.data_dir).parts
    if parts[0] == "nodes" and len(parts) >= 2:
        parts = parts[2:]
    return "/".join(parts)


def _public(relative: str) -> bool:
    return any(relative == top or relative.startswith(top + "/") for top in PUBLIC)


def test_every_file_with_users_data_is_closed_to_group_and_others(populated: Engine) -> None:
    alice = pwd.getpwnam(ALICE).pw_uid
    seen, wrong = 0, []
    for path in sorted(populated.data_dir.rglob("*")):
        relative = _relative(populated, path)
        info = path.lstat()
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):  # a link's own mode means nothing
            continue
        if _public(relative):
            assert not mode & 0o022, f"{relative} can be changed by others: {mode:o}"
            continue
        seen += 1
        if stat.S_ISDIR(info.st_mode) and relative in PASSAGES:
            ok = mode == 0o711 and info.st_uid == 0
        else:
            ok = not mode & 0o077 and info.st_uid in (0, alice)
        if not ok:
            wrong.append(f"{relative} {mode:o} uid {info.st_uid}")
    assert stat.S_IMODE(populated.data_dir.stat().st_mode) == 0o711
    assert not wrong, wrong
    names = {str(p.relative_to(populated.data_dir)) for p in populated.data_dir.rglob("*")}
    # What the test meant to cover was written: store and its WAL, Raft files, code.
    for expected in ("store.db", "store.db-wal", "raft/raft.journal", "raft/raft.journal.meta"):
        assert expected in names, sorted(names)
    assert "nodes/spare/store.db" in names and "nodes/spare/engine.log" in names, sorted(names)
    assert any(name.endswith("secret.py") for name in names), sorted(names)
    assert seen > 10


@pytest.mark.parametrize("user", [EVE, BOB])
def test_no_other_user_reads_the_secret_from_any_file(populated: Engine, user: str) -> None:
    names = [str(p) for p in populated.data_dir.rglob("*") if p.is_file()]
    done = subprocess.run(
        ["/usr/sbin/runuser", "-u", user, "--", sys.executable, "-c", PROBE, SECRET],
        input=json.dumps(names),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    readable = json.loads(done.stdout)
    assert not [path for path, secret in readable if secret], readable
    private = [p for p, _ in readable if not _public(_relative(populated, Path(p)))]
    assert not private, private
    # The probe did read something: the public SDK is there for every job user.
    assert any("/sdk/" in path for path, _ in readable)


def test_the_store_stays_closed_when_an_older_engine_left_it_open(world_dir: Path) -> None:
    engine = Engine(root=world_dir, umask=0o022).start()
    try:
        engine.stop()
        store = engine.data_dir / "store.db"
        os.chmod(store, 0o644)
        os.chmod(engine.data_dir, 0o755)
        engine.start()
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        assert stat.S_IMODE(engine.data_dir.stat().st_mode) == 0o711
    finally:
        engine.stop()
