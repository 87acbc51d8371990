"""The executor as the engine sees it: a port of a few operations on runs.

The engine prepares a run ahead of its instant (``ExecutorPort.prepare``: its process
made, as its owner, held at its start gate), then opens it (``HeldRun.open``: the go
line, and the run followed to its end) or discards it unrun (``HeldRun.discard``), and
may kill it while it runs (``ExecutorPort.kill``). ``odin.executor.runner.Executor``
is the real one, built once by the daemon; tests of the launcher use an in-memory one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from odin.executor.spec import LaunchSpec, RunOutcome

OnStart = Callable[[int, float], None]
"""Called once the run's process is let go (or made): its pid and the time it started."""
OnOutput = Callable[[bytes], None]
"""Called with each chunk of the run's output as it arrives, after ``OnStart``."""


@runtime_checkable
class HeldRun(Protocol):
    """A run made ready ahead of its instant, to be opened or discarded, once."""

    async def open(
        self, *, on_start: OnStart | None = None, on_output: OnOutput | None = None
    ) -> RunOutcome:
        """Let the run go (its gate opens, or its process is made) and follow it to its
        end. Raises ``ExecutionError`` if it cannot start, ``Conflict`` while another run
        with its id is followed."""
        ...

    async def discard(self) -> None:
        """End it unrun (nothing if it was opened already)."""
        ...


@runtime_checkable
class ExecutorPort(Protocol):
    """What the engine asks of the executor."""

    async def prepare(self, spec: LaunchSpec) -> HeldRun:
        """The run of ``spec``, made ready to open (raises ``ExecutionError`` if it cannot)."""
        ...

    def kill(self, run_id: str) -> bool:
        """Ask the run followed under ``run_id`` to die (SIGTERM, grace, SIGKILL): its
        outcome says ``cancelled``. False if no run with that id is followed."""
        ...
