"""What a member can make the cluster store is bounded (needs root: real engines and users).

Records go whole to the run store of the node that ran them and only a bounded summary is
replicated; deploys are checked against per-user quotas (in the state machine, from the
quotas the command carries); below the data disk's reserve writes are refused, and a start
that cannot be noted does not happen.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine_harness import (
    Cluster,
    Engine,
    job_id_of,
    needs_root,
    odin,
    user_dir,
    wait_for,
    write_job,
)
from odin import config
from odin.disk import reserve_for, room_of
from real_users import ALICE, BOB, deploy, finished

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root: real users, mounts"),
    pytest.mark.slow,
]

# A job posting the most records a run may make, through its own token, in batches.
FLOOD = """
import json, os, socket
def post(records):
    body = json.dumps({{"records": records}}).encode()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(os.environ["ODIN_SOCKET"])
    head = (f"POST /v1/runs/{{os.environ['ODIN_RUN_ID'].replace('@', '%40')}}/records HTTP/1.1\\r\\n"
            f"Host: odin\\r\\nAuthorization: Bearer {{os.environ['ODIN_RUN_TOKEN']}}\\r\\n"
            f"Content-Type: application/json\\r\\nContent-Length: {{len(body)}}\\r\\nConnection: close\\r\\n\\r\\n")
    sock.sendall(head.encode() + body)
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply.split(b" ", 2)[1].decode()
pad = "v" * {size}
statuses = set()
for start in range(0, {count}, 50):
    batch = [{{"seq": i, "ts": 1000.0 + i, "type": "watch", "desc": f"series {{i % 5}}",
               "value": f"{{i}}:{{pad}}"}} for i in range(start, min(start + 50, {count}))]
    statuses.add(post(batch))
