"""``overlap: queue`` under a job that outlasts its interval (needs root).

The attack from the security review: one member's job, queued every second behind
a long run, made the engine spawn and hold one more process (and three engine
descriptors) each second without bound, and queued runs still started after
``odin rm``. Here the queue holds no process, is bounded, and ends with its job.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, wait_for, write_job
from odin import config
from real_users import ALICE, processes_of

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root: real users"),
    pytest.mark.slow,
]

# Each run leaves a mark named after its run id in the job's folder, then outlasts many ticks.
SLOW = (
    "import os, time\n"
    "open(os.environ['ODIN_RUN_ID'].replace(':', '_') + '.started', 'w').close()\n"
    "time.sleep(120)\n"
)


def _children_of_alice(engine: Engine) -> list[int]:
    """Alice's processes that are this engine's children: held runs, runs, her nursery."""
    assert engine.proc is not None
    found = []
    for pid in processes_of(ALICE):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            if int(stat.rpartition(")")[2].split()[1]) == engine.proc.pid:
                found.append(pid)
    return found


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _runs(engine: Engine, job_id: str) -> list[dict[str, object]]:
    result = odin("log", "-i", job_id, "-o", "json", "-n", "200", engine=engine, user=ALICE)
    runs: list[dict[str, object]] = result.json()
    return runs


def test_a_queue_holds_nothing_is_bounded_and_ends_with_its_job(
    engine: Engine, world_dir: Path
) -> None:
    home = user_dir(world_dir, ALICE)
    path = write_job(
        home,
        "slow",
        SLOW,
        schedule="every 1 second",
        extra=f"  workdir: {home}\n  overlap: queue\n",
    )
    odin("deploy", "-f", str(path), engine=engine, user=ALICE)
    job_id = job_id_of(path)
    assert engine.proc is not None
    wait_for(lambda: list(home.glob("*.started")), timeout=15, what="the first run")
    fds_early = _fds(engine.proc.pid)
    bound = config.MAX_QUEUED_PER_JOB

    def queue_full() -> list[dict[str, object]]:
        runs = _runs(engine, job_id)
        return [r for r in runs if r["status"] == "skipped"]

    skipped = wait_for(queue_full, timeout=bound + 15, what="a tick skipped by the full queue")
    assert f"at most {bound} per job" in str(skipped[0]["message"]), skipped
    # Queued behind the first run: no process of Alice's but that run's (and a nursery, and
    # at most one run made a second ahead); no engine descriptors per queued run.
    assert len(_children_of_alice(engine)) <= 4, _children_of_alice(engine)
    assert _fds(engine.proc.pid) - fds_early < bound, (fds_early, _fds(engine.proc.pid))
    assert len(list(home.glob("*.started"))) == 1

    odin("remove", "-i", job_id, engine=engine, user=ALICE)
    removed_at = time.time()
    wait_for(lambda: not _children_of_alice(engine), timeout=15, what="alice's processes to end")
    time.sleep(3)
    started_after = [p for p in home.glob("*.started") if p.stat().st_mtime > removed_at]
    assert not started_after, started_after
    assert not _children_of_alice(engine)
