"""Spinners of the slow commands: shown on a terminal (a pseudo-terminal here), on stderr,
and never in a pipe or with ``-o json`` (real engine; needs root)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine_harness import BIN, Engine, needs_root, odin, user_dir, write_job

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root (backup, jobs as odin-alice)"),
    pytest.mark.slow,
]

ALICE = "odin-alice"
SPINNER_FRAMES = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")  # rich's "dots" spinner
needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")

GO_JOB = """\
package main

import "github.com/theycallmemac/odin/odin-libraries/go/odinlib"

func main() {
	odin, _ := odinlib.Setup("slow.yml")
	odin.Result("built", 0)
}
"""


@dataclass
class Seen:
    returncode: int
    terminal: str  # what the pseudo-terminal showed (stderr, and stdout unless piped)
    stdout: str  # stdout when it was a pipe
    seconds: float


def cli_env(engine: Engine) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "ODIN_SOCKET": str(engine.socket),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
    }


def as_user(user: str | None, argv: list[str], env: dict[str, str]) -> list[str]:
    if user is None:
        return argv
    return [
        "/usr/sbin/runuser",
        "-u",
        user,
        "--",
        "env",
        *(f"{k}={v}" for k, v in env.items()),
        *argv,
    ]


def on_terminal(
    *args: str,
    engine: Engine,
    user: str | None = None,
    cwd: Path | None = None,
    pipe_stdout: bool = False,
) -> Seen:
    """Run ``odin ARGS`` with stderr (and stdout unless ``pipe_stdout``) on a pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    env = cli_env(engine)
    started = time.monotonic()
    proc = subprocess.Popen(
        as_user(user, [str(BIN / "odin"), *args], env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if pipe_stdout else slave,
        stderr=slave,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    shown = read_until_closed(master, timeout=300)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    returncode = proc.wait(timeout=30)
    return Seen(returncode, shown, stdout, time.monotonic() - started)


def read_until_closed(master: int, timeout: float) -> str:
    """Everything written to the terminal until its last writer closes it."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    return b"".join(chunks).decode(errors="replace")


def frames(text: str) -> set[str]:
    return SPINNER_FRAMES & set(text)


@needs_go
def test_a_go_deploy_spins_on_the_terminal_while_it_compiles(
    engine: Engine, world_dir: Path
) -> None:
    home = user_dir(world_dir, ALICE)
    write_job(home, "slow", GO_JOB, language="go")
    seen = on_terminal(
        "deploy", "-f", "slow.yml", engine=engine, user=ALICE, cwd=home, pipe_stdout=True
    )
    assert seen.returncode == 0, seen.terminal
    assert "Compiling the Go job" in seen.terminal and "slow.go" in seen.terminal
    if seen.seconds > 1:  # the first build of a fresh engine: the spinner turns
        assert len(frames(seen.terminal)) >= 2, seen.terminal
    assert seen.terminal.endswith("\x1b[2K")  # the spinner's line is erased when done
    assert "Deployed job" in seen.stdout and not frames(seen.stdout)  # the result: stdout


@needs_go
def test_a_go_deploy_in_a_pipe_or_as_json_shows_no_spinner(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    write_job(home, "piped", GO_JOB.replace("slow.yml", "piped.yml"), language="go")
    piped = odin("deploy", "-f", "piped.yml", engine=engine, user=ALICE, cwd=home, timeout=300)
    assert piped.stderr == "" and "Deployed job" in piped.stdout
    write_job(home, "json", GO_JOB.replace("slow.yml", "json.yml"), language="go")
    seen = on_terminal(
        "deploy", "-f", "json.yml", "-o", "json", engine=engine, user=ALICE, cwd=home
    )
    assert seen.returncode == 0, seen.terminal
    assert "Compiling" not in seen.terminal and not frames(seen.terminal)
    assert json.loads(seen.terminal)["job"]["language"] == "go"


def test_backup_and_restore_spin_only_on_a_terminal(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    write_job(home, "kept", "print('kept')\n")
    odin("deploy", "-f", str(home / "kept.yml"), engine=engine, user=ALICE)
    saved = world_dir / "odin.backup"

    piped = odin("backup", "-f", str(saved), engine=engine)
    assert piped.stderr == "" and "backed up 1 job(s)" in piped.stdout
    seen = on_terminal("backup", "-f", str(saved), engine=engine, pipe_stdout=True)
    assert seen.returncode == 0, seen.terminal
    assert "Taking a snapshot of every job" in seen.terminal and frames(seen.terminal)
    assert "backed up 1 job(s)" in seen.stdout

    piped = odin("restore", "-f", str(saved), engine=engine)
    assert piped.stderr == "" and "1 already there" in piped.stdout
    seen = on_terminal("restore", "-f", str(saved), engine=engine, pipe_stdout=True)
    assert "Restoring the jobs and links of" in seen.terminal and frames(seen.terminal)
    as_json = on_terminal("restore", "-f", str(saved), "-o", "json", engine=engine)
    assert json.loads(as_json.terminal)["jobs_unchanged"] == 1
