"""``odin apply``'s plan: a batch of jobs built from files, against those deployed (pure).

The service builds each job of the batch as a deploy would and checks it; ``plan`` then
sorts them: ``create`` (a new id), ``update`` (with a short unified diff of the YAML and
whether the code changed) and ``unchanged`` (what is deployed already, ``already``); with
prune, every other job of the caller's is a ``remove``. The creates, updates and removes
go to the state machine in one ``PutJobs``, which applies all of them or none.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from odin.cluster.model import Job
from odin.cluster.state import already
from odin.engine.views import ApplyAction, ApplyCounts, ApplyItem

DIFF_LINES = 40
"""The longest diff an update shows; the rest is counted, not shown."""


@dataclass(frozen=True)
class Incoming:
    """One job of the batch, built from its files, and the file it came from."""

    job: Job
    source: str


@dataclass(frozen=True)
class Plan:
    """What an apply does: every job's item, and the jobs to write and to remove."""

    items: tuple[ApplyItem, ...]
    puts: tuple[Job, ...]  # the creates and updates, as built from the files
    removed: tuple[Job, ...]

    @property
    def changes(self) -> bool:
        return bool(self.puts or self.removed)

    def counts(self) -> ApplyCounts:
        found = {action: 0 for action in ApplyAction}
        for item in self.items:
            found[item.action] += 1
        return ApplyCounts(
            create=found[ApplyAction.CREATE],
            update=found[ApplyAction.UPDATE],
            unchanged=found[ApplyAction.UNCHANGED],
            remove=found[ApplyAction.REMOVE],
        )


def yaml_diff(old: str, new: str, job_id: str, source: str) -> str:
    """A unified diff of the deployed YAML and the new one, cut at ``DIFF_LINES`` lines."""
    lines = list(
        difflib.unified_diff(
            old.splitlines(),
            new.splitlines(),
            fromfile=f"{job_id} (deployed)",
            tofile=source or job_id,
            lineterm="",
            n=1,
        )
    )
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"... ({len(lines) - DIFF_LINES} more lines)"]
    return "\n".join(lines)


def _item(new: Incoming, old: Job | None) -> ApplyItem:
    job = new.job
    if old is None:
        return ApplyItem(ApplyAction.CREATE, job.id, job.name, new.source, True, "")
    if already(job, old):
        return ApplyItem(ApplyAction.UNCHANGED, job.id, job.name, new.source, False, "")
    diff = yaml_diff(old.yaml, job.yaml, job.id, new.source)
    changed = job.code_sha != old.code_sha
    return ApplyItem(ApplyAction.UPDATE, job.id, job.name, new.source, changed, diff)


def plan(
    incoming: Sequence[Incoming],
    deployed: Mapping[str, Job],
    owned: Iterable[Job],
    *,
    prune: bool,
    keep: Collection[str] = (),
) -> Plan:
    """The plan of ``incoming`` against ``deployed`` (the jobs with their ids, already checked
    to be the caller's); with ``prune``, the caller's jobs in ``owned`` that are neither in
    the batch nor in ``keep`` (the ids of a batch sent in several requests) are removed."""
    items = [_item(new, deployed.get(new.job.id)) for new in incoming]
    puts = tuple(
        new.job
        for new, item in zip(incoming, items, strict=True)
        if item.action is not ApplyAction.UNCHANGED
    )
    removed: tuple[Job, ...] = ()
    if prune:
        wanted = {new.job.id for new in incoming} | set(keep)
        removed = tuple(sorted((j for j in owned if j.id not in wanted), key=lambda j: j.id))
        items += [ApplyItem(ApplyAction.REMOVE, j.id, j.name, "", False, "") for j in removed]
    return Plan(items=tuple(items), puts=puts, removed=removed)
