"""`odin backup` / `odin restore` against real engines, and the backup format's checks."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_harness import Engine, job_id_of, user_dir, write_job
from odin.cluster.model import Job, LinkOn
from odin.errors import Conflict, InvalidInput, OdinError
from odin.install import backup

CLI = (
    "import sys; from odin.cli import main as m; "
    "m.COMMANDS.setdefault('backup', ('odin.cli.backup_cmd', 'backup', 'Back up.')); "
    "m.COMMANDS.setdefault('restore', ('odin.cli.backup_cmd', 'restore', 'Restore.')); "
    "m.main(sys.argv[1:])"
)
# An engine whose API has the admin router, whether or not odin.api.app includes it yet.
ENGINE = (
    "import sys; import odin.api.app as a; from odin.api.admin_routes import admin_router; "
    "plain = a.create_app\n"
    "def create_app(service, launcher, admin):\n"
    "    app = plain(service, launcher, admin)\n"
    "    if not any(getattr(r, 'path', '') == '/v1/admin/snapshot' for r in app.routes):\n"
    "        app.include_router(admin_router(service))\n"
    "    return app\n"
    "a.create_app = create_app\n"
    "from odin.daemon import main; sys.argv[0] = 'odin-engine'; main()"
)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs jobs as real users")


class AdminEngine(Engine):
    def command(self) -> list[str]:
        return [sys.executable, "-c", ENGINE, *super().command()[1:]]


def odin(*args: str, engine: Engine, user: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "ODIN_SOCKET": str(engine.socket), "LANG": "C.UTF-8"}
    command = [sys.executable, "-c", CLI, *args]
    if user is not None:
        command = [
            "/usr/sbin/runuser",
            "-u",
            user,
            "--",
            "env",
            *(f"{k}={v}" for k, v in env.items()),
            *command,
        ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def ok(*args: str, engine: Engine, user: str | None = None) -> str:
    done = odin(*args, engine=engine, user=user)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def versions(engine: Engine) -> dict[str, int]:
    """Each job's version: a redeploy (even of the same content) would raise it."""
    return {
        job_id: json.loads(ok("describe", "-i", job_id, "-o", "json", engine=engine))["version"]
        for job_id in jobs_of(engine)
    }


def jobs_of(engine: Engine) -> dict[str, dict[str, Any]]:
    return {j["id"]: j for j in json.loads(ok("list", "-o", "json", engine=engine))}


@pytest.fixture
def two_engines(world_dir: Path) -> Iterator[tuple[Engine, Engine]]:
    (world_dir / "a").mkdir()
    (world_dir / "b").mkdir()
    first = AdminEngine(root=world_dir / "a").start()
    second = AdminEngine(root=world_dir / "b").start()
    yield first, second
    first.stop()
    second.stop()


def deploy_linked_jobs(engine: Engine, base: Path) -> tuple[str, str]:
    """One job of odin-alice's linked to one of root's."""
    alice_dir = user_dir(base, "odin-alice")
    alice = write_job(alice_dir, "extract", "print('x')\n", schedule="every day at 03:00")
    ok("deploy", "-f", str(alice), engine=engine, user="odin-alice")
    root_dir = user_dir(base, "root")
    mine = write_job(root_dir, "report", "print('r')\n")
    ok("deploy", "-f", str(mine), engine=engine)
    first, second = job_id_of(alice), job_id_of(mine)
    ok("link", "-f", first, "-t", second, engine=engine)
    return first, second


@pytest.mark.slow
@needs_root
def test_backup_then_restore_on_a_new_cluster_keeps_jobs_owners_and_links(
    two_engines: tuple[Engine, Engine], world_dir: Path
) -> None:
    source, target = two_engines
    first, second = deploy_linked_jobs(source, world_dir)
    path = world_dir / "odin.backup"
    ok("backup", "-f", str(path), engine=source)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["format"] == "odin-backup" and document["state"]["v"] == 1

    out = ok("restore", "-f", str(path), engine=target)
    assert "restored 2 job(s)" in out and "1 link(s)" in out
    restored = jobs_of(target)
    assert set(restored) == {first, second}
    assert restored[first]["owner"] == "odin-alice" and restored[second]["owner"] == "root"
    assert restored[first]["links"] == {second: "success"}
    assert jobs_of(target)[first]["schedule"] == jobs_of(source)[first]["schedule"]
    alice_sees = json.loads(ok("list", "-o", "json", engine=target, user="odin-alice"))
    assert [j["id"] for j in alice_sees] == [first]


