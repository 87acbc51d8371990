"""The Raft journal is flushed before what depends on it leaves the node.

Three real ``ReplicatedLog`` nodes on loopback, in this process: every acknowledgement
a follower sends names only entries its journal had flushed before, and the term and
vote file is written through a fsync'ed temporary file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from odin.cluster.harness import free_ports, wait_for
from odin.cluster.raft import ReplicatedLog

pytestmark = pytest.mark.slow


class Recorder:
    """One node's flushes (the last journal index each covered) and acknowledgements."""

    def __init__(self) -> None:
        self.flushed = 0
        self.acks: list[tuple[int, int]] = []  # (index acknowledged, flushed before it)


def _instrument(log: ReplicatedLog, recorder: Recorder) -> None:
    node: Any = log._node
    durable = node.durable
    journal = node._SyncObj__raftLog
    sync, send = durable.sync, node._SyncObj__sendNextNodeIdx
    if not durable._dirty and len(journal):  # what was flushed before the recording began
        recorder.flushed = journal[-1][1]

    def recorded_sync() -> None:
        dirty = durable._dirty
        sync()
        if dirty and len(journal):
            recorder.flushed = journal[-1][1]

    def recorded_send(peer: Any, *args: Any, **kwargs: Any) -> None:
        nxt = kwargs.get("nextNodeIdx")
        acked = (nxt - 1) if nxt is not None else (journal[-1][1] if len(journal) else 0)
        send(peer, *args, **kwargs)  # flushes first, then records what it flushed
        if kwargs.get("success"):
            recorder.acks.append((acked, recorder.flushed))

    durable.sync = recorded_sync
    node._SyncObj__sendNextNodeIdx = recorded_send


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[list[ReplicatedLog]]:
    ports = free_ports(3)
    addrs = [f"127.0.0.1:{p}" for p in ports]
    applied: list[list[bytes]] = [[], [], []]
    logs = [
        ReplicatedLog(
            self_addr=addr,
            partners=addrs,
            data_dir=tmp_path / f"n{i}",
            secret="durable-test-secret",
            apply=applied[i].append,
            snapshot=lambda: b"",
            restore=lambda _blob: None,
        )
        for i, addr in enumerate(addrs)
    ]
    for log in logs:
        log.start()
    try:
        yield logs
    finally:
        for log in logs:
            log.stop()


def test_a_follower_acknowledges_only_entries_its_journal_flushed(
    trio: list[ReplicatedLog],
) -> None:
    leader = wait_for(lambda: next((log for log in trio if log.is_leader()), None), 15, "a leader")
    recorders = {id(log): Recorder() for log in trio}
    for log in trio:
        log._on_raft_thread(lambda log=log: _instrument(log, recorders[id(log)]))
    for i in range(50):
        leader.propose(f"entry {i}".encode())
    time.sleep(0.3)
    followers = [log for log in trio if log is not leader]
    acks = [ack for log in followers for ack in recorders[id(log)].acks]
    assert len(acks) >= 10, acks
    late = [(acked, flushed) for acked, flushed in acks if acked > flushed]
    assert not late, f"acknowledged before flushed: {late[:5]}"
    # every node flushes its journal (the leader's own flush may come later on a busy machine)
    wait_for(lambda: all(log.journal_syncs().syncs > 0 for log in trio), 10, "every node's flush")
    meta = Path(str(followers[0]._data_dir)) / "raft.journal.meta"
    assert meta.exists() and not meta.with_name(meta.name + ".tmp").exists()
