"""Real engines for the benchmarks: temp dirs, free loopback ports, always killed.

``engines(n)`` is a context manager that starts one engine, or ``n`` engines
joined into one Raft cluster, and kills every one of them on the way out, even
when the benchmark raised. Jobs are deployed through the API over the Unix
socket (``odin.cli.client.EngineClient``), not the CLI, so that 10,000 jobs
take seconds and the deploy rate itself is a figure.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from odin.cli.client import EngineClient
from odin.errors import OdinError
from odin.executor.cgroup import end_runs_of

BIN = Path(sys.executable).parent
T = TypeVar("T")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DEPLOY_THREADS = 4
READ_TIMEOUT_S = 20.0
NODES_ADD_TIMEOUT_S = 10.0


class BenchError(Exception):
    """A benchmark could not be set up (not a figure that missed its goal)."""


_PORTS = itertools.count(20000 + (os.getpid() * 97) % 10000)
_GIVEN: set[int] = set()


def free_port() -> int:
    """A port below the kernel's ephemeral range, free now and never given twice.

    A port from ``bind(0)`` can be taken by an outgoing connection before the engine binds it.
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
    condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``condition`` until it returns something truthy; BenchError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        value = condition()
        last = value
        if value:
            return value
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@dataclass
class Engine:
    """One ``odin-engine`` process on its own temp directory and ports."""

    root: Path
    name: str = "bench-node"
    join: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # more engine flags, e.g. ("--launch-slots", "16")
    http_port: int = field(default_factory=free_port)
    raft_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.root / "odin.sock"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def raft_addr(self) -> str:
        return f"127.0.0.1:{self.raft_port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError(f"engine {self.name} is not running")
        return self.proc.pid

    def client(self, timeout: float = 120.0) -> EngineClient:
        return EngineClient(self.socket, timeout=timeout)

    def start(self, wait: bool = True) -> Engine:
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "engine.log", "ab")  # noqa: SIM115 (the child owns it)
        argv = [str(BIN / "odin-engine"), "--name", self.name, "--data-dir", str(self.data_dir)]
        argv += ["--socket", str(self.socket), "--http", f":{self.http_port}"]
        argv += ["--raft", f":{self.raft_port}", "--log-level", "warning", "--no-dashboard"]
        for partner in self.join:
            argv += ["--join", partner]
        argv += self.extra
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_for(self.answers, timeout, f"engine {self.name} on {self.socket}")

    def answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            tail = (self.root / "engine.log").read_text(errors="replace")[-2000:]
            raise BenchError(f"engine {self.name} exited ({self.proc.returncode}): {tail}")
        try:
            self.client(timeout=5).request("GET", "/v1/jobs")
        except OdinError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the engine's session and reap it, then kill the runs it left in its cgroups."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        end_runs_of(self.proc.pid)  # its runs have sessions of their own: end them too
        self.proc = None

    # -- what /proc says about it -------------------------------------------

    def cpu_seconds(self) -> float:
        """utime + stime of the engine itself (children excluded), in seconds."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise BenchError("no VmRSS line in /proc status")


@contextlib.contextmanager
def engines(
    count: int = 1, tag: str = "odin", extra: tuple[str, ...] = ()
) -> Iterator[list[Engine]]:
    """``count`` engines (a cluster when > 1) in a temp dir; all killed on exit. ``extra``:
    more flags for a single engine."""
    base = Path(tempfile.mkdtemp(prefix=f"bench-{tag}-"))
    base.chmod(0o755)  # open to other users above the data dir, as /var/lib is (docs/operations.md)
    started: list[Engine] = []
    try:
        if count == 1:
            started.append(Engine(base / "n0", extra=extra).start())
        else:
            start_cluster(base, count, started)
        yield started
    finally:
        for engine in started:
            engine.kill()
        shutil.rmtree(base, ignore_errors=True)


def start_cluster(base: Path, count: int, started: list[Engine]) -> None:
    """Start ``count`` engines: the first alone, each other one with --join, then added.

    Each joiner is started first (it waits to be added), then ``odin nodes add``
    with its HOST:PORT runs against the first node. Raises BenchError (with the
    reason) when clustering is not available, so callers report figures as skipped.
    """
    started.append(Engine(base / "n0", name="node0").start())
    add_nodes(base, count, started)


def add_nodes(
    base: Path, count: int, started: list[Engine], timeout_s: float = NODES_ADD_TIMEOUT_S
) -> None:
    """Grow the cluster of ``started`` (its first engine answers ``odin nodes add``) to
    ``count`` engines, each new one with --join; a joiner takes the first's state whole."""
    first = started[0]
    for index in range(len(started), count):
        members = tuple(e.raft_addr for e in started)
        node = Engine(base / f"n{index}", name=f"node{index}", join=members)
        # A node joins only with the cluster's secret (docs/cluster.md): copy it first.
        node.data_dir.mkdir(parents=True, exist_ok=True)
        secret = node.data_dir / "cluster.secret"
        shutil.copyfile(first.data_dir / "cluster.secret", secret)
        os.chmod(secret, 0o600)
        started.append(node.start(wait=False))
        try:
            added = subprocess.run(
                [str(BIN / "odin"), "nodes", "add", "-n", node.name, *_addresses(node)],
                capture_output=True,
                text=True,
                env={**os.environ, "ODIN_SOCKET": str(first.socket)},
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"odin nodes add did not finish in {timeout_s} s") from None
        if added.returncode != 0:
            raise BenchError(f"odin nodes add failed: {(added.stderr or added.stdout).strip()}")
        node.wait_ready(timeout=max(60.0, timeout_s))
    wait_for(lambda: _all_see(started, count), 60, f"{count} nodes to see each other")


