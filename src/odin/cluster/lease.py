"""Who may start a planned run, and until when: the lease rules, as pure functions.

A node may open a run's start gate only while it holds its *lease*: within
``START_LEASE_S`` it was in touch with a majority of the voters (itself included). Every
node pings every other ten times a second, echoing the send time of the last ping it got
from that node and saying how far it has applied the log; contact dates from the echoed
send time (a ping held up by a cut network renews nothing when it heals) and counts only
once this node has applied as much as that partner had. So a node in touch with a
majority keeps its lease through an election, and a node that wakes from a freeze or comes back from a
partition learns of every run moved away from it before it may start anything. A lone
node always holds its lease.

The leader reasons from the other side: a node last heard at ``heard`` was heard by its
partners until about ``heard + CONTACT_SLACK_S`` at the latest, so its lease ended by
``heard + SURE_S``; every run of that node whose instant is at or after that time surely
never started, and it is moved to another node. Runs whose instant falls between
``heard`` and ``heard + SURE_S`` may have started there (their fate is unknown), and
follow the job's ``delivery``.

Times are each node's ``time.monotonic()``, never compared across hosts, and a run's
instant (wall time) only against the leader's own wall clock. The assumptions: clocks
run at rates within ``DRIFT`` of each other over a lease, and a node that loses touch
loses it with every partner at once, in both directions (a dead or frozen host, a cut
link); a group without a majority holds no lease, but a partial partition (a node that
reaches a majority but not the leader) or a one-way link can make the leader think a node
silent while it still holds its lease.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from odin import config
from odin.jobs.fields import Delivery


class LeaseState(StrEnum):
    """A node's start lease as ``odin nodes get`` shows it."""

    HELD = "held"  # it may start its runs
    LOST = "lost"  # this node: no contact with a quorum, its gates stay shut
    EXPIRING = "expiring"  # silent: it may still start runs, new ones go elsewhere
    EXPIRED = "expired"  # silent past SURE_S: its planned runs move to live nodes
    UNKNOWN = "-"  # asked of a follower about another node


def state_of(silent_s: float) -> LeaseState:
    """Another node's lease as the leader tells it from how long that node has been silent."""
    if silent_s > config.SURE_S:
        return LeaseState.EXPIRED
    return LeaseState.EXPIRING if unreachable(silent_s) else LeaseState.HELD


def quorum_contact(heard: Iterable[float], voters: int) -> float | None:
    """When a majority of ``voters`` (this leader among them) had last been heard from:
    the most recent time at which enough of the others had answered, or None if too few
    ever did."""
    needed = voters // 2  # the others needed besides this node
    if needed == 0:
        return float("inf")
    times = sorted(heard, reverse=True)
    return times[needed - 1] if len(times) >= needed else None


def holds_lease(now: float, contact: float | None) -> bool:
    """Whether a node last in touch with a quorum at ``contact`` (monotonic; None: never)
    may open a start gate at ``now``."""
    if contact is None:
        return False
    return now - contact < config.START_LEASE_S


def surely_stopped_at(heard_wall: float) -> float:
    """The wall time from which a node last heard at ``heard_wall`` surely starts
    nothing: runs of it due at or after this instant never started there."""
    return heard_wall + config.SURE_S


def unreachable(silent_s: float) -> bool:
    """Whether a node silent this long may no longer be given new runs."""
    return silent_s > config.SUSPECT_S


def move_reason(node: str, instant: float, heard_wall: float, delivery: Delivery) -> str | None:
    """Why a planned run of silent ``node``, due at ``instant``, goes to another node, or
    None when it stays: it may have started there and the job wants it at most once."""
    silent = f"node {node} stopped answering at {_clock(heard_wall)}"
    if instant >= surely_stopped_at(heard_wall):
        return f"moved: {silent}, before its lease could let it start this run"
    if delivery is Delivery.AT_LEAST_ONCE:
        return f"moved: {silent}; it may have started this run too (delivery: at-least-once)"
    return None


def _clock(wall: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(wall, dt.UTC).strftime("%H:%M:%S.%f")[:-3] + " UTC"
