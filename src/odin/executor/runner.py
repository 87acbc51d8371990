"""Running one job process as its owner, from spawn to the last byte of output.

What must hold for every run (DESIGN §4, invariant 2):

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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol

from odin import config
from odin.errors import Conflict, ExecutionError
from odin.executor import gate, nursery, spawn
from odin.executor.alarm import Alarm, first
from odin.executor.capture import OutputCapture
from odin.executor.cgroup import Containment, RunCgroup, default_containment, enter_new
from odin.executor.limits import RLIMITS, prlimit_prefix
from odin.executor.spec import LaunchSpec, RunOutcome

OnStart = Callable[[int, float], None]
OnOutput = Callable[[bytes], None]

_log = logging.getLogger(__name__)
_closing: set[asyncio.Task[None]] = set()  # cgroups of given-up starts, being emptied


class _Auto(Enum):
    """The default ``containment`` of ``execute``: the host's, detected once."""

    DETECT = "detect"


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


async def execute(
    spec: LaunchSpec,
    *,
    on_start: OnStart | None = None,
    on_output: OnOutput | None = None,
    cancel: Alarm | None = None,
    containment: Containment | _Auto | None = _Auto.DETECT,
) -> RunOutcome:
    """Run ``spec`` to its end and say how it ended.

    ``on_start(pid, started_at)`` is called once the process exists; ``on_output``
    gets every chunk as it arrives. Setting ``cancel`` kills the run like a timeout
    (SIGTERM, grace, SIGKILL). Raises ``ExecutionError`` if the process cannot start.
    ``containment`` None forces the process-group fallback (no cgroup).
    """
    held = await hold(spec, containment=containment)
    return await held.run(on_start=on_start, on_output=on_output, cancel=cancel)


async def hold(spec: LaunchSpec, *, containment: Containment | _Auto | None = _Auto.DETECT) -> Held:
    """Make the run's process ahead of its instant, as its owner and in its cgroup, held
    at the start gate: ``Held.run`` lets it go; ``Held.discard`` ends it unrun.

    Spawning, the switch of user and entering a cgroup (a cgroup migration waits for
    the kernel, milliseconds) then cost nothing at the instant. An engine that is not
    root has no gate: its run is spawned by ``Held.run``.
    """
    box = default_containment() if isinstance(containment, _Auto) else containment
    held = Held(spec, box)
    if os.geteuid() == 0:
        await held.spawn()
    return held


class _Process(Protocol):
    """A started run process, whichever way it was started."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    def send(self, line: bytes) -> None: ...

    def release(self, line: bytes) -> None: ...

    def close_gate(self) -> None: ...

    def close(self) -> None: ...


class _TransportProcess:
    """asyncio's subprocess transport seen as a ``_Process`` (where ``spawn`` is not available)."""

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


