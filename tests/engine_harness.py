"""Real engines and real users for end-to-end tests.

An ``Engine`` is an ``odin-engine`` process on a temporary socket, data
directory and loopback ports; ``odin_as`` runs the real CLI as a real Unix user
through ``runuser``, so the engine learns who calls from the kernel.
"""

from __future__ import annotations

import itertools
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


_PORTS = itertools.count(20000 + (os.getpid() * 97) % 10000)
_GIVEN: set[int] = set()


def free_port() -> int:
    """A port outside the kernel's ephemeral range (32768-60999), free now, never given twice.

    A port the kernel picked for ``bind(0)`` can be taken by an outgoing connection before the
    engine binds it (a CI run failed that way), so ports come from below that range.
    """
    while True:
        port = 20000 + (next(_PORTS) - 20000) % 12000
        if port in _GIVEN:
            continue
        _GIVEN.add(port)
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        return port


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
    umask: int = -1  # the engine's umask at start (-1: the test's own)
    extra: list[str] = field(default_factory=list)  # more odin-engine flags

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
            *self.extra,
        ]

    def start(self, wait: bool = True) -> Engine:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self.env},
            umask=self.umask,
        )
        if wait:
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


# -- clusters ---------------------------------------------------------------------


def pid_of(marker: str) -> int | None:
    """The pid of the process whose command line contains every word of ``marker``."""
    words = marker.split()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = " ".join(a.decode(errors="replace") for a in argv)
        if all(word in text.split() for word in words) and "odin.daemon" in text:
            return int(entry.name)
    return None


@dataclass
class Member:
    """A node of a test cluster: its name, ports and how to kill and restart it."""

    name: str
    http_port: int
    raft_port: int
    socket: Path
    argv: list[str] = field(default_factory=list)

    def pid(self) -> int | None:
        return pid_of(f"--name {self.name} --socket {self.socket}")


@dataclass
class Cluster:
    """A primary engine plus nodes added with ``odin nodes add`` (spawned by the engine)."""

    primary: Engine
    members: dict[str, Member] = field(default_factory=dict)

    def add(self, name: str) -> Member:
        http, raft = free_port(), free_port()
        odin(
            "nodes",
            "add",
            "-n",
            name,
            "-a",
            f":{http}",
            "-r",
            f":{raft}",
            engine=self.primary,
            timeout=120,
        )
        member = Member(name, http, raft, self.primary.root / f"odin-{http}.sock")
        pid = wait_for(member.pid, what=f"{name}'s process")
        member.argv = [
            a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a
        ]
        self.members[name] = member
        return member

    def port_of(self, name: str) -> str:
        if name == "master-node":
            return str(self.primary.http_port)
        return str(self.members[name].http_port)

    def nodes(self, via: str = "master-node") -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = odin(
            "nodes", "get", "-o", "json", "-p", self.port_of(via), engine=self.primary
        ).json()
        return result

    def leader(self, via: str) -> str | None:
        try:
            rows = self.nodes(via)
        except AssertionError:
            return None
        leaders = [r["name"] for r in rows if r["role"] == "leader"]
        return leaders[0] if leaders else None

    def kill(self, name: str) -> None:
        if name == "master-node":
            self.primary.kill()
            return
        pid = self.members[name].pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: self.members[name].pid() is None, what=f"{name} to die")

    def signal(self, name: str, sig: signal.Signals) -> None:
        """Send ``sig`` to one node's engine process (SIGSTOP freezes it, SIGCONT thaws it)."""
        pid = self.primary.proc.pid if name == "master-node" else self.members[name].pid()
        assert pid is not None, f"{name} is not running"
        os.kill(pid, sig)

    def restart(self, name: str, wait: bool = True) -> None:
        if name == "master-node":
            self.primary.start(wait=wait)
            return
        member = self.members[name]
        log = open(self.primary.root / f"{name}.log", "ab")  # noqa: SIM115
        subprocess.Popen(member.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait:
            return
        wait_for(
            lambda: (
                odin(
                    "list", "-p", str(member.http_port), engine=self.primary, check=False
                ).returncode
                == 0
            ),
            timeout=60,
            what=f"{name} to answer",
        )

    def stop_all(self) -> None:
        for name in self.members:
            pid = self.members[name].pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
        self.primary.stop(signal.SIGKILL)
