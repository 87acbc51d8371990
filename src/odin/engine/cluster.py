"""This node's view of the cluster: who the members are, who is healthy, where runs go.

Members come from the replicated state (``NodeInfo``); health comes from this
node's Raft connections, polled once a second. The leader uses the view to
place runs on the least loaded healthy node and to mark the runs of a node that
stayed unreachable past its lease, or that is not a member (removed, or never
added), as ``lost`` (the state machine retries them elsewhere, per the job's policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from odin import config
from odin.cluster import commands as c
from odin.cluster import lease, placement
from odin.cluster.model import Job, NodeInfo, RunStatus
from odin.engine.node import EngineNode
from odin.engine.nodeauth import NodeAuth
from odin.errors import OdinError

log = logging.getLogger("odin.cluster")


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
        self.auth = NodeAuth(secret)  # signs our calls to other nodes, verifies theirs
        self._health: dict[str, Health] = {}
        self._marked: set[str] = set()
        self._assigned: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    # -- members ------------------------------------------------------------

    def members(self) -> list[NodeInfo]:
        known = self.node.members()
        known.setdefault(self.me.name, self.me)
        return sorted(known.values(), key=lambda n: n.name)

    def by_name(self, name: str) -> NodeInfo | None:
        return next((n for n in self.members() if n.name == name), None)

    def fetch_records(
        self, node: str, job_id: str, owner_uid: int, run: str | None
    ) -> dict[str, list[Any]] | None:
        """The whole records ``node`` keeps of a job's runs (of ``run`` only, if given), or None
        if it cannot say; blocking (up to ``NODE_RECORDS_TIMEOUT_S``): call it from a thread."""
        member = self.by_name(node)
        if member is None:
            return None
        query = {"owner": str(owner_uid)} | ({} if run is None else {"run": run})
        path = f"/v1/internal/jobs/{quote(job_id, safe='')}/records?{urlencode(query)}"
        try:
            answer = self.call(member, "GET", path, timeout=config.NODE_RECORDS_TIMEOUT_S)
            return dict(answer["records"])
        except (OSError, OdinError, ValueError, KeyError, TypeError):
            return None

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
        return self.node.read(lambda state: Counter(state.active_on))

    def pick(self, job: Job, load: Counter[str], avoid: str | None = None) -> str | None:
        """The least loaded healthy member the job may run on (ties by name), counted in ``load``;
        None when none of the job's ``nodes:`` is a member (``placement.candidates``). With
        ``avoid``, only another healthy member (a run moved off a silent node), or None."""
        members = [m.name for m in self.members() if m.name != avoid]
        healthy = [name for name in members if self._healthy(name)]
        if avoid is not None:
            members = [name for name in members if name in healthy]
        names = placement.candidates(job, members, healthy)
        if not names:
            return None
        choice = min(names, key=lambda n: (load[n], self._assigned[n], n))
        load[choice] += 1
        self._assigned[choice] += 1
        return choice

    def _healthy(self, name: str) -> bool:
        """Connected, and (as the leader sees it) heard from recently enough for new runs."""
        if name == self.me.name:
            return True
        return self.health(name).healthy and not lease.unreachable(self.silence(name))

    # -- the watchdog (every node polls; the leader acts) ---------------------

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        refreshed = 0.0
        while True:
            now = time.time()
            if now - refreshed >= config.NODE_HEALTH_POLL_S:
                await asyncio.to_thread(self.refresh, now)
                refreshed = now
            if self.node.is_leader():
                await self._move_from_silent(now)
                await self._expire_leases(now)
            await asyncio.sleep(config.NODE_WATCH_S)

    def silence(self, name: str) -> float:
        """Seconds since member ``name`` may last have been in touch (0 for this node)."""
        member = self.by_name(name)
        if member is None or name == self.me.name:
            return 0.0
        return self.node.log.silence(member.raft)

    async def _move_from_silent(self, now: float) -> None:
        """Hand the planned runs of nodes whose lease is over to live nodes (the leader's
        side of ``odin.cluster.lease``): on time where the plan allows, else at once."""
        members = {m.name for m in self.members()}
        silent_nodes = {
            name
            for name in self.node.read(lambda state: list(state.active_on))
            if name != self.me.name and name in members and self.silence(name) > config.SURE_S
        }
        if not silent_nodes:
            return  # the common case, in O(nodes): no active run is walked
        planned = self.node.read(
            lambda state: [
                (run, state.jobs.get(run.job_id))
                for run in state.active_runs()
                if run.status is RunStatus.PLANNED and run.node in silent_nodes
            ]
        )
        moves: list[c.Move] = []
        load = self.load()
        for run, job in planned:
            silent = self.silence(run.node)
            if job is None or run.id in self._marked or silent <= config.SURE_S:
                continue
            if self.by_name(run.node) is None:
                continue  # not a member: lost at once (_expire_leases)
            why = lease.move_reason(run.node, run.starts_at, now - silent, job.delivery)
            target = self.pick(job, load, avoid=run.node)
            if why is not None and target is not None:
                moves.append(c.Move(run.id, run.node, target, why))
        if moves:
            self._marked.update(move.run_id for move in moves)
            try:
                await self.node.propose(c.MoveRuns(tuple(moves)))
            except OdinError:
                log.warning("could not move %d runs of silent nodes", len(moves))
            finally:
                self._marked.difference_update(move.run_id for move in moves)

    async def _expire_leases(self, now: float) -> None:
        """Mark lost the started runs of nodes silent past ``NODE_LEASE_S`` (their node's
        report replaces that when it is back) and every run of a node that is no member."""
        members = {m.name for m in self.members()}
        messages: dict[str, str] = {}
        for name in self.node.read(lambda state: list(state.active_on)):
            silent = self.silence(name)
            down_since = now - silent if silent > 0 else None
            message = placement.lost_message(name, name in members, down_since, now)
            if message is not None:
                messages[name] = message
        if not messages:
            return  # the common case, in O(nodes): no active run is walked
        active = self.node.read(
            lambda state: [run for run in state.active_runs() if run.node in messages]
        )
        for run in active:
            message = messages[run.node]
            if run.id in self._marked:
                continue
            member = run.node in members
            if run.status is RunStatus.PLANNED and (member or run.starts_at > now):
                continue  # moved or waiting for its node (lease rules), or not due yet
            self._marked.add(run.id)
            command = c.FinishRun(
                run_id=run.id,
                status=RunStatus.LOST,
                finished_at=now,
                message=message,
                unsure=member,
            )
            with contextlib.suppress(OdinError):
                await self.node.propose(command)

    # -- talking to other nodes -----------------------------------------------

    def call(
        self, member: NodeInfo, method: str, path: str, timeout: float = 5.0, body: bytes = b""
    ) -> Any:
        """One request to another node's HTTP API, signed for that request alone (``nodeauth``)."""
        host, _, port = member.http.rpartition(":")
        conn = http.client.HTTPConnection(host or "127.0.0.1", int(port), timeout=timeout)
        try:
            headers = self.auth.headers(method, path, body)
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            answer = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise OdinError(f"node {member.name} answered {response.status}")
        return json.loads(answer) if answer else None
