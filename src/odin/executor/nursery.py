"""Owners' nurseries: a Python interpreter, started once, that forks runs' processes.

Nearly all a Python job's start costs is the interpreter's own start-up, and the early
start (``odin.executor.early``) only moves that cost before the instant. A nursery pays it
once: it is the prelude (``pystart.py``) started with ``--nursery`` through the gate as
the job's owner, under the runs' limits, in a cgroup of its own; for each run the
engine sends it the job file, the working directory and the environment, with the
run's gate and output pipe attached, and it makes the run's process with ``clone``
and ``CLONE_PARENT``, so that the process is born the engine's child (one ``clone``
rather than two forks: the nursery's turn-around is what matters under load). That
process makes its own session, takes the descriptors, the environment and the
directory, and waits for the go line in the prelude, which runs the job's file as
``python3 -u job.py`` would. The engine opens a pidfd on the pid it is told, then
checks that the process it refers to is a child of its own running as the owner, not
followed already, and still not reaped once /proc was read (so a pid reused meanwhile
is never taken), before it follows it; then it puts it in its run cgroup, as it does a
gated process.

One nursery serves every run with the same owner, groups, interpreter and environment
but for the ``ODIN_`` variables (the interpreter reads nothing of those at its start).
What a run sees differently from a fresh interpreter: what the nursery set up before it
forked is shared with the owner's other runs (the seed of ``str`` hashes, the address
layout), and ``_socket`` and ``ctypes`` are in ``sys.modules``. A nursery serves one
request at a time; a run that would wait longer than ``config.NURSERY_QUEUE_S`` for its
turn (judged from the nursery's recent pace) starts through the gate instead, so that
in a huge burst both work at once; so does one waiting when the nursery has answered
nothing for ``config.NURSERY_REPLY_S`` (it is ended). That limit is high on purpose:
under load a run through the gate costs several times the CPU of one forked, and a
short limit sent more and more runs through the gate until the engine fell behind.
A nursery sent nothing for ``config.NURSERY_IDLE_S`` exits, so that an owner has no
process left soon after their last run; at most ``config.NURSERY_MAX`` live at once,
and at most ``config.NURSERY_USER_MAX`` of one user: a user's new one ends that user's
least recently used idle one (or, all busy, the run starts through the gate), so that
a user with many distinct environments never takes another user's place. The
measurements behind these figures are in bench/limits.md ("Executor measurements").
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import marshal
import os
import signal
import socket
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from odin import config
from odin.executor import gate
from odin.executor.cgroup import Containment, RunCgroup, enter_new
from odin.executor.limits import RLIMITS
from odin.executor.spawn import Child, ChildEvents, Spawner, Then
from odin.executor.spec import LaunchSpec

_log = logging.getLogger(__name__)

NURSERY_FLAG = "--nursery"
_READY = b"ready"
_FIRST_PACE_S = 0.002  # about a fork and its answer (bench/limits.md)
_PACE_WEIGHT = 0.2
_PACKET_MAX = 1 << 16  # a run whose request is bigger starts through the gate
# The number of the clone system call, by machine: a nursery makes each run with it
# (None: no nurseries on this machine).
CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220, "ppc64le": 120}.get(os.uname().machine)


@dataclass(frozen=True)
class Key:
    """What runs served by one nursery have in common."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    command: tuple[str, ...]  # the interpreter and the prelude, without the job's file
    env: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, spec: LaunchSpec) -> Key | None:
        if spec.early_argv is None:
            return None
        env = tuple(sorted((k, v) for k, v in spec.env.items() if not k.startswith("ODIN_")))
        groups = tuple(sorted(set(spec.groups)))
        return cls(spec.uid, spec.gid, groups, spec.early_argv[:-1], env)


class _Output:
    """What a nursery itself writes (a traceback, if it fails) goes to the engine's log."""

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        _log.warning("Python nursery: %s", data.decode(errors="replace").rstrip())

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        pass

    def process_exited(self) -> None:
        pass


class _Request:
    """A request not sent yet: its packet and the run's ends of its pipes, closed once sent."""

    def __init__(self, packet: bytes, fds: list[int], loop: asyncio.AbstractEventLoop) -> None:
        self.packet = packet
        self.fds = fds
        self.answer: asyncio.Future[bytes] = loop.create_future()

    def drop(self) -> None:
        """Close the run's ends (sent, or never to be)."""
        fds, self.fds = self.fds, []
        for fd in fds:
            os.close(fd)


