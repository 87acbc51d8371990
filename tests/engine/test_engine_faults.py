"""Faults with real processes: SIGKILL, a full disk, damaged files (needs root).

Each test kills or starves a real ``odin-engine`` and checks what the user
would see afterwards through the real CLI, as a real user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, wait_for, write_job
from real_users import ALICE, deploy, engine_exit, finished

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root: real users, mounts, SIGKILL"),
    pytest.mark.slow,
]

CRASHY = """
import os, time
run = os.environ["ODIN_RUN_ID"]
with open({marker!r}, "a") as out:
    out.write(f"{{run}} {{os.getpid()}}\\n")
if not run.endswith("~1"):
    time.sleep(120)  # the first attempt is still running when the engine dies
print("done", run)
"""


def _marker_lines(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(line.split()[0], int(line.split()[1])) for line in path.read_text().splitlines()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkill_during_a_run_loses_nothing_and_runs_nothing_twice(
    engine: Engine, world_dir: Path
) -> None:
    home = user_dir(world_dir, ALICE)
    marker = home / "starts.txt"
    crashy = write_job(home, "crashy", CRASHY.format(marker=str(marker)), extra="  retries: 1\n")
    others = [write_job(home, f"keep{i}", "print('kept')\n") for i in range(3)]
    for path in (crashy, *others):
        deploy(engine, path)
    job = job_id_of(crashy)
    odin("run", "-i", job, engine=engine, user=ALICE)
    wait_for(lambda: _marker_lines(marker), what="the run to start")
    [(first_run, first_pid)] = _marker_lines(marker)

    engine.kill()
    engine.start()

    listed = {j["id"] for j in odin("list", "-o", "json", engine=engine, user=ALICE).json()}
    assert {job_id_of(p) for p in (crashy, *others)} <= listed
    runs: list[Any] = wait_for(
        lambda: r if len(r := finished(engine, job)) == 2 else [],
        timeout=30,
        what="the lost run and its retry",
    )
    by_id = {r["id"]: r for r in runs}
    assert by_id[first_run]["status"] == "lost"
    assert by_id[f"{first_run}~1"]["status"] == "succeeded"
    starts = [run for run, _ in _marker_lines(marker)]
    assert sorted(starts) == sorted([first_run, f"{first_run}~1"]), "a run started twice"
    # The orphan of the killed engine does not live on (cgroup of the dead engine killed).
    wait_for(lambda: not _alive(first_pid), timeout=10, what="the orphaned run to be killed")


def test_sigkill_during_deploys_keeps_every_acknowledged_job(
    engine: Engine, world_dir: Path
) -> None:
    home = user_dir(world_dir, ALICE)
    paths = [write_job(home, f"d{i}", "print(1)\n") for i in range(200)]
    acknowledged: list[str] = []
    stop = threading.Event()

    def deployer() -> None:
        for path in paths:
            if stop.is_set():
                return
            result = odin("deploy", "-f", str(path), engine=engine, user=ALICE, check=False)
            if result.returncode == 0:
                acknowledged.append(job_id_of(path))

    workers = [threading.Thread(target=deployer) for _ in range(1)]
    for worker in workers:
        worker.start()
    wait_for(lambda: len(acknowledged) >= 8, timeout=60, what="some deploys")
    engine.kill()
    stop.set()
    for worker in workers:
        worker.join(timeout=120)
    engine.start()
    listed = {j["id"] for j in odin("list", "-o", "json", engine=engine, user=ALICE).json()}
    missing = set(acknowledged) - listed
    assert not missing, f"{len(missing)} acknowledged deploys lost"


def test_runs_a_node_could_not_save_reach_its_history_when_it_is_back(
    engine: Engine, world_dir: Path
) -> None:
    """A run's history row is written when its end is applied; nothing is written for
    what the journal replays at start. Here the history is lost outright while the
    engine is down: the runs the replicated state still holds must come back."""
    home = user_dir(world_dir, ALICE)
    job = job_id_of(write_job(home, "kept", "print('kept')\n"))
    deploy(engine, home / "kept.yml")
    for _ in range(3):
        odin("run", "-i", job, engine=engine, user=ALICE)
    ran = wait_for(lambda: r if len(r := finished(engine, job)) == 3 else [], what="3 runs")
    engine.kill()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{engine.data_dir / 'store.db'}{suffix}").unlink(missing_ok=True)
    engine.start()

    def saved() -> set[str]:
        with contextlib.closing(sqlite3.connect(engine.data_dir / "store.db")) as db:
            return {row[0] for row in db.execute("SELECT id FROM runs")}

    wanted = {run["id"] for run in ran}
    wait_for(lambda: saved() >= wanted, timeout=10, what="the runs back in the history")


# -- a full disk ---------------------------------------------------------------


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False
    )
    return filler


def test_a_full_output_disk_still_records_runs_and_recovers(world_dir: Path) -> None:
    """The data directory is a small tmpfs; Raft's journal lives elsewhere (see docs/security.md)."""
    raft_home = world_dir / "raft-on-another-disk"
    raft_home.mkdir()
    engine = Engine(root=world_dir)
    with small_disk(engine.data_dir, "24m") as disk:
        (disk / "raft").symlink_to(raft_home)
        engine.start()
        try:
            home = user_dir(world_dir / "jobs", ALICE)
            code = "for i in range(3000):\n    print('line', i, 'x' * 60)\n"
            job = job_id_of(write_job(home, "talker", code))
            deploy(engine, home / "talker.yml")

            def one_run(count: int) -> dict[str, object]:
                odin("run", "-i", job, engine=engine, user=ALICE)
                runs: list[Any] = wait_for(
                    lambda: r if len(r := finished(engine, job)) >= count else [],
                    timeout=30,
                    what=f"run {count}",
                )
                latest = max(runs, key=lambda r: r["instant"])
                assert latest["status"] == "succeeded", latest
                out = odin("log", "-i", job, "-n", "1", "--output", engine=engine, user=ALICE)
                return {"run": latest, "text": out.stdout}

            first = one_run(1)
            assert "line 2999" in str(first["text"]) and "disk is full" not in str(first["text"])

            filler = _fill(disk)
            starved = one_run(2)
            text = str(starved["text"])
            assert "line 2999" in text  # the tail survives
            assert "disk is full" in text or "tail only" in text, text[:500]
            assert "line 0 " not in text  # the head was given up

            filler.unlink()
            healed = one_run(3)
            assert "line 0 " in str(healed["text"]) and "line 2999" in str(healed["text"])
        finally:
            engine.stop()


