"""One engine node: the state machine behind the replicated log, and its events.

``apply`` runs on the Raft thread. It decodes the command, applies it under the
state lock and hands the events to the event loop. Until the node is ready
(journal replayed) events are not delivered: the engine reconciles with the
state once instead of replaying old launches.

Everything else reads the state through the node (``read`` and the named
queries below them), which takes the lock itself and hands out values, never
the state's own containers: jobs, runs and members are frozen dataclasses, and
collections are copies. Writes go through ``propose`` (the API's through
``odin.engine.service``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, Protocol, TypeVar

from odin import config
from odin.cluster import commands
from odin.cluster.calendars import CalendarTable
from odin.cluster.model import Alert, Job, LinkOn, NodeInfo, Run
from odin.cluster.raft import ReplicatedLog
from odin.cluster.state import Event, StateMachine, StateRestored
from odin.cluster.tokens import TokenTable
from odin.engine import memory
from odin.errors import NotLeader

Listener = Callable[[Event], None]
T = TypeVar("T")
_logger = logging.getLogger(__name__)


class ReadState(Protocol):
    """The replicated state as a query sees it: read-only (``EngineNode.read``)."""

    @property
    def jobs(self) -> Mapping[str, Job]: ...

    @property
    def links(self) -> Mapping[str, Mapping[str, LinkOn]]: ...

    @property
    def ledger(self) -> Mapping[str, float]: ...

    @property
    def runs(self) -> Mapping[str, Run]: ...

    @property
    def finished(self) -> Mapping[str, Sequence[str]]: ...

    @property
    def nodes(self) -> Mapping[str, NodeInfo]: ...

    @property
    def owned(self) -> Mapping[int, int]: ...

    @property
    def code_owned(self) -> Mapping[int, int]: ...

    @property
    def active_on(self) -> Mapping[str, int]: ...

    @property
    def active_of(self) -> Mapping[str, AbstractSet[str]]: ...

    @property
    def alerts(self) -> Mapping[str, Alert]: ...

    @property
    def alerts_of(self) -> Mapping[str, Sequence[str]]: ...

    @property
    def undelivered(self) -> AbstractSet[str]: ...

    @property
    def streaks(self) -> Mapping[str, int]: ...

    @property
    def tokens(self) -> TokenTable: ...  # API tokens: copy out what a query needs

    @property
    def calendars(self) -> CalendarTable: ...  # named calendars: copy out what a query needs

    def runs_of(self, job_id: str) -> Iterator[Run]: ...

    def active_runs(self) -> Iterator[Run]: ...


class EngineNode:
    """The replicated state of this node and the way to change it."""

    def __init__(
        self,
        *,
        name: str,
        raft_addr: str,
        partners: Sequence[str],
        data_dir: Path,
        secret: str,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.name = name
        self.raft_dir = data_dir  # its disk keeps a reserve (odin.disk)
        # Only the node itself should touch these two; readers use ``read`` and the queries.
        # (odin.engine.launcher, .prepare and .ticker, and odin.daemon still read them
        # directly, until they are moved onto the queries.)
        self.state = StateMachine()
        self.lock = threading.RLock()
        self.loop = loop
        self.ready = False
        self._listeners: list[Listener] = []
        self._leader_listeners: list[Callable[[bool], None]] = []
        self.log = ReplicatedLog(
            self_addr=raft_addr,
            partners=list(partners),
            data_dir=data_dir,
            secret=secret,
            apply=self._apply,
            snapshot=self._snapshot,
            restore=self._restore,
            on_leader_change=self._leader_changed,
        )

    # -- the Raft side (Raft thread) ---------------------------------------

    def _apply(self, data: bytes) -> object:
        command = commands.decode(data)
        with self.lock:
            result, events = self.state.apply(command)
        if events and self.ready:
            self.loop.call_soon_threadsafe(self._deliver, events)
        return result

    def _snapshot(self) -> bytes:
        # In a forked child of the raft thread, which alone changes the state: the
        # copy is whole without the lock (which another thread may have held at the fork).
        return self.state.snapshot()

    def _restore(self, blob: bytes) -> None:
        with self.lock:
            self.state.restore(blob)
        memory.give_back()  # what parsing the snapshot took
        if self.ready:
            restored: list[Event] = [StateRestored()]
            self.loop.call_soon_threadsafe(self._deliver, restored)

    def _leader_changed(self, leader: str | None) -> None:
        is_me = leader == self.log.self_addr()
        for listener in self._leader_listeners:
            self.loop.call_soon_threadsafe(listener, is_me)

    # -- reading (any thread) ------------------------------------------------

    def read(self, query: Callable[[ReadState], T]) -> T:
        """``query``'s answer from the state as of one moment, under the lock.

        ``query`` runs on the calling thread while the Raft thread waits to apply:
        keep it short (copy out, compute later) and return values, not the state's
        containers (a dict or set of the state's, or an iterator over one, would be
        read later without the lock). Jobs, runs and members are frozen: returning
        them is fine.
        """
        with self.lock:
            return query(self.state)

    def job(self, job_id: str) -> Job | None:
        with self.lock:
            return self.state.jobs.get(job_id)

    def jobs(self) -> dict[str, Job]:
        """Every job, by id (a copy)."""
        with self.lock:
            return dict(self.state.jobs)

    def run(self, run_id: str) -> Run | None:
        """A run the replicated window holds (finished runs past it are in the store)."""
        with self.lock:
            return self.state.runs.get(run_id)

    def runs(self) -> list[Run]:
        """Every run of the replicated window."""
        with self.lock:
            return list(self.state.runs.values())

    def runs_of(self, job_id: str) -> list[Run]:
        """A job's runs in the replicated window: its finished ones, then its active ones."""
        with self.lock:
            return list(self.state.runs_of(job_id))

    def active_runs(self) -> list[Run]:
        """The planned and running runs of every job."""
        with self.lock:
            return list(self.state.active_runs())

    def members(self) -> dict[str, NodeInfo]:
        """The cluster's members as replicated, by name (a copy; this node may be missing
        until it is listed: ``odin.engine.cluster.Membership.members`` adds it)."""
        with self.lock:
            return dict(self.state.nodes)

    def links(self) -> dict[str, dict[str, LinkOn]]:
        """Every link, source -> target -> when (a copy)."""
        with self.lock:
            return {source: dict(targets) for source, targets in self.state.links.items()}

    def state_json(self) -> bytes:
        """The whole state as the JSON its snapshots hold (for backups)."""
        with self.lock:
            return self.state.snapshot()

    # -- the loop side -----------------------------------------------------

    def on_event(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_leadership(self, listener: Callable[[bool], None]) -> None:
        self._leader_listeners.append(listener)

    def _deliver(self, events: list[Event]) -> None:
        for event in events:
            for listener in self._listeners:
                listener(event)

    async def propose(
        self, command: commands.Command, timeout: float = config.RAFT_PROPOSE_TIMEOUT_S
    ) -> Any:
        """Commit ``command`` and return what applying it returned, within ``timeout``.

        A change of leader under the proposal is waited out and the command sent
        again, while time is left: always when it surely was not committed, and
        when it may have been only if applying it twice is harmless.
        """
        data = commands.encode(command)
        deadline = self.loop.time() + timeout
        pause = config.RAFT_RESEND_PAUSE_S
        while True:
            left = deadline - self.loop.time()
            try:
                return await self.log.propose_async(data, timeout=max(left, pause))
            except NotLeader as error:
                if error.maybe_applied and not commands.replayable(command):
                    raise
                if self.loop.time() + pause >= deadline:
                    raise
                name = type(command).__name__
                _logger.info("%s met a change of leader (%s); sending it again", name, error)
            await asyncio.sleep(pause)
            pause = min(pause * 2, config.RAFT_RESEND_PAUSE_MAX_S)

    def is_leader(self) -> bool:
        return self.log.is_leader()

    def holds_lease(self) -> bool:
        """Whether this node may open a start gate now (``odin.cluster.lease``)."""
        return self.log.holds_lease()

    def start(self) -> None:
        self.log.start()

    async def wait_ready(self, timeout: float) -> bool:
        ok = await asyncio.to_thread(self.log.wait_ready, timeout)
        self.ready = ok
        return ok

    def stop(self) -> None:
        self.log.stop()
