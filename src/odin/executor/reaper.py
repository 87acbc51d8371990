"""Reaping the orphans of jobs, which the engine adopts as a child subreaper.

A job that double-forks leaves a grandchild whose parent dies; with
PR_SET_CHILD_SUBREAPER the kernel hands it to the engine instead of to init, so the
engine can see it, kill it with its group and collect its exit status: no zombie is
left behind.

The hard part is not stealing anybody else's exit status: asyncio's child watcher
(and any ``subprocess`` call in another thread) waits for specific pids, and a
``waitpid(-1)`` here would take their status. So a zombie child is reaped only if

- it is not in the engine's own process group (plain ``subprocess`` children are;
  every job process is in a group of its own), and
- it was already a zombie at the previous sweep (same pid, same start time): a
  child somebody waits for is collected at once, so a zombie that stays one for a
  whole sweep interval is nobody's; and
- it is not one of the ``followed`` pids: a run's process is reaped by the engine
  through its pidfd, however long a busy event loop takes to get there.

Under load the engine has hundreds of children (runs held at their gates, runs
going) and nearly always a zombie among them, so a sweep looks at the children
alone (each thread's list in /proc) and at none of the followed ones: reading
/proc/*/stat for every process held the GIL far too long (bench/limits.md,
"Executor measurements").

Sweeps are periodic rather than driven by SIGCHLD, because a SIGCHLD handler would
replace the one some child watchers install.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
from collections.abc import Collection, Iterator

from odin import config
from odin.tasks import cancel_and_wait

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_log = logging.getLogger(__name__)

_ZombieKey = tuple[int, int]  # (pid, start time in clock ticks)


def set_child_subreaper(enabled: bool = True) -> None:
    """Make this process adopt its orphaned descendants (Linux ≥ 3.4)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(code)}")


def is_child_subreaper() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    flag = ctypes.c_int(0)
    if libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_GET_CHILD_SUBREAPER): {os.strerror(code)}")
    return flag.value != 0


def _has_zombie_child() -> bool:
    """Peek (without reaping) whether any child has exited."""
    try:
        return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return False


def _stat(pid: str) -> tuple[str, int, int, int] | None:
    """(state, parent, process group, start time) of ``pid``, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def _children_listed() -> bool:
    """Whether the kernel lists each thread's children (CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


_LISTED = _children_listed()


def _candidates() -> list[str]:
    """The pids that may be this process's children: each thread's list of children
    where the kernel keeps one (a dozen reads), else every process in /proc."""
    if not _LISTED:
        return [name for name in os.listdir("/proc") if name.isdigit()]
    found: list[str] = []
    for tid in os.listdir("/proc/self/task"):
        path = f"/proc/self/task/{tid}/children"
        with contextlib.suppress(OSError), open(path) as handle:  # OSError: a thread ended
            found += handle.read().split()
    return found


def _zombie_children(followed: Collection[int] = ()) -> Iterator[tuple[int, int, int]]:
    """(pid, process group, start time) of every zombie child not in ``followed``.

    The scan only happens when ``_has_zombie_child`` says there is something to find.
    """
    me = os.getpid()
    for name in _candidates():
        if int(name) in followed:
            continue
        stat = _stat(name)
        if stat is not None and stat[0] == "Z" and stat[1] == me:
            yield int(name), stat[2], stat[3]


class Reaper:
    """Collects the exit status of orphaned job processes adopted by the engine."""

    def __init__(
        self, interval_s: float = config.REAPER_INTERVAL_S, followed: Collection[int] = ()
    ) -> None:
        self._interval_s = interval_s
        self._followed = followed  # pids someone reaps (run processes): never looked at
        self._seen: set[_ZombieKey] = set()
        self._task: asyncio.Task[None] | None = None
        self.reaped = 0

    def start(self) -> None:
        """Become a child subreaper and sweep every ``interval_s`` on the running loop."""
        set_child_subreaper(True)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception:  # the reaper must outlive any surprise in /proc
                _log.exception("reaper sweep failed")
            await asyncio.sleep(self._interval_s)

    def sweep(self) -> int:
        """Reap zombies seen at the previous sweep too; returns how many were reaped."""
        if not _has_zombie_child():
            self._seen.clear()
            return 0
        zombies = set(self._orphan_zombies())
        count = sum(self._reap(pid) for pid, _ in zombies & self._seen)
        self._seen = zombies - self._seen
        self.reaped += count
        return count

    def _orphan_zombies(self) -> Iterator[_ZombieKey]:
        own_group = os.getpgrp()
        for pid, group, started in _zombie_children(self._followed):
            if group != own_group:
                yield pid, started

    @staticmethod
    def _reap(pid: int) -> bool:
        try:
            reaped, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return False
        except OSError as exc:
            if exc.errno != errno.EINTR:
                raise
            return False
        return reaped == pid