# -- damaged files ---------------------------------------------------------------


def _engine_with_jobs(world_dir: Path, count: int) -> tuple[Engine, list[str]]:
    engine = Engine(root=world_dir).start()
    home = user_dir(world_dir / "jobs", ALICE)
    ids = []
    for i in range(count):
        path = write_job(home, f"j{i}", "print(1)\n")
        deploy(engine, path)
        ids.append(job_id_of(path))
    engine.stop()
    return engine, ids


def _journal_end(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[36:40], "little")


@pytest.mark.parametrize("damage", ["truncated journal", "garbled journal", "garbled vote file"])
def test_a_damaged_raft_journal_stops_the_engine_with_a_way_out(
    world_dir: Path, damage: str
) -> None:
    engine, ids = _engine_with_jobs(world_dir, 3)
    raft = engine.data_dir / "raft"
    backup = world_dir / "raft.backup"
    shutil.copytree(raft, backup)
    journal = raft / "raft.journal"
    if damage == "truncated journal":
        os.truncate(journal, _journal_end(journal) - 7)
    elif damage == "garbled journal":
        data = bytearray(journal.read_bytes())
        data[40:48] = b"\xff" * 8  # the first record's length
        journal.write_bytes(bytes(data))
    else:
        (raft / "raft.journal.meta").write_bytes(b"\x00garbage")

    refused = engine_exit(engine)
    message = refused.stdout + refused.stderr
    assert refused.returncode != 0, message
    assert "damaged" in message and "--join" in message, message
    assert "Traceback" not in message

    shutil.rmtree(raft)
    shutil.copytree(backup, raft)
    engine.start()
    try:
        listed = {j["id"] for j in odin("list", "-o", "json", engine=engine, user=ALICE).json()}
        assert set(ids) <= listed
    finally:
        engine.stop()


def test_a_damaged_run_store_stops_the_engine_with_a_way_out(world_dir: Path) -> None:
    engine, ids = _engine_with_jobs(world_dir, 1)
    store = engine.data_dir / "store.db"
    for leftover in ("store.db-wal", "store.db-shm"):
        (engine.data_dir / leftover).unlink(missing_ok=True)
    data = bytearray(store.read_bytes())
    data[0:100] = os.urandom(100)  # the SQLite header
    store.write_bytes(bytes(data))

    refused = engine_exit(engine)
    message = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "store" in message and "move it aside" in message, message

    store.rename(store.with_suffix(".damaged"))
    engine.start()
    try:
        listed = {j["id"] for j in odin("list", "-o", "json", engine=engine, user=ALICE).json()}
        assert set(ids) <= listed  # the jobs come from the Raft state, not the store
    finally:
        engine.stop()
