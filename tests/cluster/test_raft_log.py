"""ReplicatedLog in-process: its guards, its dump file, and crash states built on disk."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from odin.cluster.harness import ListMachine, free_ports, running, wait_for
from odin.cluster.raft import DUMP_FILE, RaftTuning, ReplicatedLog, _Dump, read_dump, write_dump
from odin.errors import Conflict, InvalidInput, Unavailable

NO_COMPACTION = RaftTuning(compaction_entries=1_000_000, compaction_s=1e9)


ADDR = f"127.0.0.1:{free_ports(1)[0]}"  # one address: the dump records the membership


def _log(
    data_dir: Path,
    machine: ListMachine,
    secret: str = "s3cret",
    tuning: RaftTuning = NO_COMPACTION,
    leaders: list[str | None] | None = None,
) -> ReplicatedLog:
    return ReplicatedLog(
        self_addr=ADDR,
        partners=[],
        data_dir=data_dir,
        secret=secret,
        apply=machine.apply,
        snapshot=machine.snapshot,
        restore=machine.restore,
        on_leader_change=None if leaders is None else leaders.append,
        tuning=tuning,
    )


def _run(data_dir: Path, commands: list[str]) -> list[str]:
    """Start a fresh single node on ``data_dir``, propose, stop; return its items."""
    machine = ListMachine()
    log = _log(data_dir, machine)
    log.start()
    try:
        assert log.wait_ready(10)
        for command in commands:
            log.propose(command.encode())
        return machine.items()
    finally:
        log.stop()


def test_an_empty_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="secret is empty"):
        _log(tmp_path, ListMachine(), secret="")


def test_propose_before_start_is_unavailable_and_start_is_once(tmp_path: Path) -> None:
    log = _log(tmp_path, ListMachine())
    with pytest.raises(Unavailable, match="not running"):
        log.propose(b"x")
    log.start()
    try:
        with pytest.raises(Conflict, match="already started"):
            log.start()
    finally:
        log.stop()
    log.stop()  # idempotent


def test_a_taken_port_is_unavailable(tmp_path: Path) -> None:
    quick = dataclasses.replace(NO_COMPACTION, bind_retries=2, bind_retry_s=0.05)
    with socket.socket() as squatter:
        host, port = ADDR.rsplit(":", 1)
        squatter.bind((host, int(port)))
        squatter.listen()
        with pytest.raises(Unavailable, match="cannot bind the raft port"):
            _log(tmp_path, ListMachine(), tuning=quick).start()


def test_a_lone_node_leads_reports_it_and_answers_async(tmp_path: Path) -> None:
    leaders: list[str | None] = []
    machine = ListMachine()
    log = _log(tmp_path, machine, leaders=leaders)
    log.start()
    try:
        assert log.wait_ready(10)
        assert leaders[-1] == ADDR
        assert log.is_leader() and log.leader() == ADDR and log.members() == [ADDR]
        assert asyncio.run(log.propose_async(b"one")) == 1
        status = log.status()
        assert status["state"] == "leader" and status["commit_index"] == status["last_applied"]
    finally:
        log.stop()


def test_dump_round_trip_and_foreign_files_refused(tmp_path: Path) -> None:
    dump = _Dump(b"\x00state", (b"\x01cmd", 7, 2), (b"\x00", 6, 2), ("127.0.0.1:1",))
    write_dump(tmp_path / "d", dump)
    assert read_dump(tmp_path / "d") == dump
    (tmp_path / "e").write_bytes(b"x" * 64)
    with pytest.raises(ValueError, match="not an Odin raft dump"):
        read_dump(tmp_path / "e")


@pytest.mark.slow
def test_a_dump_written_just_before_a_crash_does_not_drop_the_journal_tail(
    tmp_path: Path,
) -> None:
    """PySyncObj renames a new dump into place one tick before it cuts the journal.

    Build that state on disk: a journal holding every entry plus a dump from the
    middle of it. Restarting must keep the entries after the dump.
    """
    full, cut = tmp_path / "full", tmp_path / "cut"
    first = [f"a{i}" for i in range(10)]
    assert _run(full, first) == first
    shutil.copytree(full, cut)

    machine = ListMachine()  # a second life on the copy writes a dump and cuts its journal
    log = _log(cut, machine)
    log.start()
    try:
        assert log.wait_ready(10)
        log.compact()
        wait_for(lambda: log.status()["log_len"] == 2, 10, "the journal to be cut")
    finally:
        log.stop()

    second = [f"b{i}" for i in range(5)]  # the same second life on the original, no dump
    assert _run(full, second) == first + second
    shutil.copy(cut / DUMP_FILE, full / DUMP_FILE)
    assert read_dump(full / DUMP_FILE).last[1] < 10 + 1 + 5  # the dump is mid-journal

    assert _run(full, []) == first + second


def _started_child(gate: Path) -> int:
    started = wait_for(lambda: next(gate.glob("started.*"), None), 10, "a dump being written")
    return int(started.name.split(".")[1])


COMPACT_AT_20 = RaftTuning(compaction_entries=20, compaction_s=1e9)


@contextlib.contextmanager
def _gated(
    tmp_path: Path, marks: tuple[str, ...] = (), retry_s: float = 10.0
) -> Iterator[tuple[Path, Path, ReplicatedLog]]:
    """A started node whose dumps wait at a gate (``marks`` made in it first), which
    compacts after 20 entries and has been given 25 commands: (data, gate, log)."""
    data, gate = tmp_path / "data", tmp_path / "gate"
    gate.mkdir()
    for mark in marks:
        (gate / mark).touch()
    tuning = dataclasses.replace(COMPACT_AT_20, dump_retry_s=retry_s)
    log = _log(data, ListMachine(dump_gate=gate), tuning=tuning)
    log.start()
    try:
        assert log.wait_ready(10)
        for i in range(25):
            log.propose(f"a{i}".encode())
        yield data, gate, log
    finally:
        log.stop()
    assert not list(data.glob("*.part"))


@pytest.mark.slow
def test_commands_commit_while_a_child_writes_the_dump(tmp_path: Path) -> None:
    with _gated(tmp_path) as (data, gate, log):
        child = _started_child(gate)
        assert child != os.getpid()
        for i in range(25, 40):  # the raft thread is not the one held at the gate
            log.propose(f"a{i}".encode(), timeout=5)
        assert running(child)
        assert not (data / DUMP_FILE).exists()

        (gate / "release").touch()
        wait_for(lambda: not running(child), 10, "the child to end")
        wait_for(lambda: (data / DUMP_FILE).exists(), 10, "the dump in place")
        items = json.loads(read_dump(data / DUMP_FILE).snapshot)["items"]
        assert 0 < len(items) <= 25  # the state at the fork (40 items at the release)
        assert items == [f"a{i}" for i in range(len(items))]
        wait_for(lambda: log.status()["log_len"] < 25, 10, "the journal to be cut")
    assert _run(data, ["b"]) == [*(f"a{i}" for i in range(40)), "b"]


@pytest.mark.slow
def test_a_failed_child_is_followed_by_a_dump_written_in_process(tmp_path: Path) -> None:
    with _gated(tmp_path, ("release", "fail"), retry_s=0.2) as (data, gate, log):
        wait_for(lambda: log.status()["log_len"] < 20, 10, "the journal to be cut")
    writers = {int(p.name.split(".")[1]) for p in gate.glob("started.*")}
    assert os.getpid() in writers and len(writers) >= 2  # a child tried first
    assert json.loads(read_dump(data / DUMP_FILE).snapshot)["items"][:15] == [
        f"a{i}" for i in range(15)
    ]


def _tries(gate: Path, count: int) -> list[tuple[int, float]] | None:
    """The first ``count`` dump tries the gate saw (pid, time), once there are that many."""
    path = gate / "attempts"
    lines = path.read_text().splitlines() if path.exists() else []
    if len(lines) < count:
        return None
    return [(int(pid), float(at)) for pid, at in (line.split() for line in lines[:count])]


@pytest.mark.slow
def test_failing_dumps_are_retried_after_a_pause_not_at_every_tick(tmp_path: Path) -> None:
    """A lasting failure (say, a full disk) must not have the node fork a child, or write
    in-process, at every tick: the next try waits ``dump_retry_s``."""
    with _gated(tmp_path, ("release", "fail-all"), retry_s=1.0) as (_data, gate, log):
        tries = wait_for(lambda: _tries(gate, 3), 20, "three tries")
        pids = [pid for pid, _ in tries]
        assert pids[0] != os.getpid() and pids[1] == os.getpid()  # a child, then in-process
        gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(tries)]
        assert min(gaps) >= 0.9  # each a pause apart, not a tick apart
        assert log.propose(b"still") == 26  # the node goes on meanwhile

        (gate / "fail-all").unlink()
        wait_for(lambda: log.status()["log_len"] < 20, 10, "the journal to be cut")
