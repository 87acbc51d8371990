"""This node's view of the cluster: who the members are, who is healthy, where runs go.

Members come from the replicated state (``NodeInfo``); health comes from this
node's Raft connections, polled once a second. The leader uses the view to
place runs on the least loaded healthy node and to mark the runs of a node that
stayed unreachable past its lease as ``lost`` (the state machine retries them
elsewhere, per the job's policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from odin import config
from odin.cluster import commands as c
from odin.cluster.model import Job, NodeInfo, RunStatus
from odin.engine.node import EngineNode
from odin.errors import OdinError

log = logging.getLogger("odin.cluster")

NODE_HEADER = "X-Odin-Node"


def node_token(secret: str) -> str:
    """The credential nodes present to each other's HTTP API, derived from the cluster secret."""
    return hmac.new(secret.encode(), b"odin node api v1", hashlib.sha256).hexdigest()


@dataclass
class Health:
    healthy: bool
    last_seen: float | None
    down_since: float | None


class Membership:
    """Members, their health as this node sees it, and run placement."""

    def __init__(self, node: EngineNode, me: NodeInfo, secret: str) -> None:
        self.node = node
        self.me = me
        self.token = node_token(secret)
        self._health: dict[str, Health] = {}
        self._marked: set[str] = set()
        self._assigned: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    # -- members ------------------------------------------------------------

    def members(self) -> list[NodeInfo]:
        with self.node.lock:
            known = dict(self.node.state.nodes)
        known.setdefault(self.me.name, self.me)
        return sorted(known.values(), key=lambda n: n.name)

    def by_name(self, name: str) -> NodeInfo | None:
        return next((n for n in self.members() if n.name == name), None)

    def health(self, name: str) -> Health:
        if name == self.me.name:
            return Health(True, time.time(), None)
        return self._health.get(name, Health(False, None, None))

    def refresh(self, now: float) -> None:
        """Read this node's Raft connections into the health table."""
        try:
            partners: dict[str, bool] = dict(self.node.log.status().get("partners", {}))  # type: ignore[call-overload]
        except OdinError:
            return
        for member in self.members():
            if member.name == self.me.name:
                continue
            up = bool(partners.get(member.raft))
            old = self._health.get(member.name, Health(False, None, now))
            self._health[member.name] = Health(
                healthy=up,
                last_seen=now if up else old.last_seen,
                down_since=None if up else (old.down_since or now),
            )

    # -- placement ----------------------------------------------------------

    def load(self) -> Counter[str]:
        with self.node.lock:
            return Counter(r.node for r in self.node.state.active_runs())

    def pick(self, job: Job, load: Counter[str]) -> str:
        """The least loaded healthy node the job may run on (ties by name); counts it in ``load``."""
        names = [m.name for m in self.members() if self.health(m.name).healthy]
        if job.nodes:
            allowed = [n for n in names if n in job.nodes]
            names = allowed or list(job.nodes)
        choice = min(names or [self.me.name], key=lambda n: (load[n], self._assigned[n], n))
        load[choice] += 1
        self._assigned[choice] += 1
        return choice

    # -- the watchdog (every node polls; the leader acts) ---------------------

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            now = time.time()
            await asyncio.to_thread(self.refresh, now)
            if self.node.is_leader():
                await self._expire_leases(now)
            await asyncio.sleep(config.NODE_HEALTH_POLL_S)

    async def _expire_leases(self, now: float) -> None:
        with self.node.lock:
            active = list(self.node.state.active_runs())
        for run in active:
            health = self.health(run.node)
            gone = health.down_since is not None and now - health.down_since > config.NODE_LEASE_S
            if not gone or run.id in self._marked:
                continue
            if run.status is RunStatus.PLANNED and run.instant > now:
                continue
            self._marked.add(run.id)
            message = (
                f"lost: node {run.node} was unreachable for more than {config.NODE_LEASE_S:.0f} s"
            )
            command = c.FinishRun(
                run_id=run.id, status=RunStatus.LOST, finished_at=now, message=message
            )
            with contextlib.suppress(OdinError):
                await self.node.propose(command)

    # -- talking to other nodes -----------------------------------------------

    def call(self, member: NodeInfo, method: str, path: str, timeout: float = 5.0) -> Any:
        """One request to another node's HTTP API, authenticated with the node token."""
        host, _, port = member.http.rpartition(":")
        conn = http.client.HTTPConnection(host or "127.0.0.1", int(port), timeout=timeout)
        try:
            conn.request(method, path, headers={NODE_HEADER: self.token})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise OdinError(f"node {member.name} answered {response.status}")
        return json.loads(body) if body else None
