"""The executor: running jobs' processes as their owners, from spawn to the last byte of output.

What must hold for every run (docs/architecture.md, "Invariants and where they hold":
jobs run as their owner):

- it runs as ``spec.uid``/``spec.gid`` with ``spec.groups``, never as root unless
  ``spec.uid`` is 0; an engine that is not root runs jobs only as itself;
- it sees exactly ``spec.env`` (nothing of the engine's environment) in ``spec.cwd``,
  with stdin on /dev/null and stdout+stderr merged into one capped pipe;
- the resource limits of ``odin.executor.limits`` are in force before its code runs;
- it leads its own session and process group, and when it ends (exit, timeout or
  kill) whatever is left of that group is killed: a run keeps no processes behind.
  Where the host allows it, the run also has a cgroup of its own (entered before its
  code runs, see ``odin.executor.cgroup``) and everything in it is killed at the end,
  so processes that left the group (``setsid``, daemons) die too. Without cgroups
  (a non-root engine, no cgroup2) such escapees are only reaped by
  ``odin.executor.reaper`` when they exit: that fallback cannot kill them.

Signalling a group by the leader's pid after the leader was reaped is safe while any
member lives (Linux keeps a pid reserved while it names a group); once the group is
empty the pid could in principle be reused, so the group is only signalled after
checking it is non-empty, and never long after the run ended.

A run's way through: ``Executor.prepare`` decides its start path (``start_path``, from
what the executor was built with) and makes its process that way, through a nursery
(``odin.executor.nursery``) or with the command line of its gate (``odin.executor.gate``)
and the spawner (``odin.executor.spawn``); ``Held.open`` lets it go and follows it here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Collection, Mapping
from enum import Enum
from pathlib import Path

from odin import config
from odin.errors import Conflict, ExecutionError
from odin.executor import gate
from odin.executor.alarm import Alarm, first
from odin.executor.capture import OutputCapture
from odin.executor.cgroup import Containment, RunCgroup, alive, detect, enter_new
from odin.executor.limits import RLIMITS, prlimit_prefix
from odin.executor.nursery import CLONE, Nurseries
from odin.executor.port import OnOutput, OnStart
from odin.executor.spawn import Process, Spawner, Starter, SubprocessStarter
from odin.executor.spec import LaunchSpec, RunOutcome
from odin.executor.startpath import StartPath, start_path

_log = logging.getLogger(__name__)

_LIMITS = tuple(value for _name, value in RLIMITS)  # the compiled gate's: nofile, nproc, as, core

_Command = tuple[tuple[str, ...], Mapping[str, str], str, bool]
"""A process to start: its argv, environment, directory, and whether in a session of its own."""


class _Ending(Enum):
    EXITED = "exited"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class _RunProtocol(asyncio.SubprocessProtocol):
    """Feeds output straight into the capture, so no stream buffer can grow.

    Chunks that arrive before the run is announced (``on_start``) are held back and
    replayed to ``on_output`` afterwards, so a listener always sees the start first.
    """

    def __init__(self, capture: OutputCapture) -> None:
        self._capture = capture
        self._on_output: OnOutput | None = None
        self._early: list[bytes] | None = []
        self.exited = Alarm()
        self.output_closed = Alarm()

    def forward_to(self, on_output: OnOutput | None) -> None:
        early, self._early = self._early or [], None
        self._on_output = on_output
        for chunk in early:
            self._forward(chunk)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._capture.feed(data)
        if self._early is not None:
            self._early.append(data)
        else:
            self._forward(data)

    def _forward(self, chunk: bytes) -> None:
        if self._on_output is None:
            return
        try:
            self._on_output(chunk)
        except Exception:  # a listener's failure must not break the run
            _log.exception("on_output callback failed")

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd != 0:  # fd 0 is the start gate's stdin, closed once the run may go
            self.output_closed.set()

    def process_exited(self) -> None:
        self.exited.set()


class _Places:
    """Places for held runs that wait with their interpreter started, up to ``limit``
    (``config.EARLY_HELD_MAX`` for those exec'd early, ``config.NURSED_HELD_MAX`` for
    those forked by a nursery)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def room(self) -> bool:
        return self.held < self.limit


