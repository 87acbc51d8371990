"""Per-user quotas and the bounded records summary, in the state machine and the run store.

The state machine and the store are the real ones; only the quotas are made small (the
quotas travel in the command, the store's retention reads ``odin.config``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from odin import config
from odin.cluster import commands as c
from odin.cluster.model import Job, Record, Run, RunReason, RunStatus
from odin.cluster.quotas import UserQuotas
from odin.cluster.state import StateMachine
from odin.cluster.summary import CLIPPED, record_size
from odin.disk import Room, reserve_for, shortage
from odin.engine.records import held_records_verdict
from odin.engine.started import StartedFile
from odin.errors import ExecutionError, LimitExceeded
from odin.store.sqlite import Store

T0 = 1_800_000_000.0
QUOTAS = UserQuotas(jobs=2, code_bytes=1000)


def job(job_id: str, code: str = "print(1)", owner: int = 1000) -> Job:
    return Job(
        id=job_id,
        owner_uid=owner,
        owner_gid=owner,
        owner="alice",
        name="n",
        description="",
        language="python",
        filename="n.py",
        schedule="never",
        timezone="UTC",
        code=code,
        yaml="",
        code_sha="x",
        created_at=T0,
        updated_at=T0,
    )


def put(sm: StateMachine, j: Job, quotas: UserQuotas | None = QUOTAS) -> Job:
    """Apply a deploy as every node does: through the command's wire form."""
    saved: Job = sm.apply(c.decode(c.encode(c.PutJob(j, quotas))))[0]
    return saved


def test_a_deploy_past_the_job_quota_is_refused_naming_it_and_changes_nothing() -> None:
    sm = StateMachine()
    put(sm, job("aaaaaaaaaaa1"))
    put(sm, job("aaaaaaaaaaa2"))
    before = (dict(sm.jobs), sm.owned[1000], sm.code_owned[1000], sm.applied)
    with pytest.raises(LimitExceeded, match=r"quota of 2 jobs per user \(MAX_JOBS_PER_USER\)"):
        put(sm, job("aaaaaaaaaaa3"))
    assert (dict(sm.jobs), sm.owned[1000], sm.code_owned[1000], sm.applied) == before
    assert put(sm, job("aaaaaaaaaaa2", "print(2)")).version == 2  # a redeploy adds no job
    put(sm, job("bbbbbbbbbbb1", owner=1001))  # another user's count is their own
    put(sm, job("aaaaaaaaaaa3"), quotas=None)  # a restore (or an older entry) checks none
    sm.apply(c.RemoveJob("aaaaaaaaaaa3"))
    sm.apply(c.RemoveJob("aaaaaaaaaaa1"))
    put(sm, job("aaaaaaaaaaa4"))  # room again


def test_a_deploy_past_the_code_quota_is_refused_naming_it_and_changes_nothing() -> None:
    sm = StateMachine()
    put(sm, job("aaaaaaaaaaa1", "#" + "x" * 599))
    assert sm.code_owned[1000] == 600
    wide = "#" + "é" * 200  # 401 bytes of UTF-8: they count, not characters
    with pytest.raises(LimitExceeded, match=r"quota of 1000 bytes.*MAX_CODE_BYTES_PER_USER"):
        put(sm, job("aaaaaaaaaaa2", wide))
    with pytest.raises(LimitExceeded, match="would total 1001 bytes"):
        put(sm, job("aaaaaaaaaaa1", "#" + "x" * 1000))  # a redeploy that grows counts too
    assert set(sm.jobs) == {"aaaaaaaaaaa1"} and sm.code_owned[1000] == 600
    put(sm, job("aaaaaaaaaaa1", "print(1)"))  # smaller code always goes through
    put(sm, job("aaaaaaaaaaa2", wide))
    assert sm.code_owned[1000] == 8 + 401
    copy = StateMachine()
    copy.restore(sm.snapshot())
    assert copy.code_owned == sm.code_owned and copy.owned == sm.owned


def _record(i: int, kind: str = "watch", desc: str | None = None, value: object = None) -> Record:
    return Record(
        seq=i,
        ts=T0 + i,
        type=kind,
        desc=desc if desc is not None else f"s{i % 3}",
        value=i if value is None else value,
    )


def _finished(sm: StateMachine, records: tuple[Record, ...]) -> Run:
    sm.apply(c.PutJob(job("aaaaaaaaaaa1")))
    run = Run(
        id="aaaaaaaaaaa1@1",
        job_id="aaaaaaaaaaa1",
        owner_uid=1000,
        instant=T0,
        reason=RunReason.MANUAL,
        node="n1",
        planned_at=T0,
    )
    sm.apply(c.PlanRuns(runs=(run,), ledger={}))
    end = c.FinishRun(run.id, RunStatus.SUCCEEDED, T0 + 1, records=records, record_count=0)
    sm.apply(c.decode(c.encode(end)))
    return sm.runs[run.id]


