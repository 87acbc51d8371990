"""Odin's one door to PySyncObj: a Raft-replicated log of opaque commands.

Nothing else in Odin imports ``pysyncobj``. ``ReplicatedLog`` turns PySyncObj's
replicated-method model into "propose bytes, apply bytes" and owns every
PySyncObj setting (where it sits: docs/architecture.md; what a cluster survives:
docs/cluster.md). What holds (tests/cluster/test_raft.py proves each with real processes,
SIGKILL and restarts):

- ``apply(command)`` runs once per committed command per process lifetime, in
  log order, on the raft thread, on every node. At start the last snapshot goes
  to ``restore`` first, then the journal entries after it go through ``apply``;
  an entry already inside the restored state is never applied again. Its return
  value goes back to the proposer; a follower's proposal is forwarded to the
  leader and answered by the follower's own apply of the same entry.
- ``apply`` must be deterministic and quick. If it raises, the raft thread lives
  on, the entry counts as applied (so ``apply`` must change nothing when it
  raises) and the proposer gets the error.
- Durability: PySyncObj writes each entry into an mmap'ed journal before it is
  acknowledged, and stores term and vote (write + rename) before any vote
  leaves the node. Page-cache writes outlive the process, so SIGKILL of any
  number of nodes loses nothing committed, with one window left: PySyncObj cuts
  the journal by rewriting it in place (microseconds, once per compaction); a
  node killed inside that rewrite loses the entries after its snapshot, which
  matters only if a majority is killed so at once. The other window (a dump
  renamed into place, the journal not yet cut) is closed here. A power cut of
  every node at once loses nothing acknowledged either: the journal is flushed
  (``odin.cluster.durable``) before a follower acknowledges entries and at the
  end of the leader's tick that appended them, once for all the entries since
  the last flush; term and vote are fsync'ed before the message that shows
  them, and the dump is fsync'ed.
- Snapshots: ``snapshot()`` bytes, with the two log entries and the membership
  PySyncObj needs, go to ``raft.dump`` in the data directory every
  ``RAFT_COMPACTION_ENTRIES`` entries or ``RAFT_COMPACTION_S`` seconds, and the
  journal is then cut. A forked child writes the dump, so the process's threads
  do not wait for it. A follower too far behind gets the leader's dump whole.
- The Raft port is always encrypted and authenticated with the cluster secret
  (PySyncObj's wire format is pickle); an empty secret is refused.
- Damaged files stop the start: PySyncObj would log a dump it cannot read and
  go on with an empty state, and crash or silently drop entries on a journal
  cut short. ``check_raft_files`` walks the journal's records, the dump (its
  header and a SHA-256 of its snapshot) and the term/vote file first, and
  ``start`` refuses with ``Unavailable`` naming the file, the damage and the
  way back (copy the state from the other nodes). The journal format carries
  no checksum: a flipped byte inside a command is not seen here.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import pickle
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from pysyncobj import (
    FAIL_REASON,
    SERIALIZER_STATE,
    SyncObj,
    SyncObjConf,
    SyncObjException,
    replicated,
)
from pysyncobj.node import TCPNode
from pysyncobj.poller import POLL_EVENT_TYPE

from odin import config
from odin.cluster import lease
from odin.cluster.durable import DurableJournal, SyncStats
from odin.cluster.forked import ForkedWriter, Progress, clear_parts
from odin.errors import Conflict, InvalidInput, NotLeader, OdinError, Unavailable

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

JOURNAL_FILE = "raft.journal"
DUMP_FILE = "raft.dump"
META_FILE = JOURNAL_FILE + ".meta"
_DUMP_MAGIC = b"ODINRAFT"
_DUMP_VERSION = 2  # 2 adds the snapshot's SHA-256; version 1 dumps are still read
_DUMP_VERSIONS = (1, 2)
_DUMP_HEAD = struct.Struct(">8sHI")  # magic, version, header length
PING = "odin_ping"  # a node's "I am here, applied up to N", to every partner (start leases)
_STATES = {0: "follower", 1: "candidate", 2: "leader"}
_CALL_TIMEOUT_S = 2.0


class _Waker:
    """A pipe in PySyncObj's poller: a byte written to it ends the raft thread's wait
    (PySyncObj wakes it for a proposal, not for a call queued with ``_on_raft_thread``)."""

    def __init__(self, poller: Any) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._lock = threading.Lock()  # no write to a descriptor number closed meanwhile
        self._closed = False
        poller.subscribe(self._read, self._drain, POLL_EVENT_TYPE.READ)

    def wake(self) -> None:
        with self._lock, contextlib.suppress(BlockingIOError):  # full: a wake-up is pending
            if not self._closed:
                os.write(self._write, b"w")

    def _drain(self, _descr: int, _events: int) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            os.close(self._read)
            os.close(self._write)


Entry = tuple[bytes, int, int]
"""One PySyncObj log entry: (command with its type byte, index, term)."""


@dataclasses.dataclass(frozen=True)
class RaftTuning:
    """Timings and bounds of one node; the defaults are Odin's settings."""

    tick_s: float = config.RAFT_TICK_S
    lone_tick_s: float = config.RAFT_LONE_TICK_S
    heartbeat_s: float = config.RAFT_HEARTBEAT_S
    election_min_s: float = config.RAFT_ELECTION_MIN_S
    election_max_s: float = config.RAFT_ELECTION_MAX_S
    connect_retry_s: float = config.RAFT_CONNECT_RETRY_S
    connection_timeout_s: float = config.RAFT_CONNECTION_TIMEOUT_S
    leader_stepdown_s: float = config.RAFT_LEADER_STEPDOWN_S
    compaction_entries: int = config.RAFT_COMPACTION_ENTRIES
    compaction_s: float = config.RAFT_COMPACTION_S
    dump_retry_s: float = config.RAFT_DUMP_RETRY_S
    bind_retries: int = config.RAFT_BIND_RETRIES
    bind_retry_s: float = config.RAFT_BIND_RETRY_S
    flush_journal: bool = True  # off only to measure what flushing costs (bench/)


