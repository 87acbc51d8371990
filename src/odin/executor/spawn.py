"""Starting a run's process without stopping the engine meanwhile.

``subprocess`` (and so asyncio) holds the GIL until the child has called ``exec``
(CPython gh-104372, fixed in 3.12), and ``os.posix_spawn`` as well, so every thread of
the engine (event loop, Raft, HTTP) would stop at each launch while the child waits
for a core. A ``Spawner`` calls the C library's ``posix_spawn`` through ``ctypes``,
which releases the GIL for the call, from a thread of its own.

The child gets what ``subprocess.Popen(..., start_new_session=True)`` gives it:
stdin from the gate pipe (or /dev/null), stdout and stderr on one pipe, every
other descriptor closed, its own session, SIGPIPE and SIGXFSZ back to their
defaults (Python ignores them) and no blocked signal. The engine watches its exit
through a pidfd and reads its output on the event loop.

The compiled gate makes its own session once exec'd, so it is started in the
engine's: a child that calls ``setsid`` before its ``exec`` is, with the kernel's
autogroups, a new scheduling entity that waits for a core before it gets there.
What follows a start (``then``: putting a gated child in its run cgroup) runs in a
second thread, so that the spawn thread goes on to the next start meanwhile: both
wait for the kernel under load. The measurements behind these choices are in
bench/limits.md ("Executor measurements").

Needs glibc 2.34 or later (``posix_spawn_file_actions_addclosefrom_np``) and pidfds;
``Spawner.load`` is None elsewhere and runs start through asyncio's subprocess
(``SubprocessStarter``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, cast

from odin import config

_log = logging.getLogger(__name__)

_SETSIGDEF, _SETSIGMASK, _SETSID = 0x04, 0x08, 0x80  # glibc's POSIX_SPAWN_* flags
_OPAQUE_BYTES = 1024  # room for posix_spawn_file_actions_t, posix_spawnattr_t, sigset_t
_NEEDED = (
    "posix_spawn",
    "posix_spawn_file_actions_init",
    "posix_spawn_file_actions_destroy",
    "posix_spawn_file_actions_adddup2",
    "posix_spawn_file_actions_addopen",
    "posix_spawn_file_actions_addchdir_np",
    "posix_spawn_file_actions_addclosefrom_np",
    "posix_spawnattr_init",
    "posix_spawnattr_destroy",
    "posix_spawnattr_setflags",
    "posix_spawnattr_setsigdefault",
    "posix_spawnattr_setsigmask",
    "sigemptyset",
    "sigaddset",
)

Then = Callable[[int], None]
"""What runs once a child exists, given its pid (putting it in its run cgroup)."""


class ChildEvents(Protocol):
    """What a started child reports (the shape of ``asyncio.SubprocessProtocol``)."""

    def pipe_data_received(self, fd: int, data: bytes) -> None: ...

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None: ...

    def process_exited(self) -> None: ...


class Process(Protocol):
    """A started run process, whichever way it was started."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    def send(self, line: bytes) -> None: ...

    def release(self, line: bytes) -> None: ...

    def close_gate(self) -> None: ...

    def close(self) -> None: ...


class Starter(Protocol):
    """Starts a run's process (``Spawner``, or ``SubprocessStarter`` where it cannot)."""

    async def start(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: str,
        gated: bool,
        events: ChildEvents,
        then: Then | None = None,
        new_session: bool = True,
    ) -> Process: ...


