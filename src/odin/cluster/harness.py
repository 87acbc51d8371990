"""A cluster test harness as library code: real Raft node processes on loopback.

Each node is ``python -m odin.cluster.harness --addr ... --data-dir ...``: a
``ReplicatedLog`` over ``ListMachine`` (an append-only list of committed
commands), driven through a line protocol on its stdin/stdout. One request per
line, ``{"id": 1, "op": "propose", "cmd": "x"}``; one answer per line,
``{"id": 1, "ok": true, "value": ...}`` or ``{"id": 1, "ok": false, "error":
"Unavailable", "message": "..."}``. Requests are served concurrently, so a
proposal that waits for a quorum does not block a status query.

``Cluster`` starts N such processes on free ports, SIGKILLs and restarts them,
and waits on conditions with deadlines (``wait_for``), never fixed sleeps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TypeVar

from odin.cluster.raft import RaftTuning, ReplicatedLog
from odin.errors import ERROR_TYPES, Conflict, OdinError, Unavailable

_T = TypeVar("_T")
_POLL_S = 0.01
_CALL_TIMEOUT_S = 15.0
_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 5.0
_SERVE_THREADS = 8
_SNAPSHOT_VERSION = 1


class ListMachine:
    """The harness's state machine: the committed commands, in order.

    ``apply`` returns the new length. A command ``fail:...`` raises ValueError and
    ``conflict:...`` raises ``Conflict``, both changing nothing (so tests can see
    that a raising apply leaves the node alive and the proposer informed).
    """

    def __init__(self, dump_gate: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._items: list[str] = []
        self.applied = 0  # apply calls in this process lifetime
        self.restores = 0
        self._dump_gate = dump_gate
        self._pid = os.getpid()

    def apply(self, command: bytes) -> int:
        text = command.decode()
        if text.startswith("fail:"):
            raise ValueError(f"refused {text!r}")
        if text.startswith("conflict:"):
            raise Conflict(f"refused {text!r}")
        with self._lock:
            self._items.append(text)
            self.applied += 1
            return len(self._items)

    def snapshot(self) -> bytes:
        # In a forked child (see ReplicatedLog): no lock, the raft thread alone appends.
        if self._dump_gate is not None:
            self._wait_at_gate(self._dump_gate)
        return json.dumps({"v": _SNAPSHOT_VERSION, "items": self._items}).encode()

    def _wait_at_gate(self, gate: Path) -> None:
        """For tests: say ``started.<pid>`` (and add ``<pid> <time>`` to ``attempts``), wait for
        ``release``; then raise if ``fail-all`` is there, or ``fail`` in a child."""
        (gate / f"started.{os.getpid()}").touch()
        with (gate / "attempts").open("a") as attempts:
            attempts.write(f"{os.getpid()} {time.time()!r}\n")
        while not (gate / "release").exists():
            time.sleep(0.01)
        if (gate / "fail-all").exists():
            raise RuntimeError("told to fail")
        if (gate / "fail").exists() and os.getpid() != self._pid:
            raise RuntimeError("told to fail in a child")

    def restore(self, data: bytes) -> None:
        loaded = json.loads(data)
        if loaded.get("v") != _SNAPSHOT_VERSION:
            raise ValueError(f"unknown snapshot version {loaded.get('v')!r}")
        with self._lock:
            self._items = list(loaded["items"])
            self.restores += 1

    def items(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def view(self) -> dict[str, object]:
        with self._lock:
            return {"items": list(self._items), "applied": self.applied, "restores": self.restores}


# -- the node process ---------------------------------------------------------------


class _NodeServer:
    """Serves the line protocol for one ``ReplicatedLog`` over ``ListMachine``."""

    def __init__(self, log: ReplicatedLog, machine: ListMachine, out: IO[str]) -> None:
        self._log = log
        self._machine = machine
        self._out = out
        self._out_lock = threading.Lock()
        self._ops: dict[str, Callable[[dict[str, Any]], object]] = {
            "ping": lambda _: log.self_addr(),
            "propose": self._propose,
            "bench": self._bench,
            "state": lambda _: machine.view(),
            "status": lambda _: log.status(),
            "leader": lambda _: {"leader": log.leader(), "is_leader": log.is_leader()},
            "members": lambda _: log.members(),
            "add": lambda r: log.add_member(r["addr"]),
            "remove": lambda r: log.remove_member(r["addr"]),
            "ready": lambda r: log.wait_ready(float(r.get("wait", 0.0))),
            "compact": lambda _: log.compact(),
            "stall": lambda r: log.between_ticks(lambda: time.sleep(float(r["seconds"]))),
        }

    def serve(self, lines: IO[str]) -> None:
        with ThreadPoolExecutor(_SERVE_THREADS) as pool:
            for line in lines:
                if line.strip():
                    pool.submit(self._answer, json.loads(line))

    def _answer(self, request: dict[str, Any]) -> None:
        reply: dict[str, object] = {"id": request.get("id")}
        try:
            reply |= {"ok": True, "value": self._ops[request["op"]](request)}
        except OdinError as exc:
            reply |= {"ok": False, "error": type(exc).__name__, "message": exc.message}
        except Exception as exc:
            reply |= {"ok": False, "error": "OdinError", "message": f"{type(exc).__name__}: {exc}"}
        with self._out_lock:
            self._out.write(json.dumps(reply) + "\n")
            self._out.flush()

    def _propose(self, request: dict[str, Any]) -> object:
        command = str(request["cmd"]).encode()
        timeout = float(request.get("wait", 5.0))
        if request.get("async"):
            return asyncio.run(self._log.propose_async(command, timeout))
        return self._log.propose(command, timeout)

    def _bench(self, request: dict[str, Any]) -> list[float]:
        """Propose ``n`` commands one after the other; the latency of each, in ms."""
        latencies = []
        for i in range(int(request["n"])):
            started = time.perf_counter()
            self._log.propose(f"{request['prefix']}{i}".encode())
            latencies.append((time.perf_counter() - started) * 1000.0)
        return latencies


def main(argv: list[str] | None = None) -> None:
    """Run one harness node until stdin closes (then stop cleanly) or SIGKILL."""
    parser = argparse.ArgumentParser(prog="python -m odin.cluster.harness")
    parser.add_argument("--addr", required=True)
    parser.add_argument("--partners", default="")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--secret-file", required=True, type=Path)
    parser.add_argument("--tuning", default="{}")
    parser.add_argument("--dump-gate", type=Path, help="see ListMachine._wait_at_gate")
    args = parser.parse_args(argv)
    machine = ListMachine(args.dump_gate)
    log = ReplicatedLog(
        self_addr=args.addr,
        partners=[p for p in args.partners.split(",") if p],
        data_dir=args.data_dir,
        secret=args.secret_file.read_text().strip(),
        apply=machine.apply,
        snapshot=machine.snapshot,
        restore=machine.restore,
        tuning=RaftTuning(**json.loads(args.tuning)),
    )
    log.start()
    try:
        _NodeServer(log, machine, sys.stdout).serve(sys.stdin)
    finally:
        log.stop()


# -- the test side --------------------------------------------------------------------


def wait_for(check: Callable[[], _T | None], timeout: float, what: str) -> _T:
    """Poll ``check`` until it returns something truthy; an error names ``what``.

    ``check`` may raise ``OdinError`` (a node not answering yet): that counts as
    not yet.
    """
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            value = check()
            if value:
                return value
        except OdinError as exc:
            last_error = f" (last error: {exc})"
        if time.monotonic() >= deadline:
            raise Unavailable(f"timed out after {timeout:g} s waiting for {what}{last_error}")
        time.sleep(_POLL_S)


def running(pid: int) -> bool:
    """``pid`` exists and is not a zombie (an orphan's zombie may wait long for init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def free_ports(count: int) -> list[int]:
    """Ports free on loopback right now (held together so that they differ)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


class NodeProcess:
    """One harness node process: start, SIGKILL, restart, and call it."""

    def __init__(
        self,
        addr: str,
        partners: list[str],
        data_dir: Path,
        secret_file: Path,
        tuning: RaftTuning | None = None,
        dump_gate: Path | None = None,
    ) -> None:
        self.addr = addr
        self.partners = partners
        self.data_dir = data_dir
        self.secret_file = secret_file
        self.tuning = tuning or RaftTuning()
        self.dump_gate = dump_gate
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = _START_TIMEOUT_S) -> None:
        """Spawn the node and return once its raft port is bound and it answers."""
        if self.alive:
            raise Conflict(f"node {self.addr} is already running")
        self._join_reader()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "node.log").open("a") as log:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self._reader = threading.Thread(target=self._read, args=(self._proc,), daemon=True)
        self._reader.start()
        self.call("ping", timeout=timeout)

    def _command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "odin.cluster.harness",
            f"--addr={self.addr}",
            f"--partners={','.join(self.partners)}",
            f"--data-dir={self.data_dir}",
            f"--secret-file={self.secret_file}",
            f"--tuning={json.dumps(dataclasses.asdict(self.tuning))}",
            *([f"--dump-gate={self.dump_gate}"] if self.dump_gate else []),
        ]

    def kill(self) -> None:
        """SIGKILL the node and reap it."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        self._join_reader()

    def _join_reader(self) -> None:
        """Let the reader of the old process fail its calls before a new process starts."""
        if self._reader is not None:
            self._reader.join()
            self._reader = None

    def stop(self) -> None:
        """Close stdin (the node stops cleanly); SIGKILL if it does not exit in time."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
        self._join_reader()

    def call(self, op: str, timeout: float = _CALL_TIMEOUT_S, **args: object) -> Any:
        """Send one request and wait for its answer; errors come back as Odin errors."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise Unavailable(f"node {self.addr} is not running")
        request_id = next(self._ids)
        future: Future[dict[str, Any]] = Future()
        with self._pending_lock:
            self._pending[request_id] = future
        try:
            with self._write_lock:
                proc.stdin.write(json.dumps({"id": request_id, "op": op, **args}) + "\n")
                proc.stdin.flush()
            reply = future.result(timeout)
        except (OSError, TimeoutError) as exc:
            raise Unavailable(f"node {self.addr} did not answer {op!r}: {exc!r}") from exc
        finally:
            with self._pending_lock:
                self._pending.pop(request_id, None)
        if not reply["ok"]:
            raise ERROR_TYPES.get(reply["error"], OdinError)(reply["message"])
        return reply["value"]

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            reply = json.loads(line)
            with self._pending_lock:
                future = self._pending.get(reply["id"])
            if future is not None:
                future.set_result(reply)
        error = Unavailable(f"node {self.addr} exited; its log ends:\n{self.log_tail()}")
        with self._pending_lock:
            for future in self._pending.values():
                if not future.done():  # answered, its caller not yet back to collect it
                    future.set_exception(error)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the node's stderr log (for failure messages)."""
        path = self.data_dir / "node.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # Shorthands for tests.

    def propose(self, cmd: str, timeout: float = 5.0, *, use_async: bool = False) -> Any:
        extra: dict[str, object] = {"cmd": cmd, "wait": timeout, "async": use_async}
        return self.call("propose", timeout=timeout + _CALL_TIMEOUT_S, **extra)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """True once the node replayed its log and knows a leader (see ReplicatedLog)."""
        return bool(self.call("ready", timeout=timeout + _CALL_TIMEOUT_S, wait=timeout))

    def items(self) -> list[str]:
        return list(self.call("state")["items"])

    def leader(self) -> str | None:
        value: str | None = self.call("leader")["leader"]
        return value

    def is_leader(self) -> bool:
        return bool(self.call("leader")["is_leader"])

    def status(self) -> dict[str, Any]:
        value: dict[str, Any] = self.call("status")
        return value


class Cluster:
    """N harness nodes on loopback sharing one secret; a context manager."""

    def __init__(
        self,
        root: Path,
        size: int,
        *,
        secret: str = "harness-secret",
        tuning: RaftTuning | None = None,
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.secret_file = self.write_secret("secret", secret)
        self.tuning = tuning
        addrs = [f"127.0.0.1:{port}" for port in free_ports(size)]
        self.nodes = [
            NodeProcess(
                addr, [a for a in addrs if a != addr], root / f"node{i}", self.secret_file, tuning
            )
            for i, addr in enumerate(addrs)
        ]

    def write_secret(self, name: str, secret: str) -> Path:
        path = self.root / name
        path.touch(mode=0o600)
        path.write_text(secret)
        return path

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def live(self) -> list[NodeProcess]:
        return [node for node in self.nodes if node.alive]

    def by_addr(self, addr: str) -> NodeProcess:
        return next(node for node in self.nodes if node.addr == addr)

    def agreed_leader(self) -> NodeProcess | None:
        """The leader every live node names, if that node says it leads; else None."""
        named = {node.leader() for node in self.live()}
        if len(named) != 1 or None in named:
            return None
        leader = self.by_addr(str(named.pop()))
        return leader if leader.alive and leader.is_leader() else None

    def wait_leader(self, timeout: float = 10.0) -> NodeProcess:
        return wait_for(self.agreed_leader, timeout, "a leader all live nodes agree on")

    def wait_converged(self, timeout: float = 10.0, count: int | None = None) -> list[str]:
        """Wait until every live node holds the same items (``count`` of them if given)."""

        def same() -> tuple[list[str]] | None:
            views = [node.items() for node in self.live()]
            if any(v != views[0] for v in views) or (count is not None and len(views[0]) != count):
                return None
            return (views[0],)

        return wait_for(same, timeout, "all live nodes to hold the same commands")[0]

    @contextlib.contextmanager
    def extra_node(self, partners: list[str], index: int | None = None) -> Iterator[NodeProcess]:
        """A node outside the initial configuration (for membership changes)."""
        number = len(self.nodes) if index is None else index
        addr = f"127.0.0.1:{free_ports(1)[0]}"
        node = NodeProcess(
            addr, partners, self.root / f"node{number}", self.secret_file, self.tuning
        )
        try:
            yield node
        finally:
            node.stop()


if __name__ == "__main__":
    main()