class Executor:
    """The executor (``odin.executor.port.ExecutorPort``), built once by the daemon.

    It is built with everything a start needs, known once: the engine's ``uid`` (root
    switches users, and holds runs at a gate), the compiled ``gate`` (None: the
    stock-tool gate), the run cgroups (``containment``, None: process groups only), the
    ``spawner`` (None: asyncio's subprocess) and its owners' nurseries (a root engine with
    the compiled gate and the spawner, on a machine whose ``clone`` is known), and how
    many held runs may wait with their interpreter started (``early_max`` exec'd early,
    ``nursed_max`` forked by a nursery). It belongs to one event loop, until ``close``.
    """

    def __init__(
        self,
        *,
        uid: int,
        gate: Path | None,
        containment: Containment | None,
        spawner: Spawner | None,
        early_max: int,
        nursed_max: int,
    ) -> None:
        self.uid = uid
        self.root = uid == 0
        self.gate = gate if self.root else None
        self.containment = containment
        self._spawner = spawner
        self._starter: Starter = spawner if spawner is not None else SubprocessStarter()
        self.nurseries: Nurseries | None = None
        if self.gate is not None and spawner is not None and CLONE is not None and nursed_max:
            self.nurseries = Nurseries(self.gate, spawner, containment)
        self._early = _Places(early_max)
        self._nursed = _Places(nursed_max)
        self._following: dict[str, Alarm] = {}  # run id -> its kill switch, while followed
        self._closing: set[asyncio.Task[None]] = set()  # cgroups of given-up starts, emptied

    @classmethod
    async def for_host(cls, *, uid: int, bin_dir: Path) -> Executor:
        """The executor of an engine running as ``uid``, with what this host offers: a root
        engine builds the compiled gate into ``bin_dir`` and contains its runs in cgroups
        where the host allows it; the spawner where the C library has what it needs."""
        root = uid == 0
        built = await asyncio.to_thread(gate.build, bin_dir) if root else None
        containment = await asyncio.to_thread(detect, root=root)
        return cls(
            uid=uid,
            gate=built,
            containment=containment,
            spawner=Spawner.load(),
            early_max=config.EARLY_HELD_MAX,
            nursed_max=config.NURSED_HELD_MAX,
        )

    @property
    def followed(self) -> Collection[int]:
        """The pids of run processes the executor reaps itself (the reaper leaves them)."""
        return self._spawner.followed if self._spawner is not None else frozenset()

    async def prepare(self, spec: LaunchSpec) -> Held:
        """Make the run's process ahead of its instant, as its owner and in its cgroup, held
        at the start gate: ``Held.open`` lets it go; ``Held.discard`` ends it unrun.

        Spawning, the switch of user and entering a cgroup (a cgroup migration waits for
        the kernel, milliseconds) then cost nothing at the instant. An engine that is not
        root has no gate: its run is made by ``Held.open``.
        """
        held = Held(self, spec)
        if self.root:
            await self._start(held)
        return held

    def kill(self, run_id: str) -> bool:
        """Ask a followed run to die (SIGTERM, grace, SIGKILL); False if none is."""
        cancel = self._following.get(run_id)
        if cancel is None:
            return False
        cancel.set()
        return True

    async def close(self) -> None:
        """End the nurseries, the spawner's threads and the directory of run cgroups (the
        engine stops; runs that are still followed go on to their end)."""
        if self.nurseries is not None:
            await self.nurseries.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._spawner is not None:
            self._spawner.close()
        if self.containment is not None:
            self.containment.close()

    async def _start(self, held: Held) -> None:
        """Make ``held``'s process along its start path (``start_path``); a gated one is in
        its run cgroup when this returns."""
        spec = held.spec
        nurseries = self.nurseries
        path = start_path(
            root=self.root,
            compiled_gate=self.gate is not None,
            python=spec.early_argv is not None,
            nursery=nurseries is not None and self._nursed.room(),
            early=self._early.room(),
        )
        box = self.containment
        abandoned = False
        lock = threading.Lock()

        def enter(pid: int) -> None:  # a cgroup migration waits for the kernel: off the loop
            with lock:
                if not abandoned:  # else its process is killed and no cgroup is made
                    held.cgroup = enter_new(box, pid)

        try:
            if path is StartPath.NURSED and nurseries is not None:
                held.take(self._nursed)
                held.process = await nurseries.start_run(spec, held.proto, enter)
                if held.process is None:  # no nursery could make it: through the gate
                    held.give_back()
                    path = start_path(
                        root=True,
                        compiled_gate=True,
                        python=True,
                        nursery=False,
                        early=self._early.room(),
                    )
            if held.process is None:
                if path is StartPath.EARLY:
                    held.take(self._early)
                argv, env, cwd, new_session = self._command(path, spec)
                gated = path is not StartPath.PLAIN
                try:
                    held.process = await self._starter.start(
                        argv,
                        env,
                        cwd=cwd,
                        gated=gated,
                        events=held.proto,
                        then=enter if gated else None,
                        new_session=new_session,
                    )
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    raise ExecutionError(
                        f"run {spec.run_id}: cannot start {spec.argv[0]}: {reason}"
                    ) from exc
                if path is StartPath.EARLY:  # it is in its cgroup (``enter`` has run): start up
                    held.process.send(gate.PLACED_LINE)
            held.path = path
        except BaseException:  # cancelled (or failed) while the spawn thread went on
            held.give_back()
            with lock:
                abandoned = True
                cgroup, held.cgroup = held.cgroup, None
            if cgroup is not None and box is not None:  # kill what entered it
                task = asyncio.ensure_future(box.release(cgroup))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            raise

    def _command(self, path: StartPath, spec: LaunchSpec) -> _Command:
        """What starts ``spec`` along ``path`` (any but NURSED)."""
        if not spec.argv or not os.path.isabs(spec.argv[0]):
            raise ExecutionError(f"run {spec.run_id}: the command must be an absolute path")
        if path is StartPath.PLAIN:
            if spec.uid != self.uid:
                raise ExecutionError(
                    f"run {spec.run_id}: an engine not running as root can only run its own "
                    f"jobs (uid {self.uid}), not uid {spec.uid}"
                )
            return (*prlimit_prefix(), *spec.argv), spec.env, spec.cwd, True
        # The gate starts as root: nothing the C library obeys may reach it as it is. The
        # workdir is looked at by the owner only, as the gate enters it: one message, exit
        # 112, whether it is missing or closed to them. Looked at as root here, it would
        # tell them which paths exist where they may not look.
        env = gate.gate_env(spec.env)
        if path is StartPath.STOCK_GATE:
            # prlimit before the gate: its exec is paid while the process is held, not at
            # the instant, and the gate's exec hands the limits on to the job unchanged.
            stock = gate.stock_argv(spec.cwd, spec.env)
            return (*_switch(spec), *prlimit_prefix(), *stock, *spec.argv), env, "/", True
        assert self.gate is not None
        early = path is StartPath.EARLY
        argv = gate.argv(  # one static program: switch, limits, gate, cd, exec
            self.gate,
            uid=spec.uid,
            gid=spec.gid,
            groups=spec.groups,
            limits=_LIMITS,
            cwd=spec.cwd,
            command=spec.early_argv if early and spec.early_argv is not None else spec.argv,
            early=early,
        )
        return argv, env, "/", False  # it makes its own session once exec'd (see gate.c)


