"""Containing each run in a cgroup v2, so that nothing it starts outlives it.

A process group is not a container: a job that calls ``setsid()`` or daemonises
leaves its group and would survive the run. Every process a run forks stays in
the run's cgroup whatever it does, and ``cgroup.kill`` (Linux ≥ 5.14) SIGKILLs
them all at once. So when the host has a writable cgroup2 mount with
``cgroup.kill`` (root engine; a systemd unit needs ``Delegate=yes``), each run
gets ``<engine's cgroup>/odin-<engine pid>/run-<n>``; otherwise ``detect``
returns None and the executor falls back to killing the process group and
reaping orphans (``odin.executor.reaper``), which cannot kill an escapee.

How a run enters its cgroup before any of its code runs, without ``preexec_fn``
(unsafe in a threaded engine): the run starts as its owner under a start gate
(``odin.executor.gate``) that blocks reading its stdin; the engine writes the pid
into the cgroup, then sends the go line; the gate enters the working directory
(as the owner) and execs the job with stdin on /dev/null. If the engine dies
first, the gate reads end-of-file and exits without running the job. A root
engine always uses the gate, with or without a cgroup.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from odin import config

_log = logging.getLogger(__name__)


def cgroup2_mount(mounts_file: str = config.CGROUP_MOUNTS_FILE) -> Path | None:
    """Where the cgroup2 hierarchy is mounted (pure v2 or the hybrid 'unified'), if anywhere."""
    try:
        with open(mounts_file) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


def own_cgroup() -> str:
    """This process's cgroup2 path (the ``0::`` line of /proc/self/cgroup)."""
    try:
        with open("/proc/self/cgroup") as handle:
            for line in handle:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return "/"


