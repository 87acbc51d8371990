"""How runs' ends are kept: whole on this node, and a ``FinishRun`` each for the cluster.

``keep_here`` saves an ended run's output and records in this node's run store;
``finish_of`` makes the ``FinishRun`` of a run whose process ended. ``FinishBatcher``
commits the ends that come within ``FINISH_BATCH_S`` of each other as one
``FinishRuns`` (one proposal, one journal write, one apply for all of them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from odin import config
from odin.cluster import commands as c
from odin.cluster.summary import summarize
from odin.engine.liverun import LiveRun
from odin.engine.rules import end_verdict
from odin.executor.spec import RunOutcome
from odin.store.sqlite import Store

Propose = Callable[[c.Command], Awaitable[Any]]
Spawn = Callable[[Awaitable[Any]], None]


def keep_here(store: Store, live: LiveRun, outcome: RunOutcome) -> None:
    """Save the output and the records of ``live``, ended with ``outcome``, in this node's
    run store (on its writer thread: nothing is waited for)."""
    run = live.run
    store.later(
        store.save_output,
        run.id,
        run.job_id,
        outcome.output,
        outcome.output_bytes,
        outcome.dropped_bytes,
        run.owner_uid,
    )
    if live.records:
        store.later(store.save_records, run.id, run.job_id, run.owner_uid, tuple(live.records))


def finish_of(live: LiveRun, outcome: RunOutcome) -> c.FinishRun:
    """The end of ``live``, whose process ended with ``outcome``: its status, its output's
    tail and a summary of its records (``odin.cluster.summary``)."""
    status, message = end_verdict(outcome, live.records)
    tail = outcome.output[-config.OUTPUT_TAIL_BYTES :].decode("utf-8", errors="replace")
    return c.FinishRun(
        run_id=live.run.id,
        status=status,
        finished_at=outcome.finished_at,
        exit_code=outcome.exit_code,
        message=message,
        started_at=outcome.started_at,
        output_tail=tail,
        output_bytes=outcome.output_bytes,
        dropped_bytes=outcome.dropped_bytes,
        records=summarize(live.records, live.sizes, config.RECORDS_SUMMARY_BYTES),
        record_count=len(live.records),
        pid=live.pgid,
    )


class FinishBatcher:
    """Commits runs' ends together: those that come within ``FINISH_BATCH_S`` of the first
    go as one ``FinishRuns`` (a lone end as its ``FinishRun``), at most ``FINISH_BATCH_MAX``
    ends and ``FINISH_BATCH_RECORDS`` SDK records a batch; an end with more records than
    that goes alone, at once. ``end`` returns once its batch was proposed (committed or
    given up by ``propose``); ``spawn`` runs each batch's proposal as a task its owner
    waits for when it stops."""

    def __init__(self, loop: asyncio.AbstractEventLoop, propose: Propose, spawn: Spawn) -> None:
        self._loop = loop
        self._propose = propose
        self._spawn = spawn
        self._ending: list[tuple[c.FinishRun, asyncio.Future[None]]] = []  # not yet proposed
        self._records = 0  # SDK records in those ends

    async def end(self, command: c.FinishRun) -> None:
        records = len(command.records)  # each up to MAX_RECORD_BYTES: they bound an entry's size
        if records > config.FINISH_BATCH_RECORDS:
            await self._propose(command)  # a big end goes alone
            return
        if self._records + records > config.FINISH_BATCH_RECORDS:
            self.send()
        done: asyncio.Future[None] = self._loop.create_future()
        self._ending.append((command, done))
        self._records += records
        if len(self._ending) >= config.FINISH_BATCH_MAX:
            self.send()
        elif len(self._ending) == 1:
            self._loop.call_later(config.FINISH_BATCH_S, self.send)
        await done

    def send(self) -> None:
        """Propose the ends gathered so far (nothing if they were sent already)."""
        batch, self._ending, self._records = self._ending, [], 0
        if not batch:  # sent already, when the batch filled up
            return
        ends = tuple(command for command, _ in batch)
        command = ends[0] if len(ends) == 1 else c.FinishRuns(ends)
        self._spawn(self._send(command, [done for _, done in batch]))

    async def _send(
        self, command: c.FinishRun | c.FinishRuns, waiting: list[asyncio.Future[None]]
    ) -> None:
        try:
            await self._propose(command)
        finally:
            for done in waiting:
                if not done.done():
                    done.set_result(None)