class Child:
    """A started process: its pid, its exit status once reaped, its gate and output.

    Its pid is in ``followed`` (the spawner's) until it is reaped: the reaper leaves it
    alone, and a nursery may not name it as a new run."""

    def __init__(
        self,
        pid: int,
        gate: int | None,
        output: int,
        events: ChildEvents,
        followed: set[int],
        pidfd: int | None = None,
    ) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._gate = gate
        self._output: int | None = output
        self._events = events
        self._followed = followed
        self._loop = asyncio.get_running_loop()
        self._pidfd = os.pidfd_open(pid) if pidfd is None else pidfd
        followed.add(pid)
        self._loop.add_reader(self._pidfd, self._reap)
        os.set_blocking(output, False)
        self._loop.add_reader(output, self._read)

    def send(self, line: bytes) -> None:
        """Send ``line`` through the gate and keep it open."""
        if self._gate is not None:
            with contextlib.suppress(OSError):  # a child that died at its gate
                os.write(self._gate, line)

    def release(self, line: bytes) -> None:
        """Send ``line`` through the gate and close it."""
        self.send(line)
        self.close_gate()

    def close_gate(self) -> None:
        """Close the gate unopened: the child reads end-of-file and exits unrun."""
        if self._gate is not None:
            os.close(self._gate)
            self._gate = None

    def close(self) -> None:
        """Stop reading its output and close the gate; a child still alive is killed
        (and reaped when it has died)."""
        self.close_gate()
        self._stop_reading()
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def _read(self) -> None:
        assert self._output is not None
        try:
            data = os.read(self._output, config.OUTPUT_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._events.pipe_data_received(1, data)
            return
        self._stop_reading()
        self._events.pipe_connection_lost(1, None)

    def _stop_reading(self) -> None:
        if self._output is not None:
            self._loop.remove_reader(self._output)
            os.close(self._output)
            self._output = None

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: the status is lost
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        self._followed.discard(self.pid)
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self.returncode = os.waitstatus_to_exitcode(status)
        self._events.process_exited()


class Spawner:
    """Starts processes with the C library's ``posix_spawn``, off the GIL: the library,
    the spawn thread, the thread for what follows a start, and the pids it follows."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._libc = libc
        # The signals reset to their default in the child, and the empty mask (made once:
        # the spawn attributes take a copy).
        self._defaults = _sigset(libc, (signal.SIGPIPE, signal.SIGXFSZ))
        self._empty = _sigset(libc, ())
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="odin-spawn")
        self._after = ThreadPoolExecutor(max_workers=1, thread_name_prefix="odin-after-spawn")
        self.followed: set[int] = set()  # pids of the Child objects not reaped yet

    @classmethod
    def load(cls) -> Spawner | None:
        """A spawner, or None where the C library lacks what it needs (or there are no pidfds)."""
        if not hasattr(os, "pidfd_open"):
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            for name in _NEEDED:
                getattr(libc, name).restype = ctypes.c_int
            return cls(libc)
        except (OSError, AttributeError):
            return None

    def close(self) -> None:
        """Let its threads end (the engine stops)."""
        self._pool.shutdown(wait=False)
        self._after.shutdown(wait=False)

    async def start(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: str,
        gated: bool,
        events: ChildEvents,
        then: Then | None = None,
        new_session: bool = True,
        gate_pair: tuple[int, int] | None = None,
    ) -> Child:
        """Start ``argv`` (an absolute path first), in a session of its own unless
        ``new_session`` is False (a program that makes its own); with ``gated`` its
        stdin is a pipe that ``Child.release`` writes the go line to, else /dev/null.
        ``gate_pair`` (the child's end, the engine's end; both taken over) is used instead
        of that pipe (a socket pair: a Python nursery's link, ``odin.executor.nursery``).
        ``then(pid)`` runs in a second thread right after the start, and this returns once
        it has (an error in it is logged, never raised: the child exists and must be
        followed).

        Raises ``OSError`` when the program cannot be started (its errno and message).
        """
        gate_read, gate_write = (
            gate_pair
            if gate_pair is not None
            else os.pipe2(os.O_CLOEXEC)
            if gated
            else (None, None)
        )
        out_read, out_write = os.pipe2(os.O_CLOEXEC)
        made = asyncio.get_running_loop().run_in_executor(
            self._pool, self._spawn_then, argv, env, cwd, gate_read, out_write, then, new_session
        )
        try:
            pid, after = await asyncio.shield(made)
            if after is not None:
                await asyncio.shield(asyncio.wrap_future(after))
        except BaseException:
            for fd in (gate_write, out_read):
                if fd is not None:
                    os.close(fd)
            made.add_done_callback(_kill_orphan)  # cancelled: a child made meanwhile must not run
            raise
        finally:
            os.close(out_write)
            if gate_read is not None:
                os.close(gate_read)
        return Child(pid, gate_write, out_read, events, self.followed)

    async def adopt(
        self,
        pid: int,
        pidfd: int,
        gate: int,
        output: int,
        events: ChildEvents,
        then: Then | None = None,
    ) -> Child:
        """Follow ``pid``, a child of the engine that it did not start itself (a run forked
        by a nursery and handed down), through ``pidfd``, opened on it before it was checked,
        as ``start`` follows its own: ``pidfd``, ``gate`` and ``output`` (the engine's ends
        of its stdin and output) are taken over; ``then(pid)`` has run in the second thread
        when this returns. Cancelled meanwhile, the child is killed."""
        child = Child(pid, gate, output, events, self.followed, pidfd)
        if then is not None:
            try:
                await asyncio.shield(asyncio.wrap_future(self._after.submit(_then, then, pid)))
            except BaseException:
                child.close()
                raise
        return child

    def _spawn_then(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        stdin: int | None,
        output: int,
        then: Then | None,
        new_session: bool,
    ) -> tuple[int, Future[None] | None]:
        """Start the child; ``then(pid)`` goes to a thread of its own, so that the next
        start does not wait for it (a cgroup migration waits for the kernel too)."""
        pid = self._spawn(argv, env, cwd, stdin, output, new_session)
        return pid, None if then is None else self._after.submit(_then, then, pid)

    def _spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        stdin: int | None,
        output: int,
        new_session: bool,
    ) -> int:
        """posix_spawn with the child set up as the module says; runs without the GIL."""
        libc = self._libc
        actions = ctypes.create_string_buffer(_OPAQUE_BYTES)
        attr = ctypes.create_string_buffer(_OPAQUE_BYTES)
        _ok(libc.posix_spawn_file_actions_init(actions))
        try:
            _ok(libc.posix_spawnattr_init(attr))
            try:
                if stdin is None:
                    null = b"/dev/null"
                    _ok(libc.posix_spawn_file_actions_addopen(actions, 0, null, os.O_RDONLY, 0))
                else:
                    _ok(libc.posix_spawn_file_actions_adddup2(actions, stdin, 0))
                _ok(libc.posix_spawn_file_actions_adddup2(actions, output, 1))
                _ok(libc.posix_spawn_file_actions_adddup2(actions, output, 2))
                _ok(libc.posix_spawn_file_actions_addclosefrom_np(actions, 3))
                _ok(libc.posix_spawn_file_actions_addchdir_np(actions, os.fsencode(cwd)))
                _ok(libc.posix_spawnattr_setsigdefault(attr, self._defaults))
                _ok(libc.posix_spawnattr_setsigmask(attr, self._empty))
                flags = _SETSIGDEF | _SETSIGMASK | (_SETSID if new_session else 0)
                _ok(libc.posix_spawnattr_setflags(attr, ctypes.c_short(flags)))
                args = [os.fsencode(a) for a in argv]
                envp = [os.fsencode(f"{k}={v}") for k, v in env.items()]
                c_argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
                c_envp = (ctypes.c_char_p * (len(envp) + 1))(*envp, None)
                pid = ctypes.c_int(0)
                _ok(libc.posix_spawn(ctypes.byref(pid), args[0], actions, attr, c_argv, c_envp))
                return pid.value
            finally:
                libc.posix_spawnattr_destroy(attr)
        finally:
            libc.posix_spawn_file_actions_destroy(actions)


class _TransportProcess:
    """asyncio's subprocess transport seen as a ``Process``."""

    def __init__(self, transport: asyncio.SubprocessTransport) -> None:
        self._transport = transport
        self.pid: int = transport.get_pid()

    @property
    def returncode(self) -> int | None:
        return self._transport.get_returncode()

    def send(self, line: bytes) -> None:
        gate = self._transport.get_pipe_transport(0)
        if isinstance(gate, asyncio.WriteTransport):
            gate.write(line)

    def release(self, line: bytes) -> None:
        self.send(line)
        self.close_gate()

    def close_gate(self) -> None:
        gate = self._transport.get_pipe_transport(0)
        if gate is not None:
            gate.close()

    def close(self) -> None:
        self._transport.close()


class SubprocessStarter:
    """Starts processes with asyncio's subprocess, where there is no ``Spawner``: the
    event loop waits for each child's ``exec``, and ``then`` runs on it."""

    followed: Collection[int] = frozenset()  # asyncio's child watcher reaps its own

    async def start(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: str,
        gated: bool,
        events: ChildEvents,
        then: Then | None = None,
        new_session: bool = True,
    ) -> Process:
        protocol = cast(asyncio.SubprocessProtocol, events)  # a run's events are one
        loop = asyncio.get_running_loop()
        transport, _ = await loop.subprocess_exec(
            lambda: protocol,
            *argv,
            stdin=subprocess.PIPE if gated else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=new_session,
        )
        if then is not None:
            then(transport.get_pid())
        return _TransportProcess(transport)


def _kill_orphan(made: asyncio.Future[tuple[int, Future[None] | None]]) -> None:
    if made.cancelled() or made.exception() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(made.result()[0], signal.SIGKILL)


def _then(then: Then, pid: int) -> None:
    try:
        then(pid)
    except Exception:
        _log.exception("after starting pid %d", pid)


def _sigset(libc: ctypes.CDLL, signals: Sequence[int]) -> ctypes.Array[ctypes.c_char]:
    found = ctypes.create_string_buffer(_OPAQUE_BYTES)
    _ok(libc.sigemptyset(found), errno_set=True)
    for number in signals:
        _ok(libc.sigaddset(found, int(number)), errno_set=True)
    return found


def _ok(code: int, *, errno_set: bool = False) -> None:
    """posix_spawn* return an errno value; sig*set return -1 and set errno."""
    if code == 0:
        return
    number = ctypes.get_errno() if errno_set else code
    raise OSError(number, os.strerror(number))