def _addresses(node: Engine) -> list[str]:
    return ["-a", f"127.0.0.1:{node.http_port}", "-r", f"127.0.0.1:{node.raft_port}"]


def _all_see(nodes: Sequence[Engine], count: int) -> bool:
    try:
        return all(len(n.client(5).request("GET", "/v1/nodes")) >= count for n in nodes)
    except OdinError:
        return False


def leader_of(nodes: Sequence[Engine]) -> Engine | None:
    """The live engine that says it leads (None if none does right now)."""
    for node in nodes:
        if node.proc is None:
            continue
        try:
            members = node.client(2).request("GET", "/v1/nodes")
        except OdinError:
            continue
        for member in members:
            if member.get("name") == node.name and member.get("role") == "leader":
                return node
    return None


# -- jobs ---------------------------------------------------------------------


def job_id(group: int, index: int) -> str:
    """A valid, deterministic 12-hex-digit job id: 2 digits of group, 10 of index."""
    return f"{group:02x}{index:010x}"


def job_yaml(jid: str, name: str, schedule: str, language: str = "python", extra: str = "") -> str:
    ext = {"python": "py", "go": "go", "node": "js"}[language]
    return (
        "provider:\n  name: odin\n  version: 1.0.0\njob:\n"
        f'  id: "{jid}"\n  name: "{name}"\n  description: "bench job"\n'
        f'  language: {language}\n  file: {name}.{ext}\n  schedule: "{schedule}"\n'
        "  overlap: allow\n" + extra
    )


@dataclass(frozen=True)
class JobDef:
    jid: str
    name: str
    schedule: str
    code: str
    language: str = "python"
    extra: str = ""

    def body(self) -> dict[str, str]:
        text = job_yaml(self.jid, self.name, self.schedule, self.language, self.extra)
        return {"yaml": text, "code": self.code}


def deploy(engine: Engine, jobs: Sequence[JobDef], threads: int = DEPLOY_THREADS) -> float:
    """Deploy ``jobs`` through the API, ``threads`` at a time; returns jobs per second."""
    if not jobs:
        return 0.0
    client = engine.client()
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda job: client.request("POST", "/v1/jobs", job.body()), jobs))
    return len(jobs) / (time.perf_counter() - began)


def remove(engine: Engine, jids: Sequence[str], threads: int = DEPLOY_THREADS) -> None:
    client = engine.client(timeout=READ_TIMEOUT_S)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda jid: client.request("DELETE", f"/v1/jobs/{jid}"), jids))


def runs_of(engine: Engine, jid: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = engine.client(timeout=READ_TIMEOUT_S).request(
        "GET", f"/v1/jobs/{jid}/runs", query={"limit": 1000}
    )
    return runs


def odin_cli(engine: Engine, *args: str) -> float:
    """Wall time in seconds of one real ``odin`` CLI command against ``engine``."""
    env = {"PATH": "/usr/bin:/bin", "ODIN_SOCKET": str(engine.socket), "LANG": "C.UTF-8"}
    began = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "odin"), *args], capture_output=True, env=env, timeout=300, check=False
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise BenchError(f"odin {' '.join(args)} failed: {done.stderr.decode()[-500:]}")
    return elapsed
