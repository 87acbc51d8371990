"""Which members a job's runs may go to, and when a run's node has lost it: pure decisions.

A job's ``nodes:`` list narrows the members its runs may go to (empty: any member). A name
that is not a member (never added, or gone with ``odin nodes remove``) can never start a
run, so: a deploy naming one is refused (``unknown_nodes``); the leader plans no run of a
job none of whose nodes is a member (``stranded``), and says so where the next run is shown
(``stranded_reason``); new runs and retries go only to eligible members (``candidates``,
``eligible``); and a run placed on a non-member is marked lost at once, as a run of a node
unreachable past its lease is (``lost_message``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from odin import config
from odin.cluster.model import Job


def unknown_nodes(names: Iterable[str], members: Collection[str]) -> list[str]:
    """The names that are not members, in the order given (a deploy naming any is refused)."""
    return [name for name in names if name not in members]


def unknown_nodes_message(unknown: list[str], members: Collection[str]) -> str:
    """The deploy error for ``unknown``: names them and lists the members to choose from."""
    which = "is not a node" if len(unknown) == 1 else "are not nodes"
    return (
        f"job.nodes names {', '.join(unknown)}, which {which} of this cluster; "
        f"its nodes are {', '.join(sorted(members))} (odin nodes get)"
    )


def eligible(job: Job, members: Collection[str]) -> list[str]:
    """The members a run of the job may go to, by name: all of them unless ``nodes:`` narrows them."""
    return sorted(name for name in (job.nodes or members) if name in members)


def stranded(job: Job, members: Collection[str]) -> bool:
    """True when the job names nodes and none is a member, so that none of its runs could
    ever start (a membership not known yet, empty, strands nothing)."""
    return bool(job.nodes) and bool(members) and not eligible(job, members)


def stranded_reason(job: Job, members: Collection[str]) -> str | None:
    """Why the leader plans no run of the job, for ``odin describe``/``list``; None if it plans."""
    if not stranded(job, members):
        return None
    return (
        f"none of its nodes ({', '.join(job.nodes)}) is a member of the cluster: "
        "no run is planned until one is added, or the job is deployed with other nodes"
    )


def candidates(job: Job, members: Collection[str], healthy: Collection[str]) -> list[str]:
    """Where a new run of the job may go: its healthy eligible members, else its eligible
    members (a run on an unreachable one is lost when the lease ends); empty when stranded."""
    allowed = eligible(job, members)
    return [name for name in allowed if name in healthy] or allowed


def lost_message(node: str, member: bool, down_since: float | None, now: float) -> str | None:
    """Why a run on ``node`` is lost at ``now``, or None while that node may still run it:
    a node that is not a member never will; a member unreachable past its lease has lost it."""
    if not member:
        return f"lost: node {node} is not a member of the cluster (removed, or never added)"
    if down_since is not None and now - down_since > config.NODE_LEASE_S:
        return f"lost: node {node} was unreachable for more than {config.NODE_LEASE_S:.0f} s"
    return None