def _switch(spec: LaunchSpec) -> tuple[str, ...]:
    """The command that switches to the job's owner, for the stock-tool gate.

    ``setpriv`` exec'd by the child rather than Popen's ``user=`` and ``group=``: those
    make CPython fork the whole engine for every launch, where a plain exec lets it use
    vfork (bench/limits.md, "Executor measurements").
    """
    groups = sorted(set(spec.groups))
    which = f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"
    return (config.SETPRIV_PATH, f"--reuid={spec.uid}", f"--regid={spec.gid}", which, "--")


class Held:
    """One run's process, waiting at its start gate (root engine) or not made yet; made
    along ``path`` (``StartPath``)."""

    def __init__(self, executor: Executor, spec: LaunchSpec) -> None:
        self._executor = executor
        self.spec = spec
        self.capture = OutputCapture(spec.max_output_bytes)
        self.proto = _RunProtocol(self.capture)
        self.process: Process | None = None
        self.cgroup: RunCgroup | None = None
        self.path = StartPath.PLAIN
        self.used = False
        self._place: _Places | None = None  # the places it has one of while it waits

    def take(self, places: _Places) -> None:
        """It waits with its interpreter started: it takes one of ``places``."""
        places.held += 1
        self._place = places

    def give_back(self) -> None:
        """It no longer waits with its interpreter started: give its place back."""
        if self._place is not None:
            self._place.held -= 1
            self._place = None

    async def open(
        self, *, on_start: OnStart | None = None, on_output: OnOutput | None = None
    ) -> RunOutcome:
        """Let the process go (or make it) and follow it to its end; ``Executor.kill`` with
        its run id kills it meanwhile, like a timeout (SIGTERM, grace, SIGKILL).

        ``on_start(pid, started_at)`` is called once the process goes; ``on_output`` gets
        every chunk as it arrives. Raises ``ExecutionError`` if the process cannot start,
        ``Conflict`` while another run with the same id is followed (then it is still held).
        """
        spec = self.spec
        following = self._executor._following
        if spec.run_id in following:
            raise Conflict(f"run {spec.run_id} is already running")
        if self.used:
            raise ExecutionError(f"run {spec.run_id}: its process was already used")
        self.used = True
        cancel = following[spec.run_id] = Alarm()
        try:
            if self.process is None:
                await self._executor._start(self)
            else:
                # Open the start gate: the gate enters the workdir and execs the job (or,
                # early, the waiting interpreter runs the job's file).
                self.process.release(gate.GO_LINE)
                self.give_back()
            process, proto = self.process, self.proto
            assert process is not None
            started_at = time.time()
            pid = process.pid
            try:
                if on_start is not None:
                    on_start(pid, started_at)
                proto.forward_to(on_output)
                ending = await _wait_for_end(proto.exited, spec.timeout_s, cancel)
                if ending is not _Ending.EXITED:
                    await _terminate_group(pid, spec.grace_s, proto.exited)
                await proto.exited.wait()
                _signal_group(pid, signal.SIGKILL)
                box = self._executor.containment
                if self.cgroup is not None and box is not None and box.give_back(self.cgroup):
                    self.cgroup = None  # nothing was left in it: nothing to kill
                elif self.cgroup is not None:
                    self.cgroup.kill()
                await _drain(proto.output_closed)
            finally:
                await self._close()
            return _outcome(pid, started_at, process.returncode, ending, self.capture)
        finally:
            del following[spec.run_id]

    async def discard(self) -> None:
        """End a held process that will not run (its gate closes: it exits unrun)."""
        if self.used:
            return
        self.used = True
        if self.process is None:
            return
        self.process.close_gate()
        await self._close()

    async def _close(self) -> None:
        self.give_back()
        process = self.process
        if process is None:
            return
        if not self.proto.exited.is_set():
            _signal_group(process.pid, signal.SIGKILL)
        box = self._executor.containment
        cgroup, self.cgroup = self.cgroup, None  # a spare once released: another run's next
        if cgroup is not None and box is not None:
            await box.release(cgroup)
        process.close()


