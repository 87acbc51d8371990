"""The bare loop: the practical limit of this machine for the same workload.

One asyncio loop arms a timer per instant and, when it fires, spawns every job
due at that instant at once (no concurrency limit, like Odin), with a fresh
environment, its own session, stdout piped and read to the end. It does nothing
else: no consensus, no bookkeeping, no user switch, no resource-limit wrapper.
Children are waited for with a pidfd watcher, as in the engine (Python 3.11's
default watcher starts a thread per child, which would handicap the loop).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import defaultdict
from collections.abc import Awaitable, Sequence

from bench.harness import JobDef
from bench.workload import Outcome, Programs, Sample, first_line_time, instants, job_env


async def _one(argv: Sequence[str], instant: float, env: dict[str, str]) -> Sample:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    started = time.time()
    out, _ = await proc.communicate()
    return Sample(instant, started, first_line_time(out.decode(errors="replace")))


async def _run(plan: dict[float, list[tuple[str, ...]]], end: float) -> list[Sample]:
    loop = asyncio.get_running_loop()
    env = job_env()
    tasks: list[asyncio.Task[Sample]] = []

    def fire(instant: float) -> None:
        for argv in plan[instant]:
            tasks.append(loop.create_task(_one(argv, instant, env)))

    for instant in sorted(plan):
        loop.call_later(max(0.0, instant - time.time()), fire, instant)
    await asyncio.sleep(max(0.0, end - time.time()))
    while len(tasks) < sum(len(v) for v in plan.values()):
        await asyncio.sleep(0.01)
    return list(await asyncio.gather(*tasks))


async def _with_pidfd_watcher(work: Awaitable[list[Sample]]) -> list[Sample]:
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.set_child_watcher(watcher)
    try:
        return await work
    finally:
        asyncio.set_child_watcher(None)


def run_bare(jobs: Sequence[JobDef], begin: float, end: float, programs: Programs) -> Outcome:
    """Launch ``jobs`` at their instants in [begin, end) and return every launch."""
    plan: dict[float, list[tuple[str, ...]]] = defaultdict(list)
    for job in jobs:
        argv = programs.argv(job)
        for instant in instants(job, begin, end):
            plan[instant].append(argv)
    expected = sum(len(v) for v in plan.values())
    samples = asyncio.run(_with_pidfd_watcher(_run(plan, end)))
    return Outcome("bare loop", tuple(samples), expected)