class Held:
    """One run's process, waiting at its start gate (root engine) or not made yet."""

    def __init__(self, spec: LaunchSpec, box: Containment | None) -> None:
        self.spec = spec
        self.box = box
        self.capture = OutputCapture(spec.max_output_bytes)
        self.proto = _RunProtocol(self.capture)
        self.process: _Process | None = None
        self.cgroup: RunCgroup | None = None
        self.used = False
        self.early = False  # its program starts up while it is held (the gate's --early)
        self.nursed = False  # forked by its owner's nursery (odin.executor.nursery)
        self._count: _EarlyCount | None = None  # the count it has a place in while it waits

    async def spawn(self) -> None:
        gated = os.geteuid() == 0  # a root engine switches users: the owner enters the cwd
        ready = gated and self.spec.early_argv is not None and gate.current() is not None
        abandoned = False
        lock = threading.Lock()

        def enter(pid: int) -> None:  # a cgroup migration waits for the kernel: off the loop
            with lock:
                if not abandoned:  # else its process is killed and no cgroup is made
                    self.cgroup = enter_new(self.box, pid)

        try:
            if ready and self._take(_nursed):
                self.process = await nursery.POOL.start_run(self.spec, self.proto, self.box, enter)
                self.nursed = self.early = self.process is not None
                if not self.nursed:
                    self._not_early()
            if self.process is None:
                self.early = ready and self._take(_early)
                self.process = await _spawn(
                    self.spec,
                    self.proto,
                    gated=gated,
                    early=self.early,
                    then=enter if gated else None,
                )
                if self.early:  # it is in its cgroup (``enter`` has run): it may start up
                    self.process.send(gate.PLACED_LINE)
        except BaseException:  # cancelled (or failed) while the spawn thread went on
            self._not_early()
            with lock:
                abandoned = True
                cgroup, self.cgroup = self.cgroup, None
            if cgroup is not None and self.box is not None:  # kill what entered it
                task = asyncio.ensure_future(self.box.release(cgroup))
                _closing.add(task)
                task.add_done_callback(_closing.discard)
            raise

    def _take(self, count: _EarlyCount) -> bool:
        if count.take():
            self._count = count
            return True
        return False

    def _not_early(self) -> None:
        """It no longer waits with its interpreter started: give its place back."""
        if self._count is not None:
            self._count.give_back()
            self._count = None

    async def run(
        self,
        *,
        on_start: OnStart | None = None,
        on_output: OnOutput | None = None,
        cancel: Alarm | None = None,
    ) -> RunOutcome:
        """Let the process go (or start it) and follow it to its end."""
        if self.used:
            raise ExecutionError(f"run {self.spec.run_id}: its process was already used")
        self.used = True
        if self.process is None:
            await self.spawn()
        else:
            # Open the start gate: the gate enters the workdir and execs the job (or, early,
            # the waiting interpreter runs the job's file).
            self.process.release(gate.GO_LINE)
            self._not_early()
        process, proto, spec = self.process, self.proto, self.spec
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
            if self.cgroup is not None and self.box is not None and self.box.give_back(self.cgroup):
                self.cgroup = None  # nothing was left in it: nothing to kill
            elif self.cgroup is not None:
                self.cgroup.kill()
            await _drain(proto.output_closed)
        finally:
            await self._close()
        return _outcome(spec, pid, started_at, process.returncode, ending, self.capture)

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
        self._not_early()
        process = self.process
        if process is None:
            return
        if not self.proto.exited.is_set():
            _signal_group(process.pid, signal.SIGKILL)
        cgroup, self.cgroup = self.cgroup, None  # a spare once released: another run's next
        if cgroup is not None and self.box is not None:
            await self.box.release(cgroup)
        process.close()


class _EarlyCount:
    """How many held runs wait with their interpreter started, up to the ``config`` value
    named ``limit`` (``EARLY_HELD_MAX`` for those exec'd early, ``NURSED_HELD_MAX`` for
    those forked by a nursery)."""

    def __init__(self, limit: str) -> None:
        self.held = 0
        self._limit = limit

    def take(self) -> bool:
        if self.held >= getattr(config, self._limit):
            return False
        self.held += 1
        return True

    def give_back(self) -> None:
        self.held -= 1


_early = _EarlyCount("EARLY_HELD_MAX")
_nursed = _EarlyCount("NURSED_HELD_MAX")


def _popen_args(
    spec: LaunchSpec, gated: bool, early: bool = False
) -> tuple[tuple[str, ...], dict[str, Any]]:
    if not spec.argv or not os.path.isabs(spec.argv[0]):
        raise ExecutionError(f"run {spec.run_id}: the command must be an absolute path")
    kwargs: dict[str, Any] = {
        "stdin": subprocess.PIPE if gated else subprocess.DEVNULL,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.STDOUT,
        # The gate starts as root: nothing the C library obeys may reach it as it is.
        "env": gate.gate_env(spec.env) if gated else dict(spec.env),
        # A gated run's workdir is looked at by its owner only, as the gate enters it: one
        # message, exit 112, whether it is missing or closed to them. Looked at as root
        # here, it would tell them which paths exist where they may not look.
        "cwd": "/" if gated else spec.cwd,
        "start_new_session": True,
    }
    compiled = gate.current() if gated else None
    if compiled is not None:  # one static program: switch, limits, gate, cd, exec
        kwargs["start_new_session"] = False  # it makes its own once exec'd (see gate.c)
        limits = tuple(value for _name, value in RLIMITS)
        return gate.argv(
            compiled,
            uid=spec.uid,
            gid=spec.gid,
            groups=spec.groups,
            limits=limits,
            cwd=spec.cwd,
            command=spec.early_argv if early and spec.early_argv is not None else spec.argv,
            early=early,
        ), kwargs
    # prlimit before the gate: its exec is paid while the process is held, not at the
    # instant, and the gate's exec hands the limits on to the job unchanged.
    stock_gate = gate.stock_argv(spec.cwd, spec.env) if gated else ()
    return (*_identity(spec), *prlimit_prefix(), *stock_gate, *spec.argv), kwargs


