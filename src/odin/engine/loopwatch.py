"""How long the event loop was held: a task sleeps a short interval and records how late it woke.

Whatever holds the engine's event loop (a synchronous read, a long computation, a
blocking call to another node) delays every timer and socket behind it: launches,
the ticker, the API, the dashboard. The watch sees that delay as the time it woke
past its own deadline. It keeps the worst since it started, the worst of each of
the last ``LOOP_WATCH_WINDOW_S`` seconds and a histogram; /metrics and
``GET /v1/loop`` show them. The composition root (``odin.daemon``) builds and
starts one per engine, once the engine is ready to serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from odin import config


@dataclass(frozen=True)
class Stalls:
    """What the watch saw: worst delays (seconds), a cumulative histogram and recent peaks."""

    worst_s: float
    recent_s: float
    window_s: int
    bounds: tuple[float, ...]
    counts: tuple[int, ...]  # wakes at most each bound late (cumulative, as Prometheus has it)
    wakes: int
    total_s: float
    peaks: tuple[tuple[int, float], ...]  # (Unix second, worst delay in it), oldest first

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON data, for ``GET /v1/loop``."""
        return {
            "worst_s": self.worst_s,
            "recent_s": self.recent_s,
            "window_s": self.window_s,
            "buckets": [
                [bound, count] for bound, count in zip(self.bounds, self.counts, strict=True)
            ],
            "wakes": self.wakes,
            "total_s": self.total_s,
            "peaks": [list(peak) for peak in self.peaks],
        }


class LoopWatch:
    """A task on the event loop that measures how late the loop lets it wake."""

    def __init__(
        self,
        interval_s: float = config.LOOP_WATCH_INTERVAL_S,
        window_s: int = config.LOOP_WATCH_WINDOW_S,
        bounds: tuple[float, ...] = config.LOOP_STALL_BUCKETS,
    ) -> None:
        self.interval_s = interval_s
        self.window_s = window_s
        self.bounds = bounds
        self._counts = [0] * len(bounds)
        self._worst = 0.0
        self._wakes = 0
        self._total = 0.0
        self._peaks: deque[tuple[int, float]] = deque(maxlen=window_s)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.record(max(0.0, loop.time() - due), time.time())

    def record(self, late_s: float, now: float) -> None:
        """Count one wake ``late_s`` seconds past its deadline, at Unix time ``now``."""
        self._worst = max(self._worst, late_s)
        self._wakes += 1
        self._total += late_s
        for index, bound in enumerate(self.bounds):
            if late_s <= bound:
                self._counts[index] += 1
        second = int(now)
        if self._peaks and self._peaks[-1][0] == second:
            late_s = max(late_s, self._peaks[-1][1])
            self._peaks.pop()
        self._peaks.append((second, late_s))

    def stalls(self, now: float) -> Stalls:
        """The figures as of Unix time ``now`` (its recent worst covers the last window); any
        thread may ask: each container is copied whole at once (a C call, under the GIL)."""
        peaks = tuple(self._peaks)
        since = int(now) - self.window_s
        return Stalls(
            worst_s=self._worst,
            recent_s=max((late for second, late in peaks if second > since), default=0.0),
            window_s=self.window_s,
            bounds=self.bounds,
            counts=tuple(self._counts),
            wakes=self._wakes,
            total_s=self._total,
            peaks=peaks,
        )