@dataclasses.dataclass(frozen=True)
class _Dump:
    """What ``raft.dump`` holds: the state machine's bytes and PySyncObj's bookkeeping."""

    snapshot: bytes
    last: Entry  # the last entry inside the snapshot
    prev: Entry  # the one before it (PySyncObj keeps both in the cut journal)
    members: tuple[str, ...]


def _encode_entry(entry: Entry) -> list[object]:
    command, index, term = entry
    return [index, term, base64.b64encode(bytes(command)).decode("ascii")]


def _decode_entry(raw: list[Any]) -> Entry:
    index, term, command = raw
    return (base64.b64decode(command), int(index), int(term))


def write_dump(path: Path, dump: _Dump) -> None:
    """Write a dump file: fixed head, JSON header, then the snapshot bytes, fsync'ed."""
    header = json.dumps(
        {
            "last": _encode_entry(dump.last),
            "prev": _encode_entry(dump.prev),
            "members": list(dump.members),
            "sha256": hashlib.sha256(dump.snapshot).hexdigest(),
        }
    ).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # every user's jobs and records: the engine's alone
    with open(fd, "wb") as out:
        out.write(_DUMP_HEAD.pack(_DUMP_MAGIC, _DUMP_VERSION, len(header)))
        out.write(header)
        out.write(dump.snapshot)
        out.flush()
        os.fsync(out.fileno())


def read_dump(path: Path) -> _Dump:
    """Read what ``write_dump`` wrote; any other or damaged file raises ``ValueError``."""
    data = path.read_bytes()
    if len(data) < _DUMP_HEAD.size:
        raise ValueError(
            f"{path} is not an Odin raft dump: {len(data)} bytes, shorter than a header"
        )
    magic, version, size = _DUMP_HEAD.unpack_from(data)
    if magic != _DUMP_MAGIC or version not in _DUMP_VERSIONS:
        raise ValueError(f"{path} is not an Odin raft dump of version {_DUMP_VERSION}")
    start = _DUMP_HEAD.size
    if start + size > len(data):
        raise ValueError(f"{path} is cut short: its header alone needs {start + size} bytes")
    try:
        header = json.loads(data[start : start + size])
        dump = _Dump(
            snapshot=data[start + size :],
            last=_decode_entry(header["last"]),
            prev=_decode_entry(header["prev"]),
            members=tuple(str(m) for m in header["members"]),
        )
        expected = header.get("sha256") if version >= 2 else None
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} has an unreadable header ({error})") from None
    if expected is not None and hashlib.sha256(dump.snapshot).hexdigest() != expected:
        raise ValueError(f"{path} is damaged: its snapshot does not match its checksum")
    return dump


# -- checking the files before PySyncObj reads them -------------------------------

_JOURNAL_NAME = b"PYSYNCOBJ"
_JOURNAL_FORMAT = 1
_JOURNAL_HEAD = struct.Struct("<24s8sII")  # app name, app version, format, end of records
_RECORD_SIZE = struct.Struct("<I")  # before and after each record
_RECORD_KEY = struct.Struct("<QQ")  # index, term; the command follows