def _identity(spec: LaunchSpec) -> tuple[str, ...]:
    """The command that switches to the job's owner (root engine), or a check that it is us.

    The switch is ``setpriv`` exec'd by the child rather than Popen's ``user=`` and
    ``group=``: those make CPython fork the whole engine for every launch, while a
    plain exec lets it use vfork (measured: about 7 ms against 1 ms per launch with a
    70 MB engine, and the event loop is blocked for that long).
    """
    if os.geteuid() == 0:
        groups = sorted(set(spec.groups))
        which = f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"
        return (config.SETPRIV_PATH, f"--reuid={spec.uid}", f"--regid={spec.gid}", which, "--")
    if spec.uid != os.geteuid():
        raise ExecutionError(
            f"run {spec.run_id}: an engine not running as root can only run its own "
            f"jobs (uid {os.geteuid()}), not uid {spec.uid}"
        )
    return ()


async def _spawn(
    spec: LaunchSpec,
    proto: _RunProtocol,
    *,
    gated: bool,
    early: bool = False,
    then: Callable[[int], None] | None,
) -> _Process:
    """Start the run's process; ``then(pid)`` runs once it exists (in a thread of ``spawn``
    when there is one), before this returns. ``early``: through the gate's ``--early``
    form, with the spec's ``early_argv``."""
    argv, kwargs = _popen_args(spec, gated, early)
    try:
        if spawn.AVAILABLE:  # the engine's threads go on while the child execs
            return await spawn.start(
                argv,
                kwargs["env"],
                cwd=kwargs["cwd"],
                gated=gated,
                events=proto,
                then=then,
                new_session=kwargs["start_new_session"],
            )
        loop = asyncio.get_running_loop()
        transport, _ = await loop.subprocess_exec(lambda: proto, *argv, **kwargs)
        if then is not None:
            then(transport.get_pid())
        return _TransportProcess(transport)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ExecutionError(f"run {spec.run_id}: cannot start {spec.argv[0]}: {reason}") from exc


async def _wait_for_end(exited: Alarm, timeout_s: float | None, cancel: Alarm | None) -> _Ending:
    await first((exited,) if cancel is None else (exited, cancel), timeout_s)
    if exited.is_set():
        return _Ending.EXITED
    return _Ending.CANCELLED if cancel is not None and cancel.is_set() else _Ending.TIMED_OUT


async def _terminate_group(pgid: int, grace_s: float, exited: Alarm) -> None:
    """SIGTERM the group; SIGKILL whatever is still there after ``grace_s``."""
    _signal_group(pgid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while loop.time() < deadline and not (exited.is_set() and not _group_alive(pgid)):
        await asyncio.sleep(config.GROUP_POLL_S)
    _signal_group(pgid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, signum: int) -> None:
    """Signal the process group if it still has members; a gone group is fine."""
    if not _group_alive(pgid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _drain(output_closed: Alarm) -> None:
    """Wait for the pipe's last writer; one that escaped the group is cut off."""
    await first((output_closed,), config.OUTPUT_DRAIN_S)


def _outcome(
    spec: LaunchSpec,
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


class Runner:
    """Runs many jobs at once and can kill any of them by run id.

    A run id is registered for exactly as long as its process may be alive; a second
    ``run`` with a live id is refused (one launch per run id).
    """

    def __init__(self) -> None:
        self._cancels: dict[str, Alarm] = {}

    async def run(
        self,
        spec: LaunchSpec,
        *,
        on_start: OnStart | None = None,
        on_output: OnOutput | None = None,
    ) -> RunOutcome:
        if spec.run_id in self._cancels:
            raise Conflict(f"run {spec.run_id} is already running")
        cancel = self._cancels[spec.run_id] = Alarm()
        try:
            return await execute(spec, on_start=on_start, on_output=on_output, cancel=cancel)
        finally:
            del self._cancels[spec.run_id]

    def kill(self, run_id: str) -> bool:
        """Ask a running run to die (SIGTERM, grace, SIGKILL); False if not running."""
        cancel = self._cancels.get(run_id)
        if cancel is None:
            return False
        cancel.set()
        return True

    def running(self) -> frozenset[str]:
        """The run ids whose processes may still be alive."""
        return frozenset(self._cancels)