@dataclass
class RunCgroup:
    """One run's cgroup: processes go in, ``kill`` ends every one of them."""

    path: Path

    def add(self, pid: int) -> None:
        fd = os.open(self.path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"%d" % pid)
        finally:
            os.close(fd)

    def populated(self) -> bool:
        return self.emptied() is False

    def emptied(self) -> bool | None:
        """Whether no live process is left in it (zombies do not count); None if it is gone."""
        try:
            fd = os.open(self.path / "cgroup.events", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            events = os.read(fd, 256)
        except OSError:
            return None
        finally:
            os.close(fd)
        return b"populated 0" in events

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            (self.path / "cgroup.kill").write_text("1")

    def remove(self) -> bool:
        """Remove the directory if nothing lives in it (zombies do not count); True if gone."""
        try:
            self.path.rmdir()
        except OSError:
            return False
        return True


@dataclass
class Containment:
    """The engine's directory of run cgroups (``odin-<pid>``), one child per live run.

    A run's cgroup that its run left empty is kept for a later run rather than
    removed, which saves the kernel time of making and removing one per run under load
    (bench/limits.md, "Executor measurements"). Nothing can enter an empty cgroup but what the engine
    puts in it, and ``cgroup.kill`` acts on what is in it when written, so a run
    never meets another's processes there.
    """

    base: Path
    _numbers: itertools.count[int] = field(default_factory=itertools.count)
    _spare: deque[RunCgroup] = field(default_factory=deque)  # appended and popped atomically

    def new_run(self) -> RunCgroup:
        """An empty cgroup for a run: a spare one, or a new one."""
        with contextlib.suppress(IndexError):
            return self._spare.pop()
        while True:
            path = self.base / f"run-{next(self._numbers)}"
            try:
                path.mkdir()
            except FileExistsError:  # another Containment's, in the same directory
                continue
            return RunCgroup(path)

    def give_back(self, cgroup: RunCgroup) -> bool:
        """Take back a finished run's cgroup if nothing lives in it any more (kept as a
        spare, or removed when enough are kept); False if something still does."""
        emptied = cgroup.emptied()
        if emptied is None:
            return True  # gone already
        if not emptied:
            return False
        if len(self._spare) < config.CGROUP_SPARES:
            self._spare.append(cgroup)
            return True
        return cgroup.remove()

    async def release(self, cgroup: RunCgroup) -> None:
        """Take back a run's cgroup; if something is left in it, kill it and wait (bounded)
        until it is empty first. The common case, a run whose processes have all ended,
        costs one read."""
        if self.give_back(cgroup):
            return
        cgroup.kill()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.CGROUP_EMPTY_WAIT_S
        while cgroup.populated() and loop.time() < deadline:
            await asyncio.sleep(config.GROUP_POLL_S)
        if not self.give_back(cgroup):
            _log.warning("run cgroup %s is not empty after cgroup.kill: left as it is", cgroup.path)

    def spares(self) -> set[Path]:
        return {cgroup.path for cgroup in self._spare}

    def close(self) -> None:
        while self._spare:
            self._spare.pop().remove()
        with contextlib.suppress(OSError):
            self.base.rmdir()


def detect(*, root: bool) -> Containment | None:
    """Containment on this host for an engine that is ``root`` or not, or None (not root,
    no cgroup2, no cgroup.kill, read-only). The caller closes it when the engine stops."""
    mount = cgroup2_mount()
    if not root or mount is None:
        return None
    parent = mount / own_cgroup().lstrip("/")
    _clean_stale(parent)
    base = _engine_dir(parent, os.getpid())
    try:
        base.mkdir(exist_ok=True)
    except OSError as error:
        _log.info("no cgroup containment (%s): runs are contained by process group only", error)
        return None
    if not (base / "cgroup.kill").exists():  # the root cgroup has none: look at a child
        _log.info("no cgroup.kill (Linux < 5.14): runs are contained by process group only")
        with contextlib.suppress(OSError):
            base.rmdir()
        return None
    return Containment(base)


def _clean_stale(parent: Path) -> None:
    """Kill and remove the run cgroups of engines that died (SIGKILL leaves them behind)."""
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            name = entry.name
            if not name.startswith(config.CGROUP_DIR_PREFIX) or not entry.is_dir():
                continue
            pid = name.removeprefix(config.CGROUP_DIR_PREFIX)
            if pid.isdigit() and not alive(int(pid)):
                _remove_tree(entry)


def _engine_dir(parent: Path, engine_pid: int) -> Path:
    """Where the engine with ``engine_pid`` keeps its run cgroups, under ``parent``."""
    return parent / f"{config.CGROUP_DIR_PREFIX}{engine_pid}"


def end_runs_of(engine_pid: int) -> None:
    """Kill and remove what a dead engine (a child of this process's cgroup) left running."""
    mount = cgroup2_mount()
    if mount is None:
        return
    base = _engine_dir(mount / own_cgroup().lstrip("/"), engine_pid)
    if base.is_dir() and not alive(engine_pid):
        _remove_tree(base)


def alive(pid: int, *, group: bool = False) -> bool:
    """Whether process ``pid`` (with ``group``: process group ``pid``) has a live member."""
    try:
        if group:
            os.killpg(pid, 0)
        else:
            os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_tree(base: Path) -> None:
    """Kill every run left in ``base`` and remove it (runs at start, so it may wait a little)."""
    runs = [RunCgroup(child) for child in base.iterdir() if child.is_dir()]
    for run in runs:
        run.kill()
    for run in runs:
        deadline = time.monotonic() + config.CGROUP_EMPTY_WAIT_S
        while run.populated() and time.monotonic() < deadline:
            time.sleep(config.GROUP_POLL_S)
        with contextlib.suppress(OSError):
            run.path.rmdir()
    with contextlib.suppress(OSError):
        base.rmdir()


def enter_new(box: Containment | None, pid: int) -> RunCgroup | None:
    """Put ``pid`` (a held run, or a nursery) in a fresh cgroup of ``box`` (if any); the
    cgroup, also when the move failed (given back later like any), or None without a box.

    If the cgroup cannot be made or entered (the host changed under us), the process goes
    on with the process-group fallback rather than not at all; the warning says so.
    """
    cgroup: RunCgroup | None = None
    try:
        if box is not None:
            cgroup = box.new_run()
            cgroup.add(pid)
    except OSError as error:
        _log.warning("pid %d is not in a cgroup (%s): process-group containment only", pid, error)
    return cgroup