async def _wait_for_end(exited: Alarm, timeout_s: float | None, cancel: Alarm) -> _Ending:
    await first((exited, cancel), timeout_s)
    if exited.is_set():
        return _Ending.EXITED
    return _Ending.CANCELLED if cancel.is_set() else _Ending.TIMED_OUT


async def _terminate_group(pgid: int, grace_s: float, exited: Alarm) -> None:
    """SIGTERM the group; SIGKILL whatever is still there after ``grace_s``."""
    _signal_group(pgid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while loop.time() < deadline and not (exited.is_set() and not alive(pgid, group=True)):
        await asyncio.sleep(config.GROUP_POLL_S)
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    """Signal the process group if it still has members; a gone group is fine."""
    if not alive(pgid, group=True):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _drain(output_closed: Alarm) -> None:
    """Wait for the pipe's last writer; one that escaped the group is cut off."""
    await first((output_closed,), config.OUTPUT_DRAIN_S)


def _outcome(
    pid: int,
    started_at: float,
    returncode: int | None,
    ending: _Ending,
    capture: OutputCapture,
) -> RunOutcome:
    code = returncode if returncode is not None else -signal.SIGKILL
    return RunOutcome(
        exit_code=code if code >= 0 else None,
        signal=-code if code < 0 else None,
        timed_out=ending is _Ending.TIMED_OUT,
        cancelled=ending is _Ending.CANCELLED,
        started_at=started_at,
        finished_at=time.time(),
        pid=pid,
        output=capture.result(),
        output_bytes=capture.total_bytes,
        dropped_bytes=capture.dropped_bytes,
    )