class _Damage(Exception):
    """One damaged raft file: which, and what is wrong with it (internal to this module)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem


def journal_last_index(path: Path) -> int | None:
    """Walk a PySyncObj journal; the last entry's index (None if empty), or ``_Damage``."""
    data = path.read_bytes()
    if len(data) < _JOURNAL_HEAD.size:
        raise _Damage(
            path, f"it has {len(data)} bytes, fewer than its {_JOURNAL_HEAD.size}-byte header"
        )
    name, _, version, end = _JOURNAL_HEAD.unpack_from(data)
    if name.rstrip(b"\0") != _JOURNAL_NAME or version != _JOURNAL_FORMAT:
        raise _Damage(path, "it is not a PySyncObj journal of format 1")
    if not _JOURNAL_HEAD.size <= end <= len(data):
        raise _Damage(
            path, f"it is cut short: its records end at byte {end}, the file at {len(data)}"
        )
    offset, last, last_term = _JOURNAL_HEAD.size, None, 0
    while offset < end:
        index, term, offset = _journal_record(path, data, offset, end)
        if last is not None and index != last + 1:
            raise _Damage(path, f"entry {index} follows entry {last}: entries are missing")
        if term < last_term:
            raise _Damage(path, f"entry {index} has term {term}, lower than the entry before it")
        last, last_term = index, term
    return last