@pytest.mark.slow
@needs_root
def test_restore_twice_changes_nothing(two_engines: tuple[Engine, Engine], world_dir: Path) -> None:
    source, target = two_engines
    deploy_linked_jobs(source, world_dir)
    path = world_dir / "odin.backup"
    ok("backup", "-f", str(path), engine=source)
    ok("restore", "-f", str(path), engine=target)
    before = versions(target)
    assert len(before) == 2
    again = json.loads(ok("restore", "-f", str(path), "-o", "json", engine=target))
    assert again["jobs_restored"] == 0 and again["jobs_unchanged"] == 2
    assert again["links_restored"] == 0 and again["links_unchanged"] == 1
    assert versions(target) == before


@pytest.mark.slow
@needs_root
def test_restore_refuses_a_file_that_is_not_a_backup(engine: Engine, world_dir: Path) -> None:
    del engine
    admin = AdminEngine(root=world_dir / "admin")
    admin.root.mkdir()
    admin.start()
    try:
        for name, text in (
            ("plain.txt", "hello"),
            ("other.json", '{"jobs": []}'),
            ("future.json", json.dumps({"format": "odin-backup", "v": 99, "state": {}})),
        ):
            path = world_dir / name
            path.write_text(text)
            done = odin("restore", "-f", str(path), engine=admin)
            assert done.returncode == 2, done.stderr
            assert "not an Odin backup" in done.stderr or "upgrade Odin" in done.stderr
        assert jobs_of(admin) == {}
    finally:
        admin.stop()


@pytest.mark.slow
@needs_root
def test_only_root_may_back_up_or_restore(
    two_engines: tuple[Engine, Engine], world_dir: Path
) -> None:
    source, _ = two_engines
    path = world_dir / "odin.backup"
    ok("backup", "-f", str(path), engine=source)
    denied = odin("backup", "-f", "-", engine=source, user="odin-alice")
    assert denied.returncode == 4 and "only root" in denied.stderr
    assert denied.stdout == ""
    os.chmod(path, 0o644)  # even a readable backup cannot be restored by a member
    denied = odin("restore", "-f", str(path), engine=source, user="odin-alice")
    assert denied.returncode == 4 and "only root" in denied.stderr


# -- the format, without an engine ------------------------------------------------

YAML = (
    'provider:\n  name: odin\n  version: 1.0.0\njob:\n  id: "{id}"\n  name: "j"\n'
    '  description: ""\n  language: python\n  file: j.py\n  schedule: "never"\n'
)


def a_job(job_id: str = "0123456789ab", owner: int = 1001) -> Job:
    code = "print(1)\n"
    return Job(
        id=job_id,
        owner_uid=owner,
        owner_gid=owner,
        owner="someone",
        name="j",
        description="",
        language="python",
        filename="j.py",
        schedule="never",
        timezone="UTC",
        code=code,
        yaml=YAML.format(id=job_id),
        code_sha=hashlib.sha256(code.encode()).hexdigest(),
    )


