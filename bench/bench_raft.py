"""Raft journal bytes per run, and what flushing the journal before each acknowledgement costs.

The journal's own header says where its last record ends (PySyncObj's
``FileJournal``: a little-endian u32 at byte 36), so growth is read exactly,
not from the file size (the file is an mmap grown by doubling). The jobs are
paused at the end of the window; the few ``PatchJob`` entries that adds are
counted in (a small overestimate, said in the note).
"""

from __future__ import annotations

import math
import shutil
import struct
import tempfile
import time
from pathlib import Path

from bench.common import Figure
from bench.harness import Engine, deploy, engines, runs_of, wait_for
from bench.odin_runner import FINISHED
from bench.workload import QUIET_PY_CODE, burst_jobs
from odin.cluster.harness import Cluster
from odin.cluster.raft import RaftTuning

LAST_RECORD_OFFSET_AT = 36


def journal_end(engine: Engine) -> int:
    """Where the last record of the engine's Raft journal ends, in bytes."""
    path = Path(engine.data_dir) / "raft" / "raft.journal"
    with open(path, "rb") as handle:
        handle.seek(LAST_RECORD_OFFSET_AT)
        (offset,) = struct.unpack("<I", handle.read(4))
    return int(offset)


def _finished_runs(engine: Engine, jids: list[str]) -> int | None:
    total = 0
    for jid in jids:
        runs = runs_of(engine, jid)
        if any(r["status"] not in FINISHED for r in runs):
            return None
        total += len(runs)
    return total


def run(quick: bool = False) -> list[Figure]:
    jobs = burst_jobs(0x30, 10 if quick else 25, 1, QUIET_PY_CODE)
    secs = 4.0 if quick else 40.0
    with engines(1, "raft") as (engine,):
        deploy(engine, jobs)
        before = journal_end(engine)
        time.sleep(secs)
        client = engine.client()
        for job in jobs:
            client.request("PATCH", f"/v1/jobs/{job.jid}", {"paused": True})
        jids = [job.jid for job in jobs]
        runs = wait_for(lambda: _finished_runs(engine, jids), 60, "paused jobs' runs to finish")
        after = journal_end(engine)
    grew = after - before
    per_run = grew / runs if runs and grew >= 0 else math.nan
    note = f"{runs} runs, {grew:,} bytes, {len(jobs)} PatchJob entries included"
    if grew < 0:
        note = "the journal was compacted during the window; re-run"
    return [
        Figure(
            "Raft journal bytes per run",
            per_run,
            "bytes",
            "<= 1 KB (1024 bytes)",
            note,
            None if math.isnan(per_run) else per_run <= 1024,
        ),
        Figure("Raft journal bytes per 1,000 runs", per_run * 1000 / 1024, "KiB"),
        *_flush_cost(60 if quick else 400),
    ]


def _latencies(flush: bool, n: int) -> tuple[list[float], list[float]]:
    """Commit latencies (ms) of ``n`` proposals one after another, through the leader and
    through a follower, on three harness nodes with the journal flushed or not."""
    root = Path(tempfile.mkdtemp(prefix="bench-flush-"))
    try:
        with Cluster(root, 3, tuning=RaftTuning(flush_journal=flush)) as cluster:
            leader = cluster.wait_leader()
            follower = next(node for node in cluster.nodes if node is not leader)
            leader.call("bench", n=n, prefix="warm")
            through_leader = list(leader.call("bench", n=n, prefix="l", timeout=120))
            through_follower = list(follower.call("bench", n=n, prefix="f", timeout=120))
            return through_leader, through_follower
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _flush_cost(n: int) -> list[Figure]:
    """Commit latency with the journal flushed before acknowledgements (Odin's setting)
    beside the same without (PySyncObj's own), measured one after the other."""
    figures = []
    results = {flush: _latencies(flush, n) for flush in (True, False)}
    for where, index in (("leader", 0), ("follower", 1)):
        on, off = results[True][index], results[False][index]
        p50_on, p99_on = _pct(on, 50), _pct(on, 99)
        note = (
            f"{n} commits one after another, 3 nodes on loopback; p99 {p99_on:.1f} ms; without "
            f"flushing p50 {_pct(off, 50):.1f} / p99 {_pct(off, 99):.1f} ms"
        )
        figures.append(
            Figure(
                f"commit latency through the {where}, journal flushed, p50", p50_on, "ms", "", note
            )
        )
    return figures


def _pct(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] if ordered else math.nan