print("STATUSES", sorted(statuses))
"""


def _flood(size: int, count: int = config.MAX_RECORDS_PER_RUN) -> str:
    return FLOOD.format(size=size, count=count)


def _journal_end(engine: Engine) -> int:
    """Where the next Raft entry goes in the journal (its header's end offset)."""
    with open(engine.data_dir / "raft" / "raft.journal", "rb") as journal:
        head = journal.read(40)
    return int.from_bytes(head[36:40], "little")


def _rss(engine: Engine) -> int:
    assert engine.proc is not None
    for line in Path(f"/proc/{engine.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _run_once(
    engine: Engine, job: str, count: int, user: str = ALICE, port: str | None = None
) -> dict[str, Any]:
    """Run ``job`` now (on the node serving ``port``) and wait for its ``count``-th end."""
    odin("run", "-i", job, *(["-p", port] if port else []), engine=engine, user=user)
    runs: list[Any] = wait_for(
        lambda: r if len(r := finished(engine, job, user)) >= count else [],
        timeout=120,
        what=f"run {count}",
    )
    latest: dict[str, Any] = max(runs, key=lambda r: r["instant"])
    return latest


def _stats(engine: Engine, job: str, *extra: str, port: str | None = None) -> list[Any]:
    where = ["-p", port] if port else []
    result = odin("stats", "-i", job, *extra, *where, "-o", "json", engine=engine, user=ALICE)
    rows: list[Any] = result.json()
    return rows


def test_a_records_flood_keeps_journal_and_memory_bounded_and_stats_whole(
    engine: Engine, world_dir: Path
) -> None:
    """Twelve runs of 1000 records of 12 KiB each (12 MB a run, the attack of the review): the
    journal grows by kilobytes per run, not megabytes, the engine's memory stops growing once
    it has served a few (its allocator's pools are warm), and ``odin stats`` still shows every
    record whole."""
    home = user_dir(world_dir, ALICE)
    job = job_id_of(write_job(home, "flood", _flood(12 * config.KIB)))
    deploy(engine, home / "flood.yml")
    first = _run_once(engine, job, 1)
    for count in range(2, 5):
        _run_once(engine, job, count)
    journal_before, rss_before = _journal_end(engine), _rss(engine)
    for count in range(5, 13):
        latest = _run_once(engine, job, count)
    journal_growth = _journal_end(engine) - journal_before
    rss_growth = _rss(engine) - rss_before

    for run in (first, latest):
        assert run["status"] == "succeeded", run
        assert run["record_count"] == config.MAX_RECORDS_PER_RUN, run
        replicated = sum(len(str(r)) for r in run["records"])
        assert 0 < replicated <= 2 * config.RECORDS_SUMMARY_BYTES, run["records"][:2]
        assert {r["desc"] for r in run["records"]} == {f"series {i}" for i in range(5)}
    out = odin("log", "-i", job, "-n", "1", "--output", engine=engine, user=ALICE).stdout
    assert "STATUSES ['200']" in out, out[-2000:]
    # Before: each run's 12 MB went through Raft and stayed in memory (about +70 MB a run).
    assert journal_growth < 128 * config.KIB, journal_growth
    assert rss_growth < 32 * config.MIB, rss_growth

    for run in (first, latest):
        rows = _stats(engine, job, "--run", run["id"])
        assert [r["seq"] for r in rows] == list(range(config.MAX_RECORDS_PER_RUN))
        assert all(r["value"] == f"{r['seq']}:" + "v" * 12 * config.KIB for r in rows)


def test_stats_on_any_node_read_the_records_from_the_node_that_ran_the_run(
    world_dir: Path,
) -> None:
    primary = Engine(root=world_dir).start()
    cluster = Cluster(primary)
    try:
        cluster.add("worker1")
        home = user_dir(world_dir / "jobs", ALICE)
        path = write_job(home, "away", _flood(200), extra="  nodes: [worker1]\n")
        job = job_id_of(path)
        deploy(primary, path)
        run = _run_once(primary, job, 1, port=cluster.port_of("worker1"))
        assert run["node"] == "worker1" and run["record_count"] == config.MAX_RECORDS_PER_RUN
        assert len(run["records"]) < config.MAX_RECORDS_PER_RUN  # a summary in the state
        for port in (None, cluster.port_of("worker1")):  # through another node, then its own
            rows = _stats(primary, job, port=port)
            assert [r["seq"] for r in rows] == list(range(config.MAX_RECORDS_PER_RUN)), port
            assert rows[-1]["value"] == f"{config.MAX_RECORDS_PER_RUN - 1}:" + "v" * 200
    finally:
        cluster.stop_all()


def test_deploys_past_the_code_quota_are_refused_naming_it(engine: Engine, world_dir: Path) -> None:
    """The code of a user's jobs adds up to at most ``MAX_CODE_BYTES_PER_USER``."""
    home = user_dir(world_dir / "a", ALICE)
    per_job = config.MAX_CODE_BYTES - 4 * config.KIB  # under the per-job limit
    fits = config.MAX_CODE_BYTES_PER_USER // per_job
    body = "#" + "x" * (per_job - 10) + "\nprint(1)\n"
    paths = [write_job(home, f"big{k}", body) for k in range(fits + 1)]
    for path in paths[:fits]:
        deploy(engine, path)
    refused = odin("deploy", "-f", str(paths[fits]), engine=engine, user=ALICE, check=False)
    assert refused.returncode == 6, refused
    message = refused.stderr + refused.stdout
    assert "MAX_CODE_BYTES_PER_USER" in message, message
    assert str(config.MAX_CODE_BYTES_PER_USER) in message and "32 MiB" in message, message
    listed = {j["id"] for j in odin("list", "-o", "json", engine=engine, user=ALICE).json()}
    assert listed == {job_id_of(p) for p in paths[:fits]}  # nothing changed
    # Smaller code for an existing job, and another user's deploy, still go through.
    paths[0].with_suffix(".py").write_text("print('small')\n")
    deploy(engine, paths[0])
    bob = user_dir(world_dir / "b", BOB)
    deploy(engine, write_job(bob, "bobs", body), user=BOB)
    # Removing one makes room again.
    odin("rm", "-i", job_id_of(paths[1]), engine=engine, user=ALICE)
    deploy(engine, paths[fits])


# -- a nearly full data disk -----------------------------------------------------------


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (as in test_engine_faults)."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill_until(disk: Path, free: int) -> Path:
    """Write a filler file on ``disk`` so that about ``free`` bytes stay free."""
    filler = disk / "filler"
    chunk = b"\0" * config.MIB
    with open(filler, "ab") as out:
        while (left := room_of(disk).free - free) > 0:
            out.write(chunk[: min(left, len(chunk))])
            out.flush()
    return filler


LOUD = "import sys\nsys.stdout.write('z' * 1_000_000 + '\\nend\\n')\n"


def test_a_nearly_full_data_disk_refuses_writes_and_the_engine_still_restarts(
    world_dir: Path,
) -> None:
    """The whole data directory (Raft's journal and vote file included) on a 64 MiB tmpfs."""
    engine = Engine(root=world_dir)
    with small_disk(engine.data_dir, "64m") as disk:
        engine.start()
        try:
            reserve = reserve_for(room_of(disk).total)
            home = user_dir(world_dir / "jobs", ALICE)
            loud = job_id_of(write_job(home, "loud", LOUD))
            deploy(engine, home / "loud.yml")
            later = write_job(home, "later", "print('later')\n")

            # Runs' output stops at the reserve: the run store keeps tails only from there.
            _fill_until(disk, reserve + 3 * config.MIB)
            for count in range(1, 7):
                assert _run_once(engine, loud, count)["status"] == "succeeded"
            assert room_of(disk).free > reserve // 2, room_of(disk)

            _fill_until(disk, reserve // 2)
            refused = odin("deploy", "-f", str(later), engine=engine, user=ALICE, check=False)
            assert refused.returncode == 6, refused
            text = refused.stderr + refused.stdout
            assert "reserve" in text and f"{reserve / config.MIB:.1f} MiB" in text, text
            assert str(disk) in text, text
            refused_run = odin("run", "-i", loud, engine=engine, user=ALICE, check=False)
            assert refused_run.returncode == 6 and "reserve" in refused_run.stderr, refused_run
            assert engine.answers()

            engine.stop()  # a restart on the nearly full disk: Raft's files find room
            engine.start()
            listed = {j["id"] for j in odin("list", "-o", "json", engine=engine, user=ALICE).json()}
            assert loud in listed and job_id_of(later) not in listed

            (disk / "filler").unlink()
            deploy(engine, later)
            assert _run_once(engine, loud, 7)["status"] == "succeeded"
        finally:
            engine.stop()


# -- the local note of started runs ------------------------------------------------------

MARKED = "import os\nopen({marker!r}, 'a').write(os.environ['ODIN_RUN_ID'] + '\\n')\n"


def test_a_start_that_cannot_be_noted_does_not_run_and_says_why(world_dir: Path) -> None:
    """The note of started runs alone on a full tmpfs (bind-mounted in its place), so that
    Raft's journal beside it still has room: the run fails naming the disk and never runs."""
    engine = Engine(root=world_dir)
    raft = engine.data_dir / "raft"
    raft.mkdir(parents=True)
    note = raft / "started-runs"
    note.touch(mode=0o600)
    with small_disk(world_dir / "small", "64k") as disk:
        (disk / "started-runs").touch(mode=0o600)
        subprocess.run(["mount", "--bind", str(disk / "started-runs"), str(note)], check=True)
        try:
            filler = disk / "filler"
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True, check=False
            )
            engine.start()
            home = user_dir(world_dir / "jobs", ALICE)
            marker = home / "ran.txt"
            job = job_id_of(write_job(home, "marked", MARKED.format(marker=str(marker))))
            deploy(engine, home / "marked.yml")

            failed = _run_once(engine, job, 1)
            assert failed["status"] == "failed", failed
            assert "could not start" in failed["message"], failed
            assert str(note) in failed["message"], failed  # the disk: here, the file's mount
            assert "No space left on device" in failed["message"], failed
            assert not marker.exists(), "a run that could not be noted ran"
            assert engine.answers()

            filler.unlink()
            ran = _run_once(engine, job, 2)
            assert ran["status"] == "succeeded", ran
            assert marker.read_text().split() == [ran["id"]]
            assert ran["id"] in (disk / "started-runs").read_text().split()
        finally:
            engine.stop()
            subprocess.run(["umount", "-l", str(note)], check=False)


@pytest.fixture(autouse=True)
def _no_leftover_mounts(world_dir: Path) -> Iterator[None]:
    yield
    for mounted in reversed(Path("/proc/self/mounts").read_text().splitlines()):
        target = mounted.split()[1]
        if target.startswith(str(world_dir)):
            subprocess.run(["umount", "-l", target], check=False)