def test_the_state_keeps_a_bounded_summary_of_many_records() -> None:
    """Even a node that sends a run's every record (an older engine's journal, say) leaves
    the state a summary: results first, the last of each series, big values noted."""
    many = tuple(_record(i, value="v" * 500) for i in range(config.MAX_RECORDS_PER_RUN))
    result = _record(2000, "result", "done", 0)
    huge = _record(2001, "watch", "huge", "h" * 10_000)
    run = _finished(StateMachine(), (*many, huge, result))
    assert sum(record_size(r) for r in run.records) <= config.RECORDS_SUMMARY_BYTES
    assert run.record_count == len(many) + 2 and run.summarized
    kept = {r.desc: r for r in run.records}
    assert kept["done"] == result
    assert kept["huge"].value == CLIPPED.format(size=record_size(huge))
    assert [kept[f"s{k}"].seq for k in range(3)] == [999, 997, 998]  # each series's last
    assert [r.seq for r in run.records] == [997, 998, 999, 2001, 2000]  # in the order made


def test_a_summary_survives_a_snapshot() -> None:
    sm = StateMachine()
    run = _finished(sm, tuple(_record(i, value="v" * 500) for i in range(100)))
    copy = StateMachine()
    copy.restore(sm.snapshot())
    assert copy.runs[run.id] == run and copy.runs[run.id].record_count == 100


def test_a_few_records_are_replicated_whole() -> None:
    few = tuple(_record(i) for i in range(3))
    run = _finished(StateMachine(), few)
    assert run.records == few and not run.summarized


def _out(store: Store, owner: int, job_id: str, k: int, size: int) -> str:
    run_id = f"{job_id}@{k}"
    assert store.save_output(run_id, job_id, b"o" * size, size, 0, owner)
    return run_id


def test_the_run_store_keeps_output_and_records_within_each_users_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "OUTPUT_BYTES_KEPT_PER_USER", 10_000)
    monkeypatch.setattr(config, "RECORD_BYTES_KEPT_PER_USER", 22_000)
    monkeypatch.setattr(config, "STORE_TRIM_BYTES", 1)  # a trim after every save
    store = Store(tmp_path / "store.db")
    alices = [_out(store, 1000, f"aaaaaaaaaaa{k % 2}", k, 3000) for k in range(10)]
    bobs = [_out(store, 1001, "bbbbbbbbbbbb", k, 3000) for k in range(3)]
    kept = [run for run in alices if store.output(run) is not None]
    assert kept == alices[-3:]  # the newest, over both of her jobs, within 10,000 bytes
    assert all(store.output(run) is not None for run in bobs)

    records = tuple(_record(i, value="r" * 1000) for i in range(5))
    for k in range(10):
        assert store.save_records(f"aaaaaaaaaaa0@{k}", "aaaaaaaaaaa0", 1000, records)
    found = store.job_records("aaaaaaaaaaa0", 1000)
    assert sorted(found) == [f"aaaaaaaaaaa0@{k}" for k in (6, 7, 8, 9)]  # 5 KB each
    assert found["aaaaaaaaaaa0@9"] == [dataclasses.asdict(r) for r in records]
    assert store.job_records("aaaaaaaaaaa0", 1001) == {}  # another owner of a reused id
    assert list(store.job_records("aaaaaaaaaaa0", 1000, ["aaaaaaaaaaa0@8"])) == ["aaaaaaaaaaa0@8"]
    store.forget_job("aaaaaaaaaaa0")
    assert store.job_records("aaaaaaaaaaa0", 1000) == {}


def test_an_older_store_gets_the_owner_column(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE outputs (run_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, "
            "bytes INTEGER NOT NULL, dropped INTEGER NOT NULL, data BLOB NOT NULL)"
        )
        db.execute("INSERT INTO outputs VALUES ('a@1', 'a', 1, 0, x'61')")
    store = Store(path)
    assert store.output("a@1") == (b"a", 1, 0)
    assert store.save_output("a@2", "a", b"b", 1, 0, 1000)


def test_live_records_past_the_users_quota_are_refused_naming_it() -> None:
    quota = config.RECORD_BYTES_KEPT_PER_USER
    assert held_records_verdict(quota - 10, 10, "n1") is None
    refused = held_records_verdict(quota - 10, 11, "n1")
    assert refused is not None and "RECORD_BYTES_KEPT_PER_USER" in refused
    assert f"{quota} bytes (256 MiB)" in refused and "node n1" in refused


def test_the_disk_reserve_is_a_bounded_share_and_is_named() -> None:
    assert reserve_for(64 * config.MIB) == config.DISK_RESERVE_MIN_BYTES
    assert reserve_for(10 * 1024 * config.MIB) == int(10 * 1024 * config.MIB * 0.01)
    assert reserve_for(10**13) == config.DISK_RESERVE_BYTES
    assert shortage(Room(Path("/"), config.DISK_RESERVE_MIN_BYTES, 64 * config.MIB)) is None
    short = shortage(Room(Path("/"), config.MIB, 64 * config.MIB))
    assert short is not None and "below its reserve of 4.0 MiB" in short


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mounts a tmpfs")
def test_a_start_that_cannot_be_noted_raises_naming_the_disk(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
    try:
        started = StartedFile(disk / "started")
        started.add("a@1")  # its first page
        with (disk / "started").open("a") as note:
            note.write("\n" * (4096 - len("a@1\n")))  # that page is full
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={disk / 'filler'}", "bs=4k"], capture_output=True
        )
        where = re.escape(f"on the disk of {disk} (No space left on device)")
        with pytest.raises(ExecutionError, match=where):
            started.add("b@2")
        assert StartedFile(disk / "started").before == {"a@1"}
        (disk / "filler").unlink()
        started.add("c@3")
        assert StartedFile(disk / "started").before == {"a@1", "c@3"}
        started.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
