"""An ``asyncio.Event`` that can be waited on together with others, without a task each.

Waiting for "the process exited, or the run was cancelled, or its time is up" with
``asyncio.wait`` costs a task per event and the machinery of ``wait``; at every run
that is most of what the event loop does for it. An ``Alarm`` calls back when set,
so ``first`` waits on one future and one timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable


class Alarm(asyncio.Event):
    """An ``asyncio.Event`` that also runs callbacks (in the loop) when it is set."""

    def __init__(self) -> None:
        super().__init__()
        self._calls: list[Callable[[], None]] = []

    def set(self) -> None:
        super().set()
        calls, self._calls = self._calls, []
        for call in calls:
            call()

    def call_when_set(self, call: Callable[[], None]) -> None:
        if self.is_set():
            call()
        else:
            self._calls.append(call)

    def forget(self, call: Callable[[], None]) -> None:
        if call in self._calls:
            self._calls.remove(call)


async def first(alarms: Iterable[Alarm], timeout_s: float | None) -> None:
    """Return once any of ``alarms`` is set, or after ``timeout_s`` (None: no limit)."""
    watched = list(alarms)
    if any(alarm.is_set() for alarm in watched):
        return
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not woken.done():
            woken.set_result(None)

    for alarm in watched:
        alarm.call_when_set(wake)
    timer = loop.call_later(timeout_s, wake) if timeout_s is not None else None
    try:
        await woken
    finally:
        if timer is not None:
            timer.cancel()
        for alarm in watched:
            alarm.forget(wake)
