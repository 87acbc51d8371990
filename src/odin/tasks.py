"""Small helpers for the engine's background tasks, shared by ``odin.engine`` and
``odin.executor`` (which must not import from the engine)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from odin.errors import OdinError


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (None: nothing to do) and wait until it has ended; its
    ``CancelledError`` is not raised."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Background:
    """Best-effort steps run on the loop, each kept referenced until it ends; ``close`` cancels
    those still going (at shutdown). An ``OdinError`` in one is dropped: it was best effort."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(_quietly(awaitable))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            await cancel_and_wait(task)


async def _quietly(awaitable: Awaitable[Any]) -> None:
    with contextlib.suppress(OdinError):
        await awaitable
