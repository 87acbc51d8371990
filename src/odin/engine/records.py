"""The records a run's SDK adds while it runs: checked, bounded, and held until it ends.

Each live run has a token that its SDK presents with its records (``add_records``,
which the API calls). They are held in memory with the run (``LiveRun.records``)
until it ends, within ``RECORD_BYTES_KEPT_PER_USER`` per owner on this node
(``HeldRecords``); then they go whole to this node's run store, and a bounded
summary of them travels with ``FinishRun`` (``odin.cluster.summary``).
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from typing import Any, Protocol

import orjson

from odin import config
from odin.cluster.model import Record
from odin.cluster.quotas import human_bytes
from odin.cluster.summary import record_size
from odin.engine.liverun import LiveRun
from odin.errors import InvalidInput, LimitExceeded, PermissionDenied

RECORD_TYPES = frozenset({"watch", "condition", "result"})
RECORD_SLACK_BYTES = 256
"""SDKs format timestamps a little differently; the bound they enforce is exact, ours has slack."""


class HeldRecords:
    """The bytes of records the live runs on node ``node`` hold, per owner uid."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.bytes: Counter[int] = Counter()

    def take(self, owner: int, more: int) -> None:
        """Count ``more`` bytes for ``owner``, or raise LimitExceeded over the quota."""
        verdict = held_records_verdict(self.bytes[owner], more, self.node)
        if verdict is not None:
            raise LimitExceeded(verdict)
        self.bytes[owner] += more

    def release(self, live: LiveRun) -> None:
        """``live`` is no longer live here: its records no longer count for its owner."""
        owner = live.run.owner_uid
        self.bytes[owner] -= sum(live.sizes)
        if self.bytes[owner] <= 0:
            del self.bytes[owner]


class RecordKeeper(Protocol):
    """Where ``add_records`` finds a node's live runs and their held records (the launcher)."""

    live: dict[str, LiveRun]
    held_records: HeldRecords


def held_records_verdict(held: int, more: int, node: str) -> str | None:
    """Why ``more`` bytes of records are refused to a user whose live runs here hold ``held``
    (they are in memory until each run ends), or None."""
    quota = config.RECORD_BYTES_KEPT_PER_USER
    if held + more <= quota:
        return None
    return (
        f"over the quota of {quota} bytes ({human_bytes(quota)}) of records per user "
        f"(RECORD_BYTES_KEPT_PER_USER): your runs on node {node} hold {held} bytes of records "
        f"and these are {more} more"
    )


def check_record(raw: Any) -> Record:
    """A record from an SDK, checked for shape and size; InvalidInput/LimitExceeded otherwise."""
    if not isinstance(raw, dict):
        raise InvalidInput("a record is an object with seq, ts, type, desc and value")
    try:
        encoded = orjson.dumps(raw)
    except orjson.JSONEncodeError as error:
        raise InvalidInput(f"a record must be plain JSON with 64-bit integers ({error})") from None
    raw = orjson.loads(encoded)  # what every node will read back from the log
    size = len(encoded)
    if size > config.MAX_RECORD_BYTES + RECORD_SLACK_BYTES:
        raise LimitExceeded(
            f"a record is {size} bytes, over the limit of {config.MAX_RECORD_BYTES}"
        )
    kind, desc = raw.get("type"), raw.get("desc")
    seq, ts = raw.get("seq"), raw.get("ts")
    if kind not in RECORD_TYPES:
        raise InvalidInput(f"a record's type is watch, condition or result, not {kind!r}")
    if not isinstance(desc, str):
        raise InvalidInput("a record's desc must be a string")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(ts, int | float):
        raise InvalidInput("a record needs an integer seq and a numeric ts (seconds)")
    return Record(seq=seq, ts=float(ts), type=kind, desc=desc, value=raw.get("value"))


def add_records(
    keeper: RecordKeeper, run_id: str, token: str, peer_pid: int | None, raw: Any
) -> int:
    """Accept records for a live run from a process of that run holding its token."""
    live = keeper.live.get(run_id)
    if live is None or not secrets.compare_digest(live.token, token):
        raise PermissionDenied(f"no live run {run_id} with that token on this node")
    if peer_pid is None or live.pgid is None or not _in_run(peer_pid, live.pgid):
        raise PermissionDenied("records are accepted only from the run's own processes")
    if not isinstance(raw, list):
        raise InvalidInput("records must be a list")
    records = [check_record(item) for item in raw]
    seen = {(r.seq, r.ts, r.type, r.desc) for r in live.records}
    fresh = [r for r in records if (r.seq, r.ts, r.type, r.desc) not in seen]
    if len(live.records) + len(fresh) > config.MAX_RECORDS_PER_RUN:
        raise LimitExceeded(f"a run may make at most {config.MAX_RECORDS_PER_RUN} records")
    sizes = [record_size(r) for r in fresh]
    keeper.held_records.take(live.run.owner_uid, sum(sizes))
    live.records.extend(fresh)
    live.sizes.extend(sizes)
    return len(records)


def _in_run(pid: int, pgid: int) -> bool:
    try:
        return bool(os.getpgid(pid) == pgid or os.getsid(pid) == pgid)
    except ProcessLookupError:
        return False
