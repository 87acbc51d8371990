"""Shared fixtures: a temporary world-readable directory and real engines."""

from __future__ import annotations

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