def a_document(*jobs: Job, links: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    state = {"v": 1, "jobs": [j.to_dict() for j in jobs], "links": links or {}, "runs": []}
    return backup.document(state, node="n", created_at=1.0, odin="0")


def test_parse_refuses_damaged_code_and_dangling_links() -> None:
    damaged = a_job().to_dict() | {"code": "print(2)\n"}
    document = a_document()
    document["state"]["jobs"] = [damaged]
    with pytest.raises(InvalidInput, match="checksum"):
        backup.parse(document)
    with pytest.raises(InvalidInput, match="names a job it lacks"):
        backup.parse(a_document(a_job(), links={"0123456789ab": {"ffffffffffff": "success"}}))


def test_plan_restore_is_empty_for_what_is_already_there() -> None:
    job = a_job()
    parsed = backup.parse(
        a_document(job, a_job("ba9876543210"), links={job.id: {"ba9876543210": "always"}})
    )
    first = backup.plan_restore(parsed, {}, {})
    assert len(first.put) == 2 and len(first.add) == 1
    redeployed = dataclasses.replace(job, version=7, updated_at=99.0)
    current = {job.id: redeployed, "ba9876543210": a_job("ba9876543210")}
    second = backup.plan_restore(parsed, current, {job.id: {"ba9876543210": LinkOn.ALWAYS}})
    assert second.put == () and second.add == () and second.jobs_unchanged == 2


def test_plan_restore_refuses_another_owners_id_and_cycles() -> None:
    job, other = a_job(), a_job("ba9876543210")
    parsed = backup.parse(a_document(job, other, links={job.id: {other.id: "success"}}))
    with pytest.raises(Conflict, match="belongs to uid 2002"):
        backup.plan_restore(parsed, {job.id: a_job(owner=2002)}, {})
    with pytest.raises(Conflict, match="cycle"):
        backup.plan_restore(parsed, {}, {other.id: {job.id: LinkOn.SUCCESS}})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(job=st.dictionaries(st.sampled_from(sorted(a_job().to_dict())), JSON, max_size=8))
def test_parse_raises_only_odin_errors_on_hostile_jobs(job: dict[str, Any]) -> None:
    document = a_document(a_job())
    document["state"]["jobs"][0].update(job)
    with contextlib.suppress(OdinError):
        backup.parse(document)


@settings(max_examples=300, deadline=None)
@given(data=JSON)
def test_parse_raises_only_odin_errors_on_any_json(data: Any) -> None:
    with pytest.raises(OdinError):
        backup.parse(data)


def _uid_taken(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


@pytest.mark.slow
@needs_root
def test_restore_matches_owners_by_uid_and_name_unless_mapped(
    two_engines: tuple[Engine, Engine], world_dir: Path
) -> None:
    """A backup from a host where Alice had Bob's uid here, and Bob a uid nobody has here:
    refused, both listed, until --map-owner says whose the jobs become."""
    source, target = two_engines
    alice_job, _ = deploy_linked_jobs(source, world_dir)
    bob_yaml = write_job(user_dir(world_dir, "odin-bob"), "bobs", "print('b')\n")
    ok("deploy", "-f", str(bob_yaml), engine=source, user="odin-bob")
    bob_job = job_id_of(bob_yaml)
    path = world_dir / "odin.backup"
    ok("backup", "-f", str(path), engine=source)
    alice, bob = pwd.getpwnam("odin-alice"), pwd.getpwnam("odin-bob")
    nobody = next(uid for uid in range(42000, 43000) if not _uid_taken(uid))
    document = json.loads(path.read_text())
    elsewhere = {alice_job: bob.pw_uid, bob_job: nobody}  # their uids on the backup's host
    for job in document["state"]["jobs"]:
        job["owner_uid"] = elsewhere.get(job["id"], job["owner_uid"])
    path.write_text(json.dumps(document))

    refused = odin("restore", "-f", str(path), engine=target)
    assert refused.returncode == 5, refused.stderr
    assert f"odin-alice (uid {bob.pw_uid} in the backup): uid {bob.pw_uid} is odin-bob here" in (
        refused.stderr
    )
    assert f"odin-bob (uid {nobody} in the backup): odin-bob is uid {bob.pw_uid} here" in (
        refused.stderr
    )
    for bad in ("odin-alice", "no-such-owner=odin-alice", "odin-alice=no-such-user-here"):
        done = odin("restore", "-f", str(path), "--map-owner", bad, engine=target)
        assert done.returncode == 2, (bad, done.stderr)
    assert jobs_of(target) == {}

    maps = ("--map-owner", "odin-alice=odin-alice", "--map-owner", "odin-bob=odin-bob")
    out = ok("restore", "-f", str(path), *maps, engine=target)
    assert "restored 3 job(s)" in out and "jobs of odin-alice restored as odin-alice's" in out
    restored = jobs_of(target)
    assert (restored[alice_job]["owner"], restored[alice_job]["owner_uid"]) == (
        "odin-alice",
        alice.pw_uid,
    )
    assert restored[bob_job]["owner_uid"] == bob.pw_uid
    bob_sees = json.loads(ok("list", "-o", "json", engine=target, user="odin-bob"))
    assert [j["id"] for j in bob_sees] == [bob_job]