class Nursery:
    """One owner's nursery: forks a run's process on request."""

    def __init__(
        self,
        key: Key,
        link: socket.socket,
        process: Child,
        cgroup: RunCgroup | None,
        gone: Callable[[Nursery], None],
    ) -> None:
        self.key = key
        self.process = process
        self.cgroup = cgroup
        self.answered_at = asyncio.get_running_loop().time()
        self.pace = _FIRST_PACE_S  # seconds per request when they queue (a moving average)
        self._since: float | None = None  # when the request answered next began its turn
        self._link = link
        self._gone = gone
        self._queue: deque[_Request] = deque()  # not sent yet
        self._sent: deque[asyncio.Future[bytes]] = deque()  # answered in this order
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.closed = False

    @property
    def busy(self) -> int:
        return len(self._sent) + len(self._queue)

    def would_wait(self) -> float:
        """About how long a request made now would wait for its answer."""
        return (self.busy + 1) * self.pace

    async def fork(self, path: str, cwd: str, env: dict[str, str], fds: tuple[int, int]) -> int:
        """The pid of a new run's process waiting on ``fds`` (its gate, its output; taken
        over, closed once sent); -1 if the nursery could not make one or the request is
        too big for one packet. Raises ``OSError`` if the request could not be sent,
        ``TimeoutError`` if the nursery answers nothing for ``config.NURSERY_REPLY_S``
        while this waits."""
        loop = asyncio.get_running_loop()
        request = _Request(marshal.dumps((path, cwd, env)), list(fds), loop)
        if len(request.packet) > _PACKET_MAX:
            request.drop()
            return -1
        self._queue.append(request)
        try:
            self._send()
            while True:  # a stall is no answer at all for that long, not a long queue
                try:
                    async with asyncio.timeout(config.NURSERY_REPLY_S):
                        reply = await asyncio.shield(request.answer)
                    break
                except TimeoutError:
                    if loop.time() - self.answered_at >= config.NURSERY_REPLY_S:
                        raise
        finally:
            if request in self._queue:  # given up before it was sent
                self._queue.remove(request)
                request.drop()
        try:
            return int(reply)
        except ValueError:
            return -1

    def _send(self) -> None:
        """Send queued requests, as many as the socket takes; the rest go as answers come
        back."""
        while self._queue:
            request = self._queue.popleft()
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", request.fds))]
            try:
                self._link.sendmsg([request.packet], rights)  # whole or not at all
            except BlockingIOError:
                self._queue.appendleft(request)
                return
            except OSError as error:
                request.drop()
                request.answer.set_exception(error)
                raise
            request.drop()
            if not self._sent:
                self.answered_at = self._since = asyncio.get_running_loop().time()
            self._sent.append(request.answer)

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                reply = await loop.sock_recv(self._link, 64)
                if not reply:
                    break
                now = self.answered_at = loop.time()
                if self._since is not None:
                    self.pace += (now - self._since - self.pace) * _PACE_WEIGHT
                if self._sent:
                    answer = self._sent.popleft()
                    if not answer.done():
                        answer.set_result(reply)
                self._since = now if self._sent else None
                self._send()
        except OSError:
            pass
        finally:
            self._fail_all()
            if not self.closed:  # not ended by the engine: it exited
                self.closed = True
                self._gone(self)

    def _fail_all(self) -> None:
        gone = ConnectionError("the nursery is gone")
        for answer in self._sent:
            if not answer.done():
                answer.set_exception(gone)
        self._sent.clear()
        for request in self._queue:
            request.drop()
            if not request.answer.done():
                request.answer.set_exception(gone)
        self._queue.clear()

    async def close(self, box: Containment | None) -> None:
        """End the nursery (runs it made are the engine's children: they go on)."""
        self.closed = True
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        self._link.close()
        self.process.close()
        cgroup, self.cgroup = self.cgroup, None
        if cgroup is not None and box is not None:
            await box.release(cgroup)


