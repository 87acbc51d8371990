"""Adding and removing cluster nodes (``odin nodes add/remove``), and listing them.

Adding a node on this host (``-a :PORT``) starts a new ``odin-engine`` with the
cluster secret, every member as a partner and its own data directory, then
commits the membership change; adding a node on another host only commits the
change (that engine was started there with ``--join``). Only root, or the
engine's own user for a private engine, may change membership.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from odin import config, paths
from odin.cluster import commands as c
from odin.cluster import lease
from odin.cluster.model import NodeInfo, RunStatus
from odin.engine.admission import backlog
from odin.engine.cluster import Membership
from odin.engine.identity import Caller
from odin.engine.node import EngineNode
from odin.engine.views import NodeAdded, NodeRemoved, NodeRow
from odin.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unavailable


@dataclass(frozen=True)
class NodeRequest:
    name: str
    http: str
    raft: str


@dataclass(frozen=True)
class SpawnPlan:
    data_dir: Path
    socket: Path
    log: Path


class NodeAdmin:
    def __init__(
        self,
        node: EngineNode,
        membership: Membership,
        *,
        data_dir: Path,
        socket_path: Path,
        stopping: asyncio.Event,
        inherited: tuple[str, ...] = (),
    ) -> None:
        self.inherited = inherited  # flags a node started here gets too (alert settings...)
        self.node = node
        self.membership = membership
        self.data_dir = data_dir
        self.socket_path = socket_path
        self.stopping = stopping
        self._counted: tuple[float, Counter[str], dict[str, tuple[int, float]]] | None = None

    # -- reading --------------------------------------------------------------

    def _counts(self) -> tuple[Counter[str], dict[str, tuple[int, float]]]:
        """Each node's running runs and launch backlog, counted over every active run at most
        once per ``NODE_ROWS_FRESH_S``: a node far behind has a hundred thousand, and
        ``odin nodes get``, the dashboard and /metrics may all ask every second."""
        now = time.monotonic()
        if self._counted is not None and now - self._counted[0] < config.NODE_ROWS_FRESH_S:
            return self._counted[1], self._counted[2]
        active = self.node.active_runs()
        running = Counter(run.node for run in active if run.status is RunStatus.RUNNING)
        queues = backlog(active, time.time())
        self._counted = (now, running, queues)
        return running, queues

    def rows(self) -> list[NodeRow]:
        leader = self.node.log.leader()
        running, queues = self._counts()
        rows = []
        for member in self.membership.members():
            health = self.membership.health(member.name)
            row = NodeRow(
                name=member.name,
                http=member.http,
                raft=member.raft,
                role="leader" if member.raft == leader else "follower",
                status="healthy" if health.healthy else "unreachable",
                running=running[member.name],
                last_seen=health.last_seen,
                lease=self._lease(member.name),
                self=member.name == self.membership.me.name,
                waiting=queues.get(member.name, (0, 0.0))[0],
                behind=round(queues.get(member.name, (0, 0.0))[1], 3),
            )
            rows.append(row)
        return rows

    def _lease(self, name: str) -> lease.LeaseState:
        """A node's start lease (``odin.cluster.lease``) as this node knows it: its own for
        sure; another's only as a leader sees it (followers hear from the leader alone)."""
        if name == self.membership.me.name:
            return lease.LeaseState.HELD if self.node.holds_lease() else lease.LeaseState.LOST
        if not self.node.is_leader():
            return lease.LeaseState.UNKNOWN
        return lease.state_of(self.membership.silence(name))

    # -- changing membership --------------------------------------------------

    def _authorise(self, caller: Caller) -> None:
        if not (caller.is_root or caller.uid == os.geteuid()):
            raise PermissionDenied("only root may change the cluster's members")

    def _check_new(self, request: NodeRequest) -> NodeInfo:
        if (
            not request.name
            or len(request.name) > 64
            or not request.name.replace("-", "").replace("_", "").isalnum()
        ):
            raise InvalidInput("a node name is 1-64 letters, digits, '-' or '_'")
        for member in self.membership.members():
            if member.name == request.name:
                raise Conflict(f"a node named {request.name} is already a member")
            if request.raft in (member.raft,) or request.http == member.http:
                raise Conflict(f"node {member.name} already uses {request.http} or {request.raft}")
        return NodeInfo(request.name, request.http, request.raft, time.time())

    async def add(self, caller: Caller, request: NodeRequest, *, spawn: bool) -> NodeAdded:
        self._authorise(caller)
        info = self._check_new(request)
        partners = [m.raft for m in self.membership.members()]
        if spawn:
            await asyncio.to_thread(self._spawn, info, partners)
        await self.node.propose(c.AddNode(info))
        await asyncio.to_thread(self.node.log.add_member, info.raft, config.NODE_JOIN_TIMEOUT_S)
        await self._wait_caught_up(info)
        await asyncio.to_thread(self.membership.refresh, time.time())
        return NodeAdded(node=info, started=spawn)

    def _spawn_plan(self, info: NodeInfo) -> SpawnPlan:
        data_dir = self.data_dir / "nodes" / info.name
        port = int(info.http.rpartition(":")[2])
        return SpawnPlan(
            data_dir, self.socket_path.parent / f"odin-{port}.sock", data_dir / "engine.log"
        )

    def _spawn(self, info: NodeInfo, partners: list[str]) -> None:
        plan = self._spawn_plan(info)
        if plan.data_dir.exists():
            shutil.rmtree(plan.data_dir)
        plan.data_dir.mkdir(parents=True)
        os.chmod(plan.data_dir.parent, 0o711)  # job users pass through to the node's code
        secret = plan.data_dir / "cluster.secret"
        shutil.copyfile(self.data_dir / "cluster.secret", secret)
        os.chmod(secret, 0o600)
        command = [
            sys.executable,
            "-m",
            "odin.daemon",
            "--name",
            info.name,
            "--http",
            info.http,
            "--raft",
            info.raft,
            "--data-dir",
            str(plan.data_dir),
            "--socket",
            str(plan.socket),
            "--no-dashboard",
            *self.inherited,
        ]
        for partner in partners:
            command += ["--join", partner]
        with open(plan.log, "ab") as log:
            subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                env=_engine_env(),
            )

    async def _wait_caught_up(self, info: NodeInfo) -> None:
        deadline = time.monotonic() + config.NODE_JOIN_TIMEOUT_S
        while time.monotonic() < deadline:
            status = await asyncio.to_thread(self.node.log.status)
            partners = status.get("partners", {})
            matched = status.get("match_index", {})
            connected = isinstance(partners, dict) and partners.get(info.raft)
            caught_up = (
                not isinstance(matched, dict)
                or not matched
                or (int(matched.get(info.raft, -1)) >= int(str(status.get("commit_index", 0))) - 1)
            )
            if connected and caught_up:
                return
            await asyncio.sleep(0.2)
        raise Unavailable(
            f"node {info.name} did not catch up within {config.NODE_JOIN_TIMEOUT_S:.0f} s; "
            "see its engine.log"
        )

    async def remove(self, caller: Caller, name: str) -> NodeRemoved:
        self._authorise(caller)
        target = self.membership.by_name(name)
        if target is None:
            raise NotFound(f"no node named {name}")
        if target.name == self.membership.me.name:
            others = ", ".join(m.name for m in self.membership.members() if m.name != name)
            raise Conflict(f"a node cannot remove itself: ask another node with --port ({others})")
        if target.raft == self.node.log.leader():
            await self._retire_leader(target)
        await asyncio.to_thread(
            self.node.log.remove_member, target.raft, config.NODE_JOIN_TIMEOUT_S
        )
        await self.node.propose(c.RemoveNode(name))
        await asyncio.to_thread(self._shutdown, target)
        return NodeRemoved(removed=name)

    async def _retire_leader(self, target: NodeInfo) -> None:
        """Stop the leader so that the others elect a new one, then wait for it."""
        await asyncio.to_thread(self._shutdown, target)
        deadline = time.monotonic() + config.NODE_JOIN_TIMEOUT_S
        while time.monotonic() < deadline:
            leader = self.node.log.leader()
            if leader is not None and leader != target.raft:
                return
            await asyncio.sleep(0.1)
        raise Unavailable("no new leader was elected after the old one stopped")

    def _shutdown(self, target: NodeInfo) -> None:
        try:
            self.membership.call(target, "POST", "/v1/internal/shutdown", timeout=5)
        except (OSError, Exception):
            return


def _engine_env() -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "TZ", "PYTHONPATH")
    return {k: v for k, v in os.environ.items() if k in keep}


def local_address(text: str) -> tuple[str, bool]:
    """``:PORT`` means a new engine on this host; ``HOST:PORT`` an engine started there."""
    host, port = paths.parse_address(text)
    return f"{host}:{port}", text.startswith(":") or ":" not in text
