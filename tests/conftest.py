"""Shared fixtures: a temporary world-readable directory and real engines."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine_harness import Engine


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A temporary directory other users can traverse (sockets and job files live here)."""
    path = Path(tempfile.mkdtemp(prefix="odin-test-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def engine(world_dir: Path) -> Iterator[Engine]:
    running = Engine(root=world_dir).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def alice() -> pwd.struct_passwd:
    """The test user odin-alice (created by scripts/test-users.sh if missing); root only."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        return pwd.getpwnam("odin-alice")
    except KeyError:
        script = Path(__file__).resolve().parents[1] / "scripts" / "test-users.sh"
        subprocess.run(["bash", str(script)], check=True)
        return pwd.getpwnam("odin-alice")


def _engines() -> Iterator[tuple[int, list[str]]]:
    """Every odin-engine process on the host, with its command line."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{name}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(a.endswith("odin-engine") for a in argv[:3]) or "odin.daemon" in argv[:3]:
            yield int(name), argv


def _ancestors(pid: int) -> set[int]:
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rpartition(")")[2].split()[1])
    return seen


def _orphaned(pid: int, argv: list[str]) -> bool:
    """An engine this session started (still below it) or one whose data directory a test
    removed: nothing will stop it."""
    if os.getpid() in _ancestors(pid):
        return True
    data_dir = argv[argv.index("--data-dir") + 1] if "--data-dir" in argv[:-1] else None
    return data_dir is not None and not Path(data_dir).exists()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Leave no engine running, whatever failed: kill those the tests did not stop."""
    import signal

    left = [(pid, argv) for pid, argv in _engines() if _orphaned(pid, argv)]
    for pid, _argv in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if left:
        names = ", ".join(f"{pid} ({' '.join(argv[1:4])})" for pid, argv in left)
        print(f"\nconftest: killed {len(left)} engines the tests left running: {names}")
