"""Starting a run's process without stopping the engine meanwhile.

``subprocess`` (and so asyncio) starts a child with ``vfork`` and, in the Python
3.11 Debian ships (3.11.2), holds the GIL until the child has called ``exec``
(CPython gh-104372; 3.12 releases it). When the cores are busy the child waits for one before it gets
there: measured on the 2-core test machine, 0.4 ms per spawn when idle and about
5 ms when two CPU-bound processes run, with every thread of the engine (event
loop, Raft, HTTP) frozen for that long at each launch. ``os.posix_spawn`` holds
it as well. Here the C library's ``posix_spawn`` is called through ``ctypes``,
which releases the GIL for the call, from a thread of its own, so neither the
event loop nor the Raft thread waits for the child's ``exec``.

The child gets what ``subprocess.Popen(..., start_new_session=True)`` gives it:
stdin from the gate pipe (or /dev/null), stdout and stderr on one pipe, every
other descriptor closed, its own session, SIGPIPE and SIGXFSZ back to their
defaults (Python ignores them) and no blocked signal. The engine watches its exit
through a pidfd and reads its output on the event loop.

The compiled gate makes its own session once exec'd, so it is started in the
engine's: a child that calls ``setsid`` before its ``exec`` is, with the
kernel's autogroups, a new scheduling entity among every running job, and the
spawn thread waits until it gets a core. At 100 launches/s on the 2-core test
machine that made a spawn take 3.5-4.7 ms at the median and 16-19 ms at p90;
with the gate making its session, 0.4 and 5 ms.

What follows a start (``then``: putting a gated child in its run cgroup) runs in a
second thread, so that the spawn thread goes on to the next start meanwhile. Under
load both wait for the kernel rather than compute: at 130 launches/s on the 2-core
test machine a start took 7 ms and a cgroup migration 2.4 ms on average, which held
one thread to about 105 starts a second, and the engine fell behind by 0.12 s every
second. With the migration on its own thread it kept up with 130/s for 40 s.

Needs glibc 2.34 or later (``posix_spawn_file_actions_addclosefrom_np``);
``AVAILABLE`` is False elsewhere and the runner then uses asyncio's subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

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


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        for name in _NEEDED:
            getattr(libc, name).restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


_libc = _load_libc()
AVAILABLE = _libc is not None and hasattr(os, "pidfd_open")
_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="odin-spawn")
_after = ThreadPoolExecutor(max_workers=1, thread_name_prefix="odin-after-spawn")


class ChildEvents(Protocol):
    """What a started child reports (the shape of ``asyncio.SubprocessProtocol``)."""

    def pipe_data_received(self, fd: int, data: bytes) -> None: ...

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None: ...

    def process_exited(self) -> None: ...


FOLLOWED: set[int] = set()  # pids of the Child objects not reaped yet (see the Reaper)


class Child:
    """A started process: its pid, its exit status once reaped, its gate and output."""

    def __init__(
        self,
        pid: int,
        gate: int | None,
        output: int,
        events: ChildEvents,
        pidfd: int | None = None,
    ) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._gate = gate
        self._output: int | None = output
        self._events = events
        self._loop = asyncio.get_running_loop()
        self._pidfd = os.pidfd_open(pid) if pidfd is None else pidfd
        FOLLOWED.add(pid)
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
        FOLLOWED.discard(self.pid)
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self.returncode = os.waitstatus_to_exitcode(status)
        self._events.process_exited()


async def start(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: str,
    gated: bool,
    events: ChildEvents,
    then: Callable[[int], None] | None = None,
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
        gate_pair if gate_pair is not None else os.pipe2(os.O_CLOEXEC) if gated else (None, None)
    )
    out_read, out_write = os.pipe2(os.O_CLOEXEC)
    made = asyncio.get_running_loop().run_in_executor(
        _pool, _spawn_then, argv, env, cwd, gate_read, out_write, then, new_session
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
    return Child(pid, gate_write, out_read, events)


async def adopt(
    pid: int,
    pidfd: int,
    gate: int,
    output: int,
    events: ChildEvents,
    then: Callable[[int], None] | None = None,
) -> Child:
    """Follow ``pid``, a child of the engine that it did not start itself (a run forked
    by a nursery and handed down), through ``pidfd``, opened on it before it was checked,
    as ``start`` follows its own: ``pidfd``, ``gate`` and ``output`` (the engine's ends
    of its stdin and output) are taken over; ``then(pid)`` has run in the second thread
    when this returns. Cancelled meanwhile, the child is killed."""
    child = Child(pid, gate, output, events, pidfd)
    if then is not None:
        try:
            await asyncio.shield(asyncio.wrap_future(_after.submit(_then, then, pid)))
        except BaseException:
            child.close()
            raise
    return child


def _kill_orphan(made: asyncio.Future[tuple[int, Future[None] | None]]) -> None:
    if made.cancelled() or made.exception() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(made.result()[0], signal.SIGKILL)


def _spawn_then(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    stdin: int | None,
    output: int,
    then: Callable[[int], None] | None,
    new_session: bool,
) -> tuple[int, Future[None] | None]:
    """Start the child; ``then(pid)`` goes to a thread of its own, so that the next
    start does not wait for it (a cgroup migration waits for the kernel too)."""
    pid = _spawn(argv, env, cwd, stdin, output, new_session)
    return pid, None if then is None else _after.submit(_then, then, pid)


def _then(then: Callable[[int], None], pid: int) -> None:
    try:
        then(pid)
    except Exception:
        _log.exception("after starting pid %d", pid)


def _spawn(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    stdin: int | None,
    output: int,
    new_session: bool,
) -> int:
    """posix_spawn with the child set up as the module says; runs without the GIL."""
    assert _libc is not None
    libc = _libc
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
            defaults, empty = _sigsets(libc)
            _ok(libc.posix_spawnattr_setsigdefault(attr, defaults))
            _ok(libc.posix_spawnattr_setsigmask(attr, empty))
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


@functools.cache
def _sigsets(
    libc: ctypes.CDLL,
) -> tuple[ctypes.Array[ctypes.c_char], ctypes.Array[ctypes.c_char]]:
    """The signals reset to their default in the child, and the empty mask (made once:
    the spawn attributes take a copy)."""
    return _sigset(libc, (signal.SIGPIPE, signal.SIGXFSZ)), _sigset(libc, ())


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
