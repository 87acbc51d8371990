"""Job files written safely for their owner; the interpreter table and the job environment."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor_kit import Kit
from odin import config
from odin.errors import ExecutionError, InvalidInput
from odin.executor.files import CodeFiles, materialize
from odin.executor.interpreters import command_for, job_env
from odin.executor.spec import LaunchSpec
from odin.jobs.language import Language

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root to write files for other users")
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "test-users.sh"


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="odin-code-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write(alice: pwd.struct_passwd, root: Path, code: str, name: str = "job.py") -> Path:
    return materialize(code, name, root=root, uid=alice.pw_uid, gid=alice.pw_gid, job_id="backup")


def owner_mode(path: Path) -> tuple[int, int, int]:
    info = path.lstat()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


@needs_root
def test_code_is_written_for_its_owner_only(alice: pwd.struct_passwd, root: Path) -> None:
    path = write(alice, root, "print('hi')\n")
    me = (alice.pw_uid, alice.pw_gid)
    assert path == root / str(alice.pw_uid) / "backup" / "job.py"
    assert path.read_text() == "print('hi')\n"
    assert owner_mode(path) == (*me, 0o600)
    assert owner_mode(path.parent) == (*me, 0o700)
    assert owner_mode(path.parent.parent) == (*me, 0o700)
    assert sorted(os.listdir(path.parent)) == ["job.py"]  # no temporary left behind


@needs_root
def test_same_content_is_not_rewritten_and_new_content_replaces(
    alice: pwd.struct_passwd, root: Path
) -> None:
    first = write(alice, root, "a = 1\n").stat()
    assert write(alice, root, "a = 1\n").stat().st_ino == first.st_ino
    changed = write(alice, root, "a = 2\n")
    assert changed.stat().st_ino != first.st_ino and changed.read_text() == "a = 2\n"


@pytest.mark.parametrize("name", ["", "../x.py", "a/b.py", ".hidden.py", "a\0b.py", "x\n.py", ".."])
def test_file_names_must_be_plain(name: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="plain file name"):
        materialize("x", name, root=tmp_path, uid=os.geteuid(), gid=os.getegid(), job_id="j")
    with pytest.raises(InvalidInput):
        materialize("x", "ok.py", root=tmp_path, uid=os.geteuid(), gid=os.getegid(), job_id=name)
    assert list(tmp_path.iterdir()) == []


@needs_root
def test_a_planted_symlink_is_never_followed(alice: pwd.struct_passwd, root: Path) -> None:
    victim_dir = Path(tempfile.mkdtemp(prefix="odin-victim-"))
    try:
        victim = victim_dir / "secret"
        victim.write_text("root's\n")
        job_dir = write(alice, root, "x = 1\n").parent
        # The user points her code file at a root file: it is replaced, not written through.
        (job_dir / "job.py").unlink()
        (job_dir / "job.py").symlink_to(victim)
        path = write(alice, root, "x = 2\n")
        assert victim.read_text() == "root's\n"
        assert not path.is_symlink() and path.read_text() == "x = 2\n"
        # The user swaps her job directory for a link to a root directory: refused.
        shutil.rmtree(job_dir)
        job_dir.symlink_to(victim_dir)
        with pytest.raises(ExecutionError, match="backup"):
            write(alice, root, "x = 3\n")
        assert sorted(os.listdir(victim_dir)) == ["secret"]
        assert victim.read_text() == "root's\n"
    finally:
        shutil.rmtree(victim_dir, ignore_errors=True)


@needs_root
def test_a_directory_owned_by_someone_else_is_refused(alice: pwd.struct_passwd, root: Path) -> None:
    bob = pwd.getpwnam("odin-bob")
    taken = root / str(alice.pw_uid)
    taken.mkdir(mode=0o700)
    os.chown(taken, bob.pw_uid, bob.pw_gid)
    with pytest.raises(ExecutionError, match=f"uid {bob.pw_uid}"):
        write(alice, root, "x = 1\n")


def test_the_interpreter_table_is_fixed() -> None:
    assert command_for(Language.PYTHON, "/c/job.py") == ("/usr/bin/python3", "-u", "/c/job.py")
    assert command_for(Language.NODE, "/c/job.js") == ("/usr/bin/node", "/c/job.js")
    assert command_for(Language.GO, "/c/job") == ("/c/job",)
    with pytest.raises(ExecutionError, match="unknown language 'ruby'"):
        command_for("ruby", "/c/job.rb")  # type: ignore[arg-type]


def test_the_job_env_reserves_odin_and_identity_names() -> None:
    env = job_env(
        user="odin-alice",
        home="/home/odin-alice",
        uid=1001,
        extra={
            "PATH": "/opt/tools/bin:/usr/bin",
            "ODIN_RUN_ID": "forged",
            "HOME": "/root",
            "PYTHONPATH": "/mine",
            "COLOR": "blue",
        },
        odin_vars={"ODIN_RUN_ID": "job@1", "ODIN_SOCKET": "/run/odin/odin.sock"},
        sdk_python_path="/sdk/python",
        sdk_node_path="/sdk/node",
    )
    assert env == {
        "PATH": "/opt/tools/bin:/usr/bin",
        "LANG": "C.UTF-8",
        "HOME": "/home/odin-alice",
        "USER": "odin-alice",
        "LOGNAME": "odin-alice",
        "COLOR": "blue",
        "PYTHONPATH": "/sdk/python:/mine",
        "NODE_PATH": "/sdk/node",
        "ODIN_RUN_ID": "job@1",
        "ODIN_SOCKET": "/run/odin/odin.sock",
        "ODIN_UID": "1001",
    }
    with pytest.raises(ExecutionError, match="must start with ODIN_"):
        job_env(
            user="u", home="/h", uid=1, extra={}, odin_vars={"PATH": "/x"},
            sdk_python_path=None, sdk_node_path=None,
        )  # fmt: skip


@pytest.mark.slow
@needs_root
def test_jobs_import_the_sdks_without_installing_them(alice: pwd.struct_passwd, root: Path) -> None:
    sdk = Path(tempfile.mkdtemp(prefix="odin-sdk-"))
    try:
        sdk.chmod(0o755)
        (sdk / "python").mkdir(mode=0o755)
        (sdk / "python" / "pyodin.py").write_text("NAME = 'pyodin'\n")
        (sdk / "node" / "odin").mkdir(mode=0o755, parents=True)
        (sdk / "node" / "odin" / "index.js").write_text("module.exports = {name: 'odin'};\n")
        env = job_env(
            user=alice.pw_name, home=alice.pw_dir, uid=alice.pw_uid, extra={}, odin_vars={},
            sdk_python_path=str(sdk / "python"), sdk_node_path=str(sdk / "node"),
        )  # fmt: skip
        py = write(alice, root, "import pyodin; print(pyodin.NAME)\n")
        js = write(alice, root, "console.log(require('odin').name)\n", "job.js")
        outputs = [
            run_as(alice, command_for(lang, str(p)), env)
            for lang, p in ((Language.PYTHON, py), (Language.NODE, js))
        ]
        assert outputs == [b"pyodin\n", b"odin\n"]
    finally:
        shutil.rmtree(sdk, ignore_errors=True)


def run_as(user: pwd.struct_passwd, argv: tuple[str, ...], env: dict[str, str]) -> bytes:
    spec = LaunchSpec(
        run_id="sdk@1",
        argv=argv,
        uid=user.pw_uid,
        gid=user.pw_gid,
        groups=(),
        env=env,
        cwd=user.pw_dir,
        timeout_s=10,
    )
    outcome = asyncio.run(Kit().run(spec))
    assert outcome.ok, outcome.output
    return outcome.output


def test_job_path_is_the_configured_default() -> None:
    env = job_env(
        user="u", home="/h", uid=1, extra={}, odin_vars={},
        sdk_python_path=None, sdk_node_path=None,
    )  # fmt: skip
    assert env["PATH"] == config.JOB_PATH and "PYTHONPATH" not in env


@needs_root
def test_remembered_code_costs_a_stat_and_any_change_is_written_again(
    alice: pwd.struct_passwd, root: Path
) -> None:
    files = CodeFiles(root)
    ids = {"uid": alice.pw_uid, "job_id": "backup"}
    assert files.known("sha1", "job.py", **ids) is None  # never written
    path = Path(files.write("print(1)\n", "sha1", "job.py", gid=alice.pw_gid, **ids))
    assert files.known("sha1", "job.py", **ids) == str(path)
    assert files.known("sha2", "job.py", **ids) is None  # other code: written again

    edited = path.stat().st_mtime_ns + 1_000_000
    path.write_text("print(2)\n")  # the owner edits their copy
    os.utime(path, ns=(edited, edited))
    assert files.known("sha1", "job.py", **ids) is None
    assert files.write("print(1)\n", "sha1", "job.py", gid=alice.pw_gid, **ids) == str(path)
    assert path.read_text() == "print(1)\n"
    assert files.known("sha1", "job.py", **ids) == str(path)

    elsewhere = root / "elsewhere.py"
    elsewhere.write_text("print(3)\n")
    path.unlink()
    path.symlink_to(elsewhere)  # swapped for a link
    assert files.known("sha1", "job.py", **ids) is None
    files.write("print(1)\n", "sha1", "job.py", gid=alice.pw_gid, **ids)
    assert not path.is_symlink() and path.read_text() == "print(1)\n"
    assert elsewhere.read_text() == "print(3)\n"

    path.unlink()  # removed
    assert files.known("sha1", "job.py", **ids) is None