def _journal_record(path: Path, data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """(index, term, next offset) of the record at ``offset``, or ``_Damage``."""
    if offset + 2 * _RECORD_SIZE.size + _RECORD_KEY.size > end:
        raise _Damage(path, f"a record at byte {offset} is cut short")
    (size,) = _RECORD_SIZE.unpack_from(data, offset)
    after = offset + _RECORD_SIZE.size + size
    if size < _RECORD_KEY.size + 1 or after + _RECORD_SIZE.size > end:
        raise _Damage(path, f"the record at byte {offset} has an impossible length {size}")
    (trailer,) = _RECORD_SIZE.unpack_from(data, after)
    if trailer != size:
        raise _Damage(path, f"the record at byte {offset} is damaged (its two lengths differ)")
    index, term = _RECORD_KEY.unpack_from(data, offset + _RECORD_SIZE.size)
    return index, term, after + _RECORD_SIZE.size


def _committed_index(path: Path) -> int:
    """The commit index PySyncObj saved beside the journal (with the term and vote)."""
    try:
        meta = pickle.loads(path.read_bytes())
    except Exception as error:  # any unpickling failure means the same: unreadable
        raise _Damage(
            path, f"the saved term and vote are unreadable ({type(error).__name__})"
        ) from None
    if not isinstance(meta, dict):
        raise _Damage(path, "the saved term and vote are not a mapping")
    return int(meta.get("raftCommitIndex", 0))


def check_raft_files(data_dir: Path) -> None:
    """Refuse (``Unavailable``) a data directory whose journal, dump or vote file is damaged.

    Fresh directories pass. What is refused: a file PySyncObj cannot parse, a
    journal whose records are cut or out of sequence, a dump whose checksum
    fails, and a journal that ends before the commit index saved beside it or
    is missing while a dump or vote file says the node had state.
    """
    journal, dump, meta = (data_dir / n for n in (JOURNAL_FILE, DUMP_FILE, META_FILE))
    try:
        if dump.exists():
            try:
                read_dump(dump)
            except ValueError as error:
                raise _Damage(dump, str(error)) from None
        committed = _committed_index(meta) if meta.exists() else None
        if not journal.exists():
            if dump.exists() or committed:
                raise _Damage(journal, "it is missing, but this node had a state")
            return
        last = journal_last_index(journal)
        if committed is not None and committed > 1 and (last or 0) < committed:
            raise _Damage(
                journal, f"it ends at entry {last or 0}, but entry {committed} was committed"
            )
    except _Damage as damage:
        raise Unavailable(_damaged_message(data_dir, damage)) from None


def _damaged_message(data_dir: Path, damage: _Damage) -> str:
    return (
        f"refusing to start: the raft file {damage.path} is damaged: {damage.problem}. "
        "Starting would lose acknowledged jobs. To recover: if the other nodes of the "
        f"cluster are running, move {data_dir} aside (mv {data_dir} {data_dir}.damaged) and "
        "start this node again with --join <a member's raft address>: it copies the state "
        f"from the leader. On a single node, put back a backup of {data_dir}; moving it "
        "aside starts an empty node (every job is lost)."
    )


class _HandedOff(Exception):
    """Raised to PySyncObj by the serializer hook once the dump is in other hands."""


_PROGRESS: dict[Progress, int] = {
    Progress.IDLE: SERIALIZER_STATE.NOT_SERIALIZING,
    Progress.WRITING: SERIALIZER_STATE.SERIALIZING,
    Progress.DONE: SERIALIZER_STATE.SUCCESS,
    Progress.FAILED: SERIALIZER_STATE.FAILED,
}


@dataclasses.dataclass(frozen=True)
class _ApplyFailed:
    """What the proposer receives when ``apply`` raised."""

    error: Exception

    def as_error(self) -> OdinError:
        if isinstance(self.error, OdinError):
            return self.error
        kind = type(self.error).__name__
        return OdinError(f"applying the command failed: {kind}: {self.error}")


_FAILURES: dict[int, str] = {
    FAIL_REASON.QUEUE_FULL: "the raft command queue is full",
    FAIL_REASON.MISSING_LEADER: "no raft leader is known",
    FAIL_REASON.DISCARDED: "a new leader replaced the command before it was committed",
    FAIL_REASON.NOT_LEADER: "the command reached a node that is no longer the leader",
    FAIL_REASON.LEADER_CHANGED: "the leader changed before the command was committed"
    " (it may still be applied)",
    FAIL_REASON.REQUEST_DENIED: "the request was denied (another membership change is"
    " in progress, the node is already in that state, or it names this node)",
    FAIL_REASON.UNKNOWN_OUTCOME: "the outcome of the command is unknown",
}


# Leadership failures after which the command is surely not in the log.
_NOT_APPLIED = (FAIL_REASON.NOT_LEADER, FAIL_REASON.DISCARDED, FAIL_REASON.MISSING_LEADER)


def _failure(reason: int, leader: str | None) -> OdinError:
    """Map a PySyncObj failure code to Odin's error tree (one table, no text matching)."""
    message = _FAILURES.get(reason, f"raft failure code {reason}")
    if reason in _NOT_APPLIED or reason == FAIL_REASON.LEADER_CHANGED:
        maybe = reason == FAIL_REASON.LEADER_CHANGED
        text = f"{message}; leader now: {leader or 'unknown'}"
        return NotLeader(text, leader=leader, maybe_applied=maybe)
    if reason == FAIL_REASON.REQUEST_DENIED:
        return Conflict(message)
    return Unavailable(message)


class _Waiter:
    """Collects one PySyncObj callback for a blocking caller."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: object = None
        self.reason: int = FAIL_REASON.SUCCESS

    def settle(self, result: object, reason: int) -> None:
        self.result, self.reason = result, reason
        self.done.set()


class _SyncNode(SyncObj):  # type: ignore[misc]
    """PySyncObj's object with a single replicated method: hand the entry to the log."""

    def __init__(self, log: ReplicatedLog, partners: list[str], conf: Any) -> None:
        self._odin_log = log
        super().__init__(log.self_addr(), partners, conf)
        self.durable = DurableJournal(self._SyncObj__raftLog, log._tuning.flush_journal)

    @replicated  # type: ignore[untyped-decorator]
    def _apply_entry(self, command: bytes) -> object:
        # PySyncObj bumps raftLastApplied after this returns: this entry is the next one.
        return self._odin_log._apply_entry(self.raftLastApplied + 1, command)

    def _SyncObj__sendNextNodeIdx(self, node: Any, *args: Any, **kwargs: Any) -> None:
        """A follower's answer to its leader (its acknowledgement), once its journal is durable."""
        self.durable.sync()
        SyncObj._SyncObj__sendNextNodeIdx(self, node, *args, **kwargs)

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:
        """A note of who spoke (``_heard``), then PySyncObj's handler for its own messages."""
        if not self._odin_log._heard(node, message):
            SyncObj._SyncObj__onMessageReceived(self, node, message)


class ReplicatedLog:
    """A Raft-replicated log of opaque commands applied to a state machine, over PySyncObj.

    ``apply``, ``restore`` and ``on_leader_change`` run on the raft thread and must
    not block; ``restore`` replaces the whole state. ``snapshot`` runs in a forked
    child of the process (``odin.cluster.forked``), on its copy of the state as the
    raft thread left it between two applies: it must take no lock, since a lock
    another thread held at the fork stays held in the child. Every other method may
    be called from any thread.
    """

    def __init__(
        self,
        *,
        self_addr: str,
        partners: Sequence[str],
        data_dir: Path,
        secret: str,
        apply: Callable[[bytes], object],
        snapshot: Callable[[], bytes],
        restore: Callable[[bytes], None],
        on_leader_change: Callable[[str | None], None] | None = None,
        tuning: RaftTuning | None = None,
    ) -> None:
        if not secret:
            raise InvalidInput(
                "the cluster secret is empty: the raft port would run pickle from anyone"
            )
        self._self_addr = self_addr
        self._partners = [p for p in partners if p != self_addr]
        self._data_dir = data_dir
        self._secret = secret
        self._apply = apply
        self._snapshot = snapshot
        self._restore = restore
        self._on_leader_change = on_leader_change
        self._tuning = tuning or RaftTuning()
        self._applied_index = 0  # the last log index inside the state machine
        self._started = False
        self._node: _SyncNode | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._calls: collections.deque[tuple[Callable[[], Any], Future[Any]]] = collections.deque()
        self._hurry = 0
        self._hurry_lock = threading.Lock()
        self._leader_seen: str | None = None
        self._waker: _Waker | None = None
        # Start leases (odin.cluster.lease), kept on the raft thread and read from any:
        self._born = time.monotonic()
        self._heard_at: dict[str, float] = {}  # partner -> monotonic time of its last message
        self._echo_for: dict[str, float] = {}  # partner -> send time of its last ping (its clock)
        self._claimed: dict[str, tuple[float, int]] = {}  # partner -> (echo, what it had applied)
        self._contact_at: dict[str, float] = {}  # partner -> last such message applied up to here
        self._pinged = 0.0
        self._dumps = ForkedWriter(config.RAFT_DUMP_TIMEOUT_S, self._tuning.dump_retry_s)

    # -- life cycle ---------------------------------------------------------

    def start(self) -> None:
        """Bind the raft port and start the raft thread; the dump and journal load there.

        Once per object: the state machine behind it must start empty, since the
        dump and the journal rebuild it.
        """
        if self._started:
            raise Conflict(f"raft node {self._self_addr} was already started once")
        self._started = True
        self._data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        check_raft_files(self._data_dir)
        clear_parts(self._data_dir / DUMP_FILE)
        try:
            node = _SyncNode(self, self._partners, self._conf())
        except SyncObjException as exc:
            raise Unavailable(f"cannot bind the raft port {self._self_addr}: {exc}") from exc
        self._node = node
        self._waker = _Waker(node._poller)
        self._thread = threading.Thread(
            target=self._run, args=(node,), name=f"raft {self._self_addr}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the raft thread, close the port and flush the journal; idempotent."""
        node, thread = self._node, self._thread
        if node is None or thread is None:
            return
        self._stopping.set()
        thread.join()
        self._dumps.cancel()
        node.destroy()
        if self._waker is not None:
            self._waker.close()
        self._node = self._thread = self._waker = None
        self._fail_calls()

    def wait_ready(self, timeout: float) -> bool:
        """True once the journal is replayed up to the leader's commit index and a leader is known."""
        return self._ready.wait(timeout)

    # -- proposing ----------------------------------------------------------

    def propose(self, command: bytes, timeout: float = config.RAFT_PROPOSE_TIMEOUT_S) -> object:
        """Commit ``command`` and return what ``apply`` returned for it on this node.

        Raises ``Unavailable`` on timeout (no leader or no quorum: the command may
        still be committed later), ``NotLeader`` when the leader changed under it,
        and whatever ``apply`` raised (non-Odin errors wrapped in ``OdinError``).
        """
        if threading.current_thread() is self._thread:
            raise OdinError("propose was called on the raft thread: it would wait for itself")
        waiter = _Waiter()
        with self._proposing(command, waiter.settle):
            if not waiter.done.wait(timeout):
                raise self._timeout(timeout)
        return self._outcome(waiter.result, waiter.reason)

    async def propose_async(
        self, command: bytes, timeout: float = config.RAFT_PROPOSE_TIMEOUT_S
    ) -> object:
        """``propose`` for the event loop: the loop is never blocked."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[object, int]] = loop.create_future()

        def deliver(result: object, reason: int) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_resolve, future, (result, reason))

        with self._proposing(command, deliver):
            try:
                result, reason = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise self._timeout(timeout) from None
        return self._outcome(result, reason)

    @contextlib.contextmanager
    def _proposing(self, command: bytes, deliver: Callable[[object, int], None]) -> Iterator[None]:
        """Hand ``command`` to PySyncObj; the raft thread passes ``deliver`` the result and
        PySyncObj's reason code once it settles. The proposal counts as in flight
        (``_hurrying``) until then or until the caller leaves the ``with`` block."""
        node = self._running()
        with self._hurrying() as settled:

            def settle(result: object, reason: int) -> None:
                settled()
                deliver(result, reason)

            node._apply_entry(command, callback=settle)
            yield

    # -- membership -----------------------------------------------------------

    def add_member(self, addr: str, timeout: float = config.RAFT_MEMBERSHIP_TIMEOUT_S) -> None:
        """Add a node (started with every current member as partner) to the configuration."""
        node = self._running()
        self._change_membership(lambda cb: node.addNodeToCluster(addr, callback=cb), timeout)

    def remove_member(self, addr: str, timeout: float = config.RAFT_MEMBERSHIP_TIMEOUT_S) -> None:
        """Remove a node from the configuration (not this one: move leadership first)."""
        node = self._running()
        self._change_membership(lambda cb: node.removeNodeFromCluster(addr, callback=cb), timeout)

    def _change_membership(
        self, send: Callable[[Callable[[object, int], None]], None], timeout: float
    ) -> None:
        waiter = _Waiter()
        send(waiter.settle)
        if not waiter.done.wait(timeout):
            raise self._timeout(timeout)
        self._outcome(waiter.result, waiter.reason)

    # -- reading --------------------------------------------------------------

    def self_addr(self) -> str:
        return self._self_addr

    def is_leader(self) -> bool:
        return self._node is not None and bool(self._node._isLeader())

    def leader(self) -> str | None:
        """The last leader this node heard of (may be stale during an election)."""
        return None if self._node is None else _addr(self._node._getLeader())

    def holds_lease(self) -> bool:
        """Whether this node may open a run's start gate now (``odin.cluster.lease``): in
        touch, within the lease, with a majority of the voters (itself included), each
        counted only once this node had applied what that one had when it last spoke."""
        node = self._node
        if node is None:
            return False
        others = list(node.otherNodes)
        if not others:
            return True
        contacts = (self._contact_at.get(n.id, float("-inf")) for n in others)
        contact = lease.quorum_contact(contacts, len(others) + 1)
        return lease.holds_lease(time.monotonic(), contact)

    def journal_syncs(self) -> SyncStats:
        """How often this node flushed its journal, and the time it took (``bench/``)."""
        node = self._running()
        return SyncStats(node.durable.stats.syncs, node.durable.stats.seconds)

    def silence(self, addr: str) -> float:
        """Seconds since this node last heard from ``addr`` (every node pings every other
        ``RAFT_PING_S``), or since this node started if never."""
        heard = self._heard_at.get(addr, self._born)
        return max(0.0, time.monotonic() - heard)

    def members(self) -> list[str]:
        """This node, then its partners in the current configuration, sorted."""
        node = self._running()
        others = self._on_raft_thread(lambda: sorted(n.id for n in node.otherNodes))
        return [self._self_addr, *others]

    def status(self) -> dict[str, object]:
        """Raft facts of this node (JSON-ready): role, term, indexes, partners."""
        node = self._running()
        return _summarize(self._on_raft_thread(node.getStatus), self._ready.is_set())

    def between_ticks(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` on the raft thread between two ticks and return what it returns.

        The raft thread does nothing else meanwhile: a slow ``call`` is a stall of
        this node (tests use it to stand for a starved thread).
        """
        self._running()
        return self._on_raft_thread(call)

    def compact(self) -> None:
        """Take a snapshot and cut the journal at the next tick (normally automatic)."""
        self._running().forceLogCompaction()

    # -- the raft thread ------------------------------------------------------

    def _conf(self) -> Any:
        t = self._tuning
        return SyncObjConf(
            password=self._secret,
            autoTick=False,
            appendEntriesUseBatch=False,
            dynamicMembershipChange=True,
            commandsWaitLeader=True,
            journalFile=str(self._data_dir / JOURNAL_FILE),
            fullDumpFile=str(self._data_dir / DUMP_FILE),
            serializer=self._save_dump,
            serializeChecker=self._dump_progress,
            deserializer=self._load_dump,
            bindAddress=self._self_addr,
            maxBindRetries=t.bind_retries,
            bindRetryTime=t.bind_retry_s,
            appendEntriesPeriod=t.heartbeat_s,
            raftMinTimeout=t.election_min_s,
            raftMaxTimeout=t.election_max_s,
            connectionRetryTime=t.connect_retry_s,
            connectionTimeout=t.connection_timeout_s,
            leaderFallbackTimeout=t.leader_stepdown_s,
            logCompactionMinEntries=t.compaction_entries,
            logCompactionMinTime=t.compaction_s,
        )

    def _run(self, node: _SyncNode) -> None:
        """Drive PySyncObj: one tick per socket event or wake-up, at least every ``tick_s``
        (``lone_tick_s`` without partners), no wait while hurried.

        A tick checks its election and step-down timers before it reads the
        sockets. After a stall (this thread starved of CPU or of the GIL for
        longer than a tick should take), the messages that arrived meanwhile are
        read first: otherwise a follower would call an election, and a leader
        step down, on heartbeats that are waiting in its own socket buffer.
        """
        stall_s = self._tuning.heartbeat_s / 2
        wait, ticked_at = 0.0, time.monotonic()
        while not self._stopping.is_set():
            try:
                if time.monotonic() - ticked_at > wait + stall_s:
                    node._poller.poll(0)
                wait, ticked_at = self._tick_wait(node), time.monotonic()
                node.doTick(wait)
            except Exception:
                _log.exception("raft tick failed on %s", self._self_addr)
                self._stopping.wait(self._tuning.tick_s)
            self._after_tick(node)

    def _tick_wait(self, node: _SyncNode) -> float:
        # A lone leader commits at the tick after it appends, and no socket event
        # wakes it: while a proposal waits, tick without sleeping.
        if self._hurry and not node.otherNodes and node._isLeader():
            return 0.0
        # Alone, a node has no heartbeat to send nor to hear: it is woken for work
        # (a proposal, a queued call, a connection) and otherwise ticks seldom.
        return self._tuning.tick_s if node.otherNodes else self._tuning.lone_tick_s

    def _heard(self, node: Any, message: Any) -> bool:
        """Note a partner's message (raft thread): when it last spoke and, for a ping, what
        it echoes; True for a ping, which is this module's own and PySyncObj never sees.

        A ping echoes the send time (this node's clock) of the last ping it got from here,
        and says how far its sender had applied the log: contact with that partner dates
        from the echoed time, never from when the ping arrived, so a ping held up in a
        network that was cut, and delivered when it heals, renews nothing.
        """
        addr = _addr(node)
        if addr is None or not isinstance(message, dict):
            return False
        self._heard_at[addr] = time.monotonic()
        if message.get("type") != PING:
            return False
        self._echo_for[addr] = float(message.get("sent") or 0.0)
        echo = message.get("echo")
        if isinstance(echo, float) and echo > self._contact_at.get(addr, float("-inf")):
            self._claimed[addr] = (echo, int(message.get("applied") or 0))
        return True

    def _ping(self, node: _SyncNode) -> None:
        """Tell every partner, every ``RAFT_PING_S``, that this node is here, how far it has
        applied the log, and the send time of the partner's last ping (its echo)."""
        now = time.monotonic()
        if now - self._pinged < config.RAFT_PING_S:
            return
        self._pinged = now
        for partner in list(node.otherNodes):
            message = {
                "type": PING,
                "sent": now,
                "applied": self._applied_index,
                "echo": self._echo_for.get(partner.id),
            }
            node._SyncObj__transport.send(partner, message)

    def _after_tick(self, node: _SyncNode) -> None:
        node.durable.sync()  # what this tick appended, before a later tick counts it committed
        while self._calls:
            call, future = self._calls.popleft()
            _run_call(call, future)
        for addr, (at, applied) in list(self._claimed.items()):
            if self._applied_index >= applied:  # caught up with what it knew when it spoke
                self._contact_at[addr] = max(at, self._contact_at.get(addr, float("-inf")))
                del self._claimed[addr]
        self._ping(node)
        leader = _addr(node._getLeader())
        if leader != self._leader_seen:
            self._leader_seen = leader
            self._notify_leader(leader)
        if not self._ready.is_set() and leader is not None and node.isReady():
            self._ready.set()

    def _notify_leader(self, leader: str | None) -> None:
        if self._on_leader_change is None:
            return
        try:
            self._on_leader_change(leader)
        except Exception:
            _log.exception("on_leader_change raised on %s", self._self_addr)

    def _apply_entry(self, index: int, command: bytes) -> object:
        """Apply entry ``index`` unless the state machine already holds it."""
        if index <= self._applied_index:
            return None
        self._applied_index = index
        try:
            return self._apply(command)
        except Exception as exc:
            _log.warning("apply raised on %s at index %d: %r", self._self_addr, index, exc)
            return _ApplyFailed(exc)

    def _save_dump(self, path: str, data: tuple[Any, Any, Any]) -> None:
        """PySyncObj's serializer hook: called on the raft thread right after an apply.

        The dump is written by a forked child (``odin.cluster.forked``), which calls
        ``snapshot`` on its copy of the state; ``_dump_progress`` reports the end.
        PySyncObj would rename ``path`` into place as soon as this returns, so this
        never returns: ``_HandedOff`` makes PySyncObj mark itself busy and rename
        nothing, and ask ``_dump_progress`` from then on.
        """
        last, prev, cluster = data
        members = tuple(sorted(n.id for n in cluster))

        def write(to: Path) -> None:
            write_dump(to, _Dump(self._snapshot(), _entry(last), _entry(prev), members))

        self._dumps.start(self._data_dir / DUMP_FILE, write)
        raise _HandedOff

    def _dump_progress(self) -> int:
        """PySyncObj's serializeChecker: called by each tick's compaction check."""
        return _PROGRESS[self._dumps.poll()]

    def _load_dump(self, path: str) -> tuple[Entry, Entry, set[Any]]:
        """PySyncObj's deserializer hook: at start, and when the leader sends its dump."""
        self._dumps.cancel()  # a dump from the leader replaces the one being written
        dump = read_dump(Path(path))
        self._finish_interrupted_compaction(dump)
        if dump.last[1] > self._applied_index:
            self._restore(dump.snapshot)
            self._applied_index = dump.last[1]
        return dump.last, dump.prev, {TCPNode(addr) for addr in dump.members}

    def _finish_interrupted_compaction(self, dump: _Dump) -> None:
        """Cut the journal at the dump, as PySyncObj does one tick after writing it.

        If the process dies between the two, PySyncObj would, at the next start,
        replace the whole journal by the dump's two entries and so drop the
        entries after the dump, which may be acknowledged commands.
        """
        journal = getattr(self._node, "_SyncObj__raftLog", None)
        if journal is None or len(journal) < 2:
            return
        pos = dump.prev[1] - journal[0][1]
        if not 0 < pos < len(journal) - 1:
            return
        if tuple(journal[pos]) == dump.prev and tuple(journal[pos + 1]) == dump.last:
            _log.warning("finishing an interrupted journal compaction at %d", dump.prev[1])
            journal.deleteEntriesTo(pos)

    # -- helpers ----------------------------------------------------------------

    def _running(self) -> _SyncNode:
        if self._node is None:
            raise Unavailable(f"raft node {self._self_addr} is not running")
        return self._node

    @contextlib.contextmanager
    def _hurrying(self) -> Iterator[Callable[[], None]]:
        """Count a proposal in flight until it settles (on the raft thread) or its caller leaves.

        Settling on the raft thread stops the no-wait ticks at once, so that the
        raft thread does not hold the GIL while the proposer wakes up.
        """
        open_ = [True]

        def settled() -> None:
            with self._hurry_lock:
                if open_[0]:
                    open_[0] = False
                    self._hurry -= 1

        with self._hurry_lock:
            self._hurry += 1
        try:
            yield settled
        finally:
            settled()

    def _on_raft_thread(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` between two ticks: PySyncObj's state is not thread-safe."""
        if threading.current_thread() is self._thread:
            return call()
        future: Future[_T] = Future()
        self._calls.append((call, future))
        if self._waker is not None:
            self._waker.wake()
        try:
            return future.result(_CALL_TIMEOUT_S)
        except TimeoutError:
            raise Unavailable(f"raft node {self._self_addr} did not answer") from None

    def _fail_calls(self) -> None:
        while self._calls:
            _, future = self._calls.popleft()
            if future.set_running_or_notify_cancel():
                future.set_exception(Unavailable(f"raft node {self._self_addr} stopped"))

    def _timeout(self, timeout: float) -> Unavailable:
        leader = self.leader()
        where = f"leader {leader}" if leader else "no leader known"
        return Unavailable(
            f"not committed within {timeout:g} s ({where}; no quorum reachable?);"
            " the command may still be applied later"
        )

    def _outcome(self, result: object, reason: int) -> object:
        if reason != FAIL_REASON.SUCCESS:
            raise _failure(reason, self.leader())
        if isinstance(result, _ApplyFailed):
            raise result.as_error()
        return result


def _run_call(call: Callable[[], Any], future: Future[Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(call())
    except Exception as exc:
        future.set_exception(exc)


def _resolve(future: asyncio.Future[_T], value: _T) -> None:
    if not future.done():
        future.set_result(value)


def _addr(node: Any) -> str | None:
    return None if node is None else str(node.id)


def _entry(raw: Any) -> Entry:
    command, index, term = raw
    return (bytes(command), int(index), int(term))


def _summarize(raw: dict[str, Any], ready: bool) -> dict[str, object]:
    """Keep the stable, JSON-ready part of PySyncObj's getStatus()."""
    partners = {
        key.removeprefix("partner_node_status_server_"): value == 2
        for key, value in raw.items()
        if key.startswith("partner_node_status_server_")
    }
    match = {
        key.removeprefix("match_idx_server_"): value
        for key, value in raw.items()
        if key.startswith("match_idx_server_")
    }
    return {
        "self": _addr(raw["self"]),
        "state": _STATES.get(raw["state"], str(raw["state"])),
        "leader": _addr(raw["leader"]),
        "term": raw["raft_term"],
        "commit_index": raw["commit_idx"],
        "last_applied": raw["last_applied"],
        "leader_commit_index": raw["leader_commit_idx"],
        "log_len": raw["log_len"],
        "has_quorum": raw["has_quorum"],
        "partners": partners,
        "match_index": match,
        "ready": ready,
        "uptime_s": raw["uptime"],
    }
