"""An in-memory executor (``odin.executor.port.ExecutorPort``) for fast tests of the
launcher: no process is made; each run follows a ``Script`` and every call is recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from odin.errors import Conflict, ExecutionError
from odin.executor.port import OnOutput, OnStart
from odin.executor.spec import LaunchSpec, RunOutcome


@dataclass(frozen=True)
class Script:
    """What a fake run does once opened: prints ``chunks`` and exits with ``exit_code``, or,
    ``until_killed``, prints them and waits to be killed (it then ends cancelled, by
    SIGTERM). ``refused`` is the ``ExecutionError`` its prepare raises, if any."""

    chunks: tuple[bytes, ...] = ()
    exit_code: int = 0
    until_killed: bool = False
    refused: str | None = None


@dataclass
class FakeHeld:
    """A fake prepared run (``HeldRun``)."""

    executor: FakeExecutor
    spec: LaunchSpec
    script: Script
    pid: int
    opened: bool = False
    discarded: bool = False

    async def open(
        self, *, on_start: OnStart | None = None, on_output: OnOutput | None = None
    ) -> RunOutcome:
        following = self.executor.following
        run_id = self.spec.run_id
        if run_id in following:
            raise Conflict(f"run {run_id} is already running")
        if self.opened or self.discarded:
            raise ExecutionError(f"run {run_id}: its process was already used")
        self.opened = True
        self.executor.opened.append(run_id)
        killed = following[run_id] = asyncio.Event()
        try:
            started_at = time.time()
            if on_start is not None:
                on_start(self.pid, started_at)
            for chunk in self.script.chunks:
                if on_output is not None:
                    on_output(chunk)
            if self.script.until_killed:
                await killed.wait()
            else:
                await asyncio.sleep(0)  # a run ends after the loop had a turn, as a real one
        finally:
            del following[run_id]
        output = b"".join(self.script.chunks)
        cancelled = killed.is_set()
        return RunOutcome(
            exit_code=None if cancelled else self.script.exit_code,
            signal=15 if cancelled else None,
            timed_out=False,
            cancelled=cancelled,
            started_at=started_at,
            finished_at=time.time(),
            pid=self.pid,
            output=output,
            output_bytes=len(output),
            dropped_bytes=0,
        )

    async def discard(self) -> None:
        if not self.opened and not self.discarded:
            self.discarded = True
            self.executor.discarded.append(self.spec.run_id)


@dataclass
class FakeExecutor:
    """Prepares ``FakeHeld`` runs following ``script`` (one for all, or one per spec) and
    records the run ids prepared, opened, discarded and killed, in order."""

    script: Script | Callable[[LaunchSpec], Script] = field(default_factory=Script)
    prepared: list[LaunchSpec] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)
    following: dict[str, asyncio.Event] = field(default_factory=dict)
    _next_pid: int = 10_000

    async def prepare(self, spec: LaunchSpec) -> FakeHeld:
        script = self.script(spec) if callable(self.script) else self.script
        self.prepared.append(spec)
        if script.refused is not None:
            raise ExecutionError(f"run {spec.run_id}: {script.refused}")
        self._next_pid += 1
        return FakeHeld(self, spec, script, self._next_pid)

    def kill(self, run_id: str) -> bool:
        self.killed.append(run_id)
        killed = self.following.get(run_id)
        if killed is None:
            return False
        killed.set()
        return True
