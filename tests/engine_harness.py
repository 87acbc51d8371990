"""Real engines and real users for end-to-end tests.

An ``Engine`` is an ``odin-engine`` process on a temporary socket, data
directory and loopback ports; ``odin_as`` runs the real CLI as a real Unix user
through ``runuser``, so the engine learns who calls from the kernel.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

BIN = Path(sys.executable).parent
T = TypeVar("T")

needs_root = os.geteuid() != 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], T], timeout: float = 20.0, interval: float = 0.1, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what or condition}: last={last!r}"
    )


@dataclass
class Engine:
    root: Path
    http_port: int = field(default_factory=free_port)
    raft_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    dashboard_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.root / "odin.sock"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "engine.log"

    def command(self) -> list[str]:
        dashboard = (
            ["--no-dashboard"]
            if self.dashboard_port is None
            else ["--dashboard", f"127.0.0.1:{self.dashboard_port}"]
        )
        return [
            str(BIN / "odin-engine"),
            *("--data-dir", str(self.data_dir), "--socket", str(self.socket)),
            *("--http", f":{self.http_port}", "--raft", f":{self.raft_port}"),
            *("--log-level", "warning"),
            *dashboard,
        ]

    def start(self) -> Engine:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self.env},
        )
        wait_for(self.answers, timeout=30, what=f"engine on {self.socket}")
        return self

    def answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"engine exited: {self.log_path.read_text()[-3000:]}")
        result = odin("list", "-o", "json", engine=self, check=False)
        return result.returncode == 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig) if sig == signal.SIGKILL else self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def odin(
    *args: str,
    engine: Engine,
    user: str | None = None,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = 60,
) -> Result:
    """Run the real ``odin`` CLI, as ``user`` when given (through runuser)."""
    command = [str(BIN / "odin"), *args]
    env = {"PATH": "/usr/bin:/bin", "ODIN_SOCKET": str(engine.socket), "LANG": "C.UTF-8"}
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
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )
    result = Result(done.returncode, done.stdout, done.stderr)
    if check and done.returncode != 0:
        raise AssertionError(
            f"odin {' '.join(args)} failed ({done.returncode}): {done.stderr}{done.stdout}"
        )
    return result


def user_dir(base: Path, user: str) -> Path:
    """A fresh directory owned by ``user`` (for job files)."""
    entry = pwd.getpwnam(user)
    path = base / user
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def write_job(
    directory: Path,
    name: str,
    code: str,
    *,
    schedule: str = "never",
    language: str = "python",
    extra: str = "",
    job_id: str | None = None,
) -> Path:
    """Write NAME.yml and its code file in ``directory``, owned like the directory."""
    import secrets

    ext = {"python": "py", "go": "go", "node": "js"}[language]
    job_id = job_id or secrets.token_hex(6)
    yaml_path = directory / f"{name}.yml"
    yaml_path.write_text(
        "provider:\n  name: odin\n  version: 1.0.0\njob:\n"
        f'  id: "{job_id}"\n  name: "{name}"\n  description: "test job {name}"\n'
        f'  language: {language}\n  file: {name}.{ext}\n  schedule: "{schedule}"\n{extra}'
    )
    code_path = directory / f"{name}.{ext}"
    code_path.write_text(code)
    stat = directory.stat()
    for path in (yaml_path, code_path):
        os.chown(path, stat.st_uid, stat.st_gid)
    return yaml_path


def job_id_of(yaml_path: Path) -> str:
    for line in yaml_path.read_text().splitlines():
        if line.strip().startswith("id:"):
            return line.split(":", 1)[1].strip().strip('"')
    raise AssertionError(f"no id in {yaml_path}")
