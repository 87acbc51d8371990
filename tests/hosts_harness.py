"""Several hosts on one machine: each Odin node in a Linux network namespace of its own.

Node ``nK`` lives in the namespace ``<prefix>-nK`` with the address ``<subnet>.(10+K)``,
joined to the others by a veth pair whose root end is a port of the harness's bridge; the
bridge has no address, so nothing but the nodes themselves can be reached from inside and
no route is added outside. Each engine enters only the network namespace (``nsenter
--net``: ``ip netns exec`` would remount /sys and hide the cgroup tree), keeps its own data
directory and serves its own Unix socket, which the CLI reaches from the root namespace.
The cluster is formed as docs/cluster.md tells an operator to do it on several hosts.

Everything made here (engines and whatever runs in their namespaces, namespaces, veths,
bridge) is removed on leaving ``host_cluster``, on SIGTERM and at exit; what a harness
killed with SIGKILL left behind is removed by the next one (see ``sweep_stale``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine_harness import BIN, Engine, Result, odin, wait_for

HTTP_PORT = 3939
RAFT_PORT = 12000
SUBNET = "10.231.7"  # a private /24 that exists only on the harness's own bridge
NETNS_DIR = Path("/run/netns")
STATE_DIR = Path("/run/odin-test-hosts")  # one file per live harness: what to remove if it dies
CLI_TIMEOUT_S = 5.0  # a frozen node's socket accepts and never answers
START_TIMEOUT_S = 60.0
GONE_TIMEOUT_S = 10.0


# -- tools ------------------------------------------------------------------------


def tool(name: str) -> str | None:
    """The path of a system tool, looking in the sbin folders too (root's PATH may lack them)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    return shutil.which(name, path=path)


def why_not() -> str | None:
    """Why this machine cannot host the namespaces (None when it can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, engines, jobs as other users)"
    missing = [name for name in ("ip", "nsenter", "runuser") if tool(name) is None]
    if missing:
        return f"needs {', '.join(missing)} (Debian packages iproute2 and util-linux)"
    return None


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a system tool by name, failing loudly (with its stderr) when ``check`` says so."""
    command = [tool(argv[0]) or argv[0], *argv[1:]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return done


def inside(netns: str, *argv: str) -> list[str]:
    """The command line that runs ``argv`` in the network namespace ``netns`` only."""
    return [tool("nsenter") or "nsenter", f"--net={NETNS_DIR / netns}", "--", *argv]


def no_ipv6(interface: str, netns: str | None = None) -> None:
    """Turn IPv6 off on an interface, so that the bridge carries only the nodes' IPv4."""
    path = f"/proc/sys/net/ipv6/conf/{interface}/disable_ipv6"
    if netns is None:
        with contextlib.suppress(OSError):
            Path(path).write_text("1")
        return
    subprocess.run(inside(netns, "sh", "-c", f"test -e {path} && echo 1 > {path}"), check=False)


# -- processes --------------------------------------------------------------------


def start_time(pid: int) -> str | None:
    """The start time of ``pid`` (field 22 of its stat), which tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def netns_id(path: Path) -> tuple[int, int] | None:
    """The identity (device, inode) of a network namespace, from its file or a process's link."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def pids_in(namespaces: list[str]) -> list[int]:
    """Every live process in one of the named network namespaces (engines and their runs)."""
    wanted = {netns_id(NETNS_DIR / name) for name in namespaces} - {None}
    if not wanted:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and netns_id(entry / "ns" / "net") in wanted:
            found.append(int(entry.name))
    return found


def kill_all_in(namespaces: list[str]) -> list[int]:
    """SIGKILL every process in those namespaces until none is left; the ones that stayed."""
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while (left := pids_in(namespaces)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    return left


def end_cgroups_of(pids: list[int]) -> None:
    """Remove the run cgroups that the dead engines ``pids`` left (their runs are dead too)."""
    try:
        from odin.executor.cgroup import end_runs_of
    except ImportError:
        return
    for pid in pids:
        with contextlib.suppress(OSError):
            end_runs_of(pid)


# -- the network ------------------------------------------------------------------


@dataclass(frozen=True)
class Network:
    """A bridge in the root namespace and, per host, a namespace linked to it by a veth pair."""

    prefix: str
    size: int
    subnet: str = SUBNET

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    def netns(self, index: int) -> str:
        """The network namespace of host ``index``."""
        return f"{self.prefix}-n{index}"

    def veth(self, index: int) -> str:
        """The root end of host ``index``'s link: down means the host is cut off."""
        return f"{self.prefix}v{index}"

    def peer(self, index: int) -> str:
        """The namespace end of host ``index``'s link, which holds its address."""
        return f"{self.prefix}p{index}"

    def address(self, index: int) -> str:
        """Host ``index``'s IPv4 address on the bridge."""
        return f"{self.subnet}.{10 + index}"

    def namespaces(self) -> list[str]:
        """Every host's namespace name."""
        return [self.netns(i) for i in range(1, self.size + 1)]

    def links(self) -> list[str]:
        """The root-namespace links this network makes: the bridge and the veths' root ends."""
        return [self.bridge] + [self.veth(i) for i in range(1, self.size + 1)]

    def create(self) -> None:
        """Make the bridge and every host's namespace, link and address."""
        run("ip", "link", "add", self.bridge, "type", "bridge")
        no_ipv6(self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for index in range(1, self.size + 1):
            self._add_host(index)

    def _add_host(self, index: int) -> None:
        netns, veth, peer = self.netns(index), self.veth(index), self.peer(index)
        run("ip", "netns", "add", netns)
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
        no_ipv6(veth)
        run("ip", "link", "set", peer, "netns", netns)
        run("ip", "link", "set", veth, "master", self.bridge)
        run("ip", "link", "set", veth, "up")
        for name in ("all", "default", peer):
            no_ipv6(name, netns)
        for step in (
            ("link", "set", "lo", "up"),
            ("addr", "add", f"{self.address(index)}/24", "dev", peer),
            ("link", "set", peer, "up"),
        ):
            run(*inside(netns, tool("ip") or "ip", *step))

    def set_link(self, index: int, up: bool) -> None:
        """Bring host ``index``'s root-side link up or down (down: it reaches no other host)."""
        run("ip", "link", "set", self.veth(index), "up" if up else "down")

    def leftovers(self) -> list[str]:
        """The namespaces and links of this network that still exist."""
        netns = run("ip", "netns", "list", check=False).stdout.split()
        links = run("ip", "-o", "link", "show", check=False).stdout
        names = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()}
        return [n for n in self.namespaces() if n in netns] + [
            n for n in self.links() if n in names
        ]

    def destroy(self) -> list[str]:
        """Delete the links, namespaces and bridge (whatever of them exists); what stayed."""
        for index in range(1, self.size + 1):
            run("ip", "link", "del", self.veth(index), check=False)
            run("ip", "netns", "del", self.netns(index), check=False)
        run("ip", "link", "del", self.bridge, check=False)
        deadline = time.monotonic() + GONE_TIMEOUT_S  # a namespace's links go asynchronously
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left


# -- what a dead harness left -----------------------------------------------------


def state_path(prefix: str) -> Path:
    """Where the owner of the network ``prefix`` is noted."""
    return STATE_DIR / f"{prefix}.json"


def record_owner(network: Network) -> None:
    """Note that this process owns ``network``, so that a later harness can remove it."""
    STATE_DIR.mkdir(mode=0o700, exist_ok=True)
    owner = {"pid": os.getpid(), "start": start_time(os.getpid())}
    state = {**owner, "size": network.size, "subnet": network.subnet}
    state_path(network.prefix).write_text(json.dumps(state))


def sweep_stale() -> None:
    """Remove the networks, and whatever runs in them, of harnesses whose process is gone."""
    if not STATE_DIR.is_dir():
        return
    for path in STATE_DIR.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            state = json.loads(path.read_text())
            if start_time(int(state["pid"])) == state["start"]:
                continue  # its owner still runs
            network = Network(path.stem, int(state["size"]), str(state["subnet"]))
            kill_all_in(network.namespaces())
            network.destroy()
            path.unlink()


# -- the nodes --------------------------------------------------------------------


@dataclass
class Node:
    """One host: its engine's name, addresses, folders and process, and what was done to it."""

    name: str
    index: int
    address: str
    netns: str
    root: Path
    argv: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    frozen: bool = False
    cut: bool = False

    @property
    def http(self) -> str:
        return f"{self.address}:{HTTP_PORT}"

    @property
    def raft(self) -> str:
        return f"{self.address}:{RAFT_PORT}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket(self) -> Path:
        return self.root / "odin.sock"

    @property
    def log_path(self) -> Path:
        return self.root / "engine.log"

    def handle(self) -> Engine:
        """What ``engine_harness.odin`` needs to reach this node: its socket (under ``root``)."""
        return Engine(root=self.root, http_port=HTTP_PORT, raft_port=RAFT_PORT)

    def command(self, join: list[str]) -> list[str]:
        """The engine's command line, entering this host's network namespace only."""
        engine = [
            str(BIN / "odin-engine"),
            *("--name", self.name, "--http", self.http, "--raft", self.raft),
            *("--data-dir", str(self.data_dir), "--socket", str(self.socket)),
            *("--log-level", "warning", "--no-dashboard"),
        ]
        for partner in join:
            engine += ["--join", partner]
        return inside(self.netns, *engine)

    def log_tail(self) -> str:
        """The end of the engine's log, for failure messages."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-3000:]
        return "(no log)"


def copy_secret(source: Path, target_dir: Path) -> None:
    """Copy the cluster secret into a new node's data directory, readable by root only."""
    target_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = target_dir / "cluster.secret"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(source.read_bytes())


class HostCluster:
    """A cluster of ``size`` nodes, one per network namespace, and the faults one can apply."""

    def __init__(self, base: Path, size: int = 3, prefix: str | None = None) -> None:
        self.base = base
        self.net = Network(prefix or f"oh{secrets.token_hex(3)}", size)
        self.nodes = {
            f"n{i}": Node(f"n{i}", i, self.net.address(i), self.net.netns(i), base / f"n{i}")
            for i in range(1, size + 1)
        }
        self.started: list[int] = []  # every engine pid, for the final check
        self.closed = False

    # -- set up and tear down ------------------------------------------------------

    def open(self) -> HostCluster:
        """Make the network and form the cluster as an operator would on several hosts."""
        sweep_stale()
        record_owner(self.net)
        atexit.register(self.close)
        self.net.create()
        self.form()
        return self

    def form(self) -> None:
        """Start n1 alone; give each next node the secret, start it joining every member, add it."""
        first, *others = self.nodes.values()
        self._start(first, join=[])
        self.wait_answers(first.name)
        members = [first]
        for node in others:
            copy_secret(first.data_dir / "cluster.secret", node.data_dir)
            self._start(node, join=[m.raft for m in members])
            odin(
                *("nodes", "add", "-n", node.name, "-a", node.http, "-r", node.raft),
                engine=first.handle(),
                timeout=120,
            )
            self.wait_answers(node.name)
            members.append(node)

    def close(self) -> list[str]:
        """Stop every engine and remove the network; what could not be cleaned (also printed)."""
        if self.closed:
            return []
        self.closed = True
        problems = self.stop_all()
        left = self.net.destroy()
        problems += [f"left over after cleanup: {name}" for name in left]
        if not left:
            with contextlib.suppress(OSError):
                state_path(self.net.prefix).unlink()
        atexit.unregister(self.close)
        for problem in problems:
            print(f"hosts_harness: {problem}", file=sys.stderr)
        return problems

    def stop_all(self) -> list[str]:
        """SIGKILL every engine's process group, then whatever else runs in the namespaces."""
        for node in self.nodes.values():
            self._kill(node)
        stayed = kill_all_in(self.net.namespaces())
        end_cgroups_of(self.started)
        alive = [pid for pid in self.started if self._is_our_engine(pid)]
        return [f"process {pid} survived" for pid in sorted(set(stayed + alive))]

    def _is_our_engine(self, pid: int) -> bool:
        """Whether ``pid`` is alive and an engine of this cluster (a reused pid is not)."""
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"odin-engine" in argv and str(self.base).encode() in argv

    # -- the engines --------------------------------------------------------------

    def _start(self, node: Node, join: list[str]) -> None:
        """Start the node's engine (the command line is fixed at its first start)."""
        if not node.argv:
            node.root.mkdir(mode=0o755, parents=True, exist_ok=True)
            node.argv = node.command(join)
        with open(node.log_path, "ab") as log:
            node.proc = subprocess.Popen(
                node.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, killed whole
            )
        self.started.append(node.proc.pid)

    def _kill(self, node: Node) -> None:
        """SIGKILL the node's process group and reap the engine."""
        if node.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.proc.pid, signal.SIGKILL)
        node.proc.wait(timeout=30)
        node.proc, node.frozen = None, False

    def _signal(self, name: str, sig: signal.Signals) -> None:
        """Send ``sig`` to the node's engine and its process group."""
        proc = self.nodes[name].proc
        assert proc is not None, f"{name} is not running"
        os.killpg(proc.pid, sig)

    def kill(self, name: str) -> None:
        """SIGKILL the node's engine (its whole process group)."""
        self._kill(self.nodes[name])

    def kill_all(self) -> None:
        """SIGKILL every engine, one right after the other."""
        for node in self.nodes.values():
            if node.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.proc.pid, signal.SIGKILL)
        for node in self.nodes.values():
            self._kill(node)

    def restart(self, name: str, wait: bool = True) -> None:
        """Start the node's engine again with the same command line."""
        node = self.nodes[name]
        assert node.proc is None, f"{name} is still running"
        self._start(node, join=[])
        if wait:
            self.wait_answers(name)

    def restart_all(self) -> None:
        """Start every stopped engine at once, then wait until each answers."""
        stopped = [n.name for n in self.nodes.values() if n.proc is None]
        for name in stopped:
            self.restart(name, wait=False)
        for name in stopped:
            self.wait_answers(name, timeout=90)

    def freeze(self, name: str) -> None:
        """SIGSTOP the node's engine: it holds its connections and answers nothing."""
        self._signal(name, signal.SIGSTOP)
        self.nodes[name].frozen = True

    def thaw(self, name: str) -> None:
        """SIGCONT the node's engine."""
        self._signal(name, signal.SIGCONT)
        self.nodes[name].frozen = False

    def cut(self, name: str) -> None:
        """Take the node's link down: it can reach no other node, nor they it."""
        self.net.set_link(self.nodes[name].index, up=False)
        self.nodes[name].cut = True

    def heal(self, name: str) -> None:
        """Bring the node's link up again."""
        self.net.set_link(self.nodes[name].index, up=True)
        self.nodes[name].cut = False

    # -- asking the nodes ---------------------------------------------------------

    def cli(
        self, name: str, *args: str, user: str | None = None, timeout: float = CLI_TIMEOUT_S
    ) -> Result | None:
        """Run ``odin ARGS`` against node ``name``'s socket; None when it did not answer in time."""
        try:
            return odin(
                *args, engine=self.nodes[name].handle(), user=user, check=False, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return None

    def answers(self, name: str) -> bool:
        """Whether the node serves its socket (failing at once if its engine exited)."""
        node = self.nodes[name]
        if node.proc is not None and node.proc.poll() is not None:
            raise AssertionError(f"engine {name} exited: {node.log_tail()}")
        result = self.cli(name, "list", "-o", "json")
        return result is not None and result.returncode == 0

    def wait_answers(self, name: str, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until the node answers; on timeout, fail with the end of its log."""
        try:
            wait_for(lambda: self.answers(name), timeout=timeout, interval=0.2, what=name)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{name}'s log:\n{self.nodes[name].log_tail()}") from None

    def view(self, name: str) -> list[dict[str, Any]] | None:
        """``odin nodes get -o json`` as node ``name`` sees the cluster (None: no answer)."""
        result = self.cli(name, "nodes", "get", "-o", "json")
        if result is None or result.returncode != 0:
            return None
        rows: list[dict[str, Any]] = result.json()
        return rows

    def reachable(self) -> list[str]:
        """The nodes running, not frozen and not cut off (the ones to ask first)."""
        return [n.name for n in self.nodes.values() if n.proc and not n.frozen and not n.cut]

    def leader(self) -> str | None:
        """The leader, as the first reachable node that answers and knows one tells (a node
        dead, frozen or cut off that some node still calls leader does not count)."""
        reachable = self.reachable()
        for name in reachable:
            rows = self.view(name) or []
            leaders = [r["name"] for r in rows if r["role"] == "leader"]
            if leaders and leaders[0] in reachable:
                return str(leaders[0])
        return None

    def wait_leader(self, timeout: float = 30.0) -> str:
        """The leader, once there is one."""
        found = wait_for(self.leader, timeout=timeout, interval=0.2, what="a leader")
        assert found is not None
        return found

    def healthy(self) -> bool:
        """Whether the leader sees every node healthy, itself the one leader."""
        name = self.leader()
        rows = self.view(name) if name else None
        return (
            rows is not None
            and len(rows) == len(self.nodes)
            and all(r["status"] == "healthy" for r in rows)
            and [r["role"] for r in rows].count("leader") == 1
        )


# -- the fixture's body -----------------------------------------------------------


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises SystemExit, so that cleanups run (not at a plain exit)."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def leave(signum: int, frame: object) -> None:
        """Unwind the stack, so that every ``finally`` runs."""
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def host_cluster(base: Path, size: int = 3) -> Iterator[HostCluster]:
    """A formed cluster of ``size`` hosts, removed whole on the way out (skips if impossible)."""
    reason = why_not()
    if reason is not None:
        pytest.skip(reason)
    cluster = HostCluster(base, size)
    with sigterm_raises():
        try:
            yield cluster.open()
        finally:
            problems = cluster.close()
    assert not problems, f"cleanup left: {problems}"
