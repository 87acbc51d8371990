"""Real executors for tests, built from explicit parts, one per event loop.

An engine builds its ``Executor`` once (``Executor.for_host``); a test says which gate,
spawner and limits it wants in a ``Kit`` and builds a fresh executor from it inside each
``asyncio.run`` (``Kit.executor``), closed at the end of it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from odin.executor import Executor
from odin.executor.cgroup import detect
from odin.executor.port import OnOutput, OnStart
from odin.executor.spawn import Spawner
from odin.executor.spec import LaunchSpec, RunOutcome


@dataclass
class Kit:
    """The parts of a test's executors: the compiled ``gate`` (None: the stock-tool gate),
    run cgroups where the host has them (``contained``), the posix_spawn spawner (``fast``;
    else asyncio's subprocess), and the places for runs held with their interpreter
    started (``early_max`` exec'd early, ``nursed_max`` forked by a nursery)."""

    gate: Path | None = None
    contained: bool = True
    fast: bool = True
    early_max: int = 0
    nursed_max: int = 0

    def build(self) -> Executor:
        uid = os.geteuid()
        spawner = Spawner.load() if self.fast else None
        if self.fast and spawner is None:
            raise RuntimeError("no posix_spawn spawner here: ask for fast=False")
        return Executor(
            uid=uid,
            gate=self.gate,
            containment=detect(root=uid == 0) if self.contained else None,
            spawner=spawner,
            early_max=self.early_max,
            nursed_max=self.nursed_max,
        )

    @contextlib.asynccontextmanager
    async def executor(self) -> AsyncIterator[Executor]:
        """A fresh executor for the running event loop, closed when the block ends."""
        executor = self.build()
        try:
            yield executor
        finally:
            await executor.close()

    async def run(
        self,
        spec: LaunchSpec,
        *,
        on_start: OnStart | None = None,
        on_output: OnOutput | None = None,
    ) -> RunOutcome:
        """Prepare ``spec``'s run and open it: its outcome."""
        async with self.executor() as executor:
            held = await executor.prepare(spec)
            return await held.open(on_start=on_start, on_output=on_output)
