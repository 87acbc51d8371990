"""The Go SDK's own checks: gofmt, go vet and its unit tests, offline (no module proxy)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ODINLIB = Path(__file__).resolve().parents[2] / "sdk" / "go" / "odinlib"

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")


def go(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "CGO_ENABLED": "0"}
    return subprocess.run(["go", *args], cwd=ODINLIB, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_gofmt_and_vet_are_clean() -> None:
    unformatted = subprocess.run(["gofmt", "-l", "."], cwd=ODINLIB, capture_output=True, text=True)
    assert unformatted.stdout == ""
    vet = go("vet", "./...")
    assert vet.returncode == 0, vet.stderr


@pytest.mark.slow
def test_the_go_unit_tests_pass() -> None:
    result = go("test", "-count=1", "./...")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_module_has_no_dependencies() -> None:
    go_mod = (ODINLIB / "go.mod").read_text()
    assert "module github.com/theycallmemac/odin/odin-libraries/go/odinlib" in go_mod
    assert "require" not in go_mod
