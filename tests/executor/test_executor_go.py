"""Go jobs: compiled once, offline, as their owner; the SDK import path resolves locally."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor_kit import Kit
from odin.errors import ExecutionError
from odin.executor import gobuild
from odin.executor.gobuild import SDK_MODULE, build_go, go_path
from odin.executor.interpreters import command_for
from odin.executor.spec import LaunchSpec, RunOutcome
from odin.jobs.language import Language

ROOT = os.geteuid() == 0
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "test-users.sh"


def have_go() -> bool:
    try:
        go_path()
    except ExecutionError:
        return False
    return True


pytestmark = [
    pytest.mark.skipif(not ROOT, reason="needs root to build as another user"),
    pytest.mark.skipif(not have_go(), reason="go is not installed (apt-get install golang-go)"),
    pytest.mark.slow,
]

HELLO = """package main

import (
\t"fmt"
\t"os"
)

func main() {
\tfmt.Println("hello from", os.Getuid())
}
"""


@pytest.fixture(scope="module")
def alice() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("odin-alice")
    except KeyError:
        subprocess.run(["bash", str(SCRIPTS)], check=True)
        return pwd.getpwnam("odin-alice")


@pytest.fixture(scope="module")
def cache_dir() -> Iterator[Path]:
    """Shared by the module so that the user's Go build cache is warmed once."""
    path = Path(tempfile.mkdtemp(prefix="odin-gocache-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def build(user: pwd.struct_passwd, cache: Path, code: str, sdk: Path | None = None) -> Path:
    groups = os.getgrouplist(user.pw_name, user.pw_gid)

    async def body() -> Path:
        async with Kit().executor() as executor:
            return await build_go(
                code,
                executor=executor,
                filename="hello.go",
                uid=user.pw_uid,
                gid=user.pw_gid,
                groups=groups,
                cache_dir=cache,
                sdk_go_dir=sdk,
            )

    return asyncio.run(body())


def run_binary(user: pwd.struct_passwd, binary: Path) -> RunOutcome:
    spec = LaunchSpec(
        run_id="go@1",
        argv=command_for(Language.GO, str(binary)),
        uid=user.pw_uid,
        gid=user.pw_gid,
        groups=tuple(os.getgrouplist(user.pw_name, user.pw_gid)),
        env={"PATH": "/usr/bin:/bin", "HOME": user.pw_dir},
        cwd=user.pw_dir,
        timeout_s=10,
    )
    return asyncio.run(Kit().run(spec))


def test_a_go_job_builds_once_as_the_user_and_runs(
    alice: pwd.struct_passwd, cache_dir: Path
) -> None:
    binary = build(alice, cache_dir, HELLO)
    info = binary.stat()
    assert info.st_uid == alice.pw_uid and info.st_mode & 0o100
    assert (cache_dir / str(alice.pw_uid)).stat().st_uid == alice.pw_uid
    outcome = run_binary(alice, binary)
    assert outcome.ok and outcome.output == f"hello from {alice.pw_uid}\n".encode()

    began = time.monotonic()
    again = build(alice, cache_dir, HELLO)
    assert again == binary and again.stat().st_ino == info.st_ino  # not rebuilt
    assert time.monotonic() - began < 0.5


def test_a_compile_error_carries_the_compilers_message(
    alice: pwd.struct_passwd, cache_dir: Path
) -> None:
    broken = HELLO.replace('fmt.Println("hello from", os.Getuid())', "fmt.Println(nope)")
    with pytest.raises(ExecutionError) as caught:
        build(alice, cache_dir, broken)
    message = str(caught.value)
    assert "go build of hello.go failed" in message
    assert "hello.go:9" in message and "undefined: nope" in message


def test_the_sdk_import_path_resolves_to_the_local_directory(
    alice: pwd.struct_passwd, cache_dir: Path
) -> None:
    sdk = Path(tempfile.mkdtemp(prefix="odin-fake-sdk-"))
    try:
        sdk.chmod(0o755)
        (sdk / "go.mod").write_text(f"module {SDK_MODULE}\n\ngo 1.18\n")
        (sdk / "odinlib.go").write_text(
            'package odinlib\n\nfunc Setup(name string) string { return "setup " + name }\n'
        )
        code = (
            f'package main\n\nimport (\n\t"fmt"\n\n\t"{SDK_MODULE}"\n)\n\n'
            'func main() { fmt.Println(odinlib.Setup("job.yml")) }\n'
        )
        outcome = run_binary(alice, build(alice, cache_dir, code, sdk))
        assert outcome.ok and outcome.output == b"setup job.yml\n"
    finally:
        shutil.rmtree(sdk, ignore_errors=True)


def test_a_missing_toolchain_is_named_clearly(
    alice: pwd.struct_passwd, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gobuild, "GO_CANDIDATES", ("/nonexistent/go",))
    with pytest.raises(ExecutionError, match="go is not installed"):
        build(alice, cache_dir, HELLO)