class Nurseries:
    """The engine's nurseries, one per ``Key``, started on first use through the compiled
    ``gate`` by ``spawner``, each in a cgroup of ``box`` (if any). They belong to the
    event loop of their first use, until ``close``."""

    def __init__(self, gate: Path, spawner: Spawner, box: Containment | None) -> None:
        self._gate = gate
        self._spawner = spawner
        self._box = box
        self._open: dict[Key, Nursery] = {}
        self._starting: dict[Key, asyncio.Future[Nursery | None]] = {}
        self._ending: set[asyncio.Task[None]] = set()

    async def start_run(
        self, spec: LaunchSpec, events: ChildEvents, then: Then | None
    ) -> Child | None:
        """The run's process, forked by its owner's nursery and followed like a gated
        one (``then(pid)`` has run), waiting for its go line; None when there is no
        nursery for it (the run then starts through the gate)."""
        key = Key.of(spec)
        if key is None or CLONE is None:
            return None
        found = await self._nursery(key)
        if found is None or found.would_wait() > config.NURSERY_QUEUE_S:
            return None
        try:
            gate_read, gate_write = os.pipe2(os.O_CLOEXEC)
        except OSError:  # out of descriptors: the gate's start says so
            return None
        try:
            out_read, out_write = os.pipe2(os.O_CLOEXEC)
        except OSError:
            os.close(gate_read)
            os.close(gate_write)
            return None
        kept = [gate_write, out_read]
        try:
            pid = await found.fork(
                spec.early_argv[-1] if spec.early_argv else "",
                spec.cwd,
                dict(spec.env),
                (gate_read, out_write),
            )
            pidfd = None if pid == -1 else _claim(pid, spec.uid, self._spawner.followed)
            if pidfd is None:
                if pid != -1:
                    _log.warning("a nursery of uid %d named pid %d: not its run", spec.uid, pid)
                return None
            kept = []
            return await self._spawner.adopt(pid, pidfd, gate_write, out_read, events, then)
        except ConnectionError:  # it exited (unused for a while, or killed) meanwhile
            await self._end(found)
            return None
        except (OSError, TimeoutError) as error:
            _log.warning("a nursery of uid %d failed (%s): it is ended", spec.uid, error)
            await self._end(found)
            return None
        finally:
            for fd in kept:
                os.close(fd)

    async def close(self) -> None:
        """End every nursery (the engine stops)."""
        for waiting in list(self._starting.values()):
            with contextlib.suppress(Exception):
                await waiting
        for found in list(self._open.values()):
            await self._end(found)

    async def _nursery(self, key: Key) -> Nursery | None:
        found = self._open.get(key)
        if found is not None and not found.closed:
            return found
        if found is not None:
            await self._end(found)
        if key in self._starting:
            return await asyncio.shield(self._starting[key])
        if not self._room(key.uid):
            return None
        starting = self._starting[key] = asyncio.get_running_loop().create_future()
        made: Nursery | None = None
        try:
            made = await self._start(key)
        finally:
            del self._starting[key]
            if made is not None:
                self._open[key] = made
            starting.set_result(made)
        return made

    def _room(self, uid: int) -> bool:
        """Whether a new nursery of ``uid`` may start, within ``config.NURSERY_USER_MAX``
        (the user's least recently used idle ones are ended to make room) and
        ``config.NURSERY_MAX``; nothing is ended when it may not."""
        theirs = sorted(
            (found for found in self._open.values() if found.key.uid == uid),
            key=lambda found: found.answered_at,
        )
        starting = sum(key.uid == uid for key in self._starting)
        excess = max(0, len(theirs) + starting + 1 - config.NURSERY_USER_MAX)
        idle = [found for found in theirs if not found.busy][:excess]
        total = len(self._open) + len(self._starting) - excess
        if len(idle) < excess or total >= config.NURSERY_MAX:
            return False
        for found in idle:
            self._gone(found)
        return True

    def _gone(self, found: Nursery) -> None:
        """A nursery's socket closed (it exited: unused, or killed), or it makes room for
        another of its user's: forget it at once, end it in a task of its own."""
        if self._open.get(found.key) is found:
            del self._open[found.key]
        task = asyncio.ensure_future(self._end(found))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end(self, found: Nursery) -> None:
        if self._open.get(found.key) is found:
            del self._open[found.key]
        await found.close(self._box)

    async def _start(self, key: Key) -> Nursery | None:
        """Start a nursery for ``key`` through the gate and wait until it is ready."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = gate.argv(
            self._gate,
            uid=key.uid,
            gid=key.gid,
            groups=key.groups,
            limits=tuple(value for _name, value in RLIMITS),
            cwd="/",
            command=(*key.command, NURSERY_FLAG, str(config.NURSERY_IDLE_S), str(CLONE)),
            early=True,
        )
        cgroup: list[RunCgroup | None] = []
        box = self._box

        def enter(pid: int) -> None:
            cgroup.append(enter_new(box, pid))

        try:
            process = await self._spawner.start(
                argv,
                gate.gate_env(dict(key.env)),
                cwd="/",
                gated=True,
                events=_Output(),
                then=enter,
                new_session=False,
                gate_pair=(theirs.detach(), os.dup(ours.fileno())),
            )
        except OSError as error:
            ours.close()
            _log.warning("no Python nursery for uid %d: %s", key.uid, error)
            return None
        ours.setblocking(False)
        process.release(gate.PLACED_LINE)  # it is in its cgroup: the interpreter may start
        try:
            async with asyncio.timeout(config.NURSERY_START_S):
                ready = await asyncio.get_running_loop().sock_recv(ours, 64)
        except (OSError, TimeoutError):
            ready = b""
        found = Nursery(key, ours, process, cgroup[0] if cgroup else None, self._gone)
        if ready != _READY:
            _log.warning("the Python nursery of uid %d did not start", key.uid)
            await found.close(box)
            return None
        return found


def _claim(pid: int, uid: int, followed: Collection[int]) -> int | None:
    """A pidfd of ``pid`` if it is the run a nursery of ``uid`` made (``_ours``), else None.

    The pidfd is opened before /proc is read, and the process it refers to must still be
    there (not reaped, a zombie at most) after that, so the pid read is its own: a pid
    reaped and reused before or during the check is never followed.
    """
    if pid <= 1:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        if _ours(pid, uid, followed):
            signal.pidfd_send_signal(pidfd, 0)  # ProcessLookupError once it was reaped
            return pidfd
    except OSError:
        pass
    os.close(pidfd)
    return None


def _ours(pid: int, uid: int, followed: Collection[int]) -> bool:
    """Whether ``pid`` is a child of this engine, running as ``uid`` and not in ``followed``
    (a run already): what a nursery names must be the run it made, nothing else."""
    if pid <= 1 or pid in followed:
        return False
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            status = handle.read()
    except OSError:
        return False
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    parent = fields.get("PPid", "").strip()
    uids = set(fields.get("Uid", "").split())
    return parent == str(os.getpid()) and uids == {str(uid)}
