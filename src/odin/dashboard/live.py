"""Server-sent events: "something on this page changed" and a running job's output.

A page stream polls what the page shows (a fingerprint computed through the
service, for the session's caller) every ``DASHBOARD_POLL_S`` and sends
``changed`` when it differs from what the page was rendered with; htmx then
fetches the fragment again. The fingerprint is computed on a worker thread, once
for all the streams of the same page and caller (``SharedPolls``): with 1,500
jobs one costs tens of ms, which 25 streams each computing it on the event loop
took from every launch and request. The output stream attaches a watcher to the
run's ``LiveRun`` on this node and sends each chunk, HTML-escaped, until ``end``.
"""

from __future__ import annotations

import asyncio
import codecs
import html
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable

from fastapi import Request
from fastapi.responses import StreamingResponse

from odin import config
from odin.engine.identity import Caller
from odin.engine.launcher import LiveRun
from odin.errors import OdinError

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(event: str, data: str) -> str:
    """One event; each line of ``data`` is its own ``data:`` field (the browser rejoins them)."""
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {event}\n{lines}\n"


def stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)


def _retrieved(future: asyncio.Future[str]) -> None:
    """Mark a shared computation's error as seen, even when every stream left before it ended."""
    if not future.cancelled():
        future.exception()


class SharedPolls:
    """What the page streams poll, computed on a worker thread once for all that ask alike.

    A poll joins the computation under way for its key (page and caller), or takes the
    answer of one that began less than ``fresh_s`` ago; else it starts one.
    """

    def __init__(self, fresh_s: float = config.DASHBOARD_SHARED_POLL_S) -> None:
        self.fresh_s = fresh_s
        self._polls: dict[Hashable, tuple[float, asyncio.Future[str]]] = {}

    async def get(self, key: Hashable, compute: Callable[[], str]) -> str:
        """``compute()``'s answer for ``key``, shared (a stream that leaves cancels no one)."""
        now = time.monotonic()
        entry = self._polls.get(key)
        if entry is None or (entry[1].done() and now - entry[0] >= self.fresh_s):
            self._forget_stale(now)
            entry = (now, asyncio.ensure_future(asyncio.to_thread(compute)))
            entry[1].add_done_callback(_retrieved)
            self._polls[key] = entry
        return await asyncio.shield(entry[1])

    def _forget_stale(self, now: float) -> None:
        stale = [
            key
            for key, (began, future) in self._polls.items()
            if future.done() and now - began >= self.fresh_s
        ]
        for key in stale:
            del self._polls[key]


async def changes(
    request: Request,
    caller: Callable[[Request], Caller],
    compute: Callable[[Caller], Awaitable[str]],
    since: str,
) -> AsyncIterator[str]:
    """``changed`` each time ``compute`` gives a new fingerprint; ends if the session does."""
    last = since
    yield ": open\n\n"
    while not await request.is_disconnected():
        try:
            now = await compute(caller(request))
        except OdinError:
            yield sse("changed", "gone")
            return
        if now != last:
            last = now
            yield sse("changed", now)
        await asyncio.sleep(config.DASHBOARD_POLL_S)


async def output(
    request: Request,
    live_runs: dict[str, LiveRun],
    finished: Callable[[], Awaitable[bool]],
    run_id: str,
) -> AsyncIterator[str]:
    """The run's output so far (its kept tail), then as it comes; ``end`` once it is over."""
    yield ": open\n\n"
    live = live_runs.get(run_id)
    while live is None:
        if await finished() or await request.is_disconnected():
            yield sse("end", "")
            return
        await asyncio.sleep(config.DASHBOARD_POLL_S / 4)
        live = live_runs.get(run_id)
    async for text in _follow(live):
        yield sse("output", html.escape(text))
    yield sse("end", "")


async def _follow(live: LiveRun) -> AsyncIterator[str]:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=config.DASHBOARD_LIVE_QUEUE)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    dropped = False

    def watcher(_: str, chunk: bytes | None) -> None:
        nonlocal dropped
        if queue.full():
            dropped = True
            if chunk is not None:
                return
            queue.get_nowait()  # the end must always get through
        queue.put_nowait(chunk)

    backlog = bytes(live.recent)  # what it printed before this viewer came (no await between)
    live.watchers.append(watcher)
    try:
        if backlog:
            yield decoder.decode(backlog)
        while (chunk := await queue.get()) is not None:
            if dropped:
                dropped = False
                yield "\n[… some output was skipped: the viewer fell behind …]\n"
            yield decoder.decode(chunk)
        yield decoder.decode(b"", final=True)
    finally:
        if watcher in live.watchers:
            live.watchers.remove(watcher)
