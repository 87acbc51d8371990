"""What happens to a run planned for this node: pure verdicts, beside the planner.

The launcher (``odin.engine.launcher``) asks these at each step of a launch and
carries the answer out; nothing here waits, reads a clock or touches the state:
the time is an argument. A verdict that skips a run returns the message its
``FinishRun`` carries; None lets the run go on.

- ``stale``: was the run's plan committed so late that it is a missed tick?
- ``late_verdict``: such a tick is skipped or run, per the job's ``catchup``.
- ``overlap_verdict``: for ``overlap: skip``, is another run of the job going
  (``another_going``), counting runs that may be a crash's ``leftovers`` only
  once they had time to be marked lost?
- ``queue_verdict`` and ``turn_verdict``: for ``overlap: queue``, may the run
  wait its turn, and may it start when the turn comes?
- ``may_start`` and ``still_ours``: the lease rule, right before a start gate opens.
- ``end_verdict``: the status and message of a run whose process ended.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, TypeGuard

from odin import config
from odin.cluster.model import Job, Record, Run, RunReason, RunStatus
from odin.jobs.spec import Catchup, Overlap

if TYPE_CHECKING:
    from odin.executor.spec import RunOutcome

OVERLAP_SKIPPED: Final = "skipped: the previous run was still running (overlap: skip)"
LEFTOVER_WAIT_S: Final = config.NODE_LEASE_S + 1
"""How long a run that may be a crash's leftover is waited on before it is taken as going."""


# -- is it late ---------------------------------------------------------------


def stale(run: Run, now: float) -> bool:
    """A scheduled run whose plan took effect long after it was made, and after its instant.

    That happens when the leader could not reach a quorum for a while (its plans
    commit once it can again) or when the cluster is badly overloaded. Such a
    run is a missed tick, and the job's ``catchup`` decides its fate.
    """
    if run.reason is not RunReason.SCHEDULE:
        return False
    late = now > run.starts_at + config.PLAN_STALE_S  # its start: its instant and jitter
    return now - run.planned_at > config.PLAN_STALE_S and late


def newer_tick_due(run: Run, siblings: Iterable[Run], now: float) -> bool:
    """Whether a later scheduled tick of the job is due at ``now`` too (for ``catchup: latest``)."""
    return any(r.reason is RunReason.SCHEDULE and run.instant < r.instant <= now for r in siblings)


def late_verdict(catchup: Catchup, late_by: float, newer_due: bool) -> str | None:
    """Why a tick whose plan took effect ``late_by`` seconds late is skipped, or None to run it.

    ``none`` skips every late tick, ``latest`` runs a late tick only when no later
    tick of the job is also due, ``all`` runs them all.
    """
    late = f"its plan took effect {late_by:.1f} s after its instant"
    if catchup == Catchup.NONE:
        return f"skipped: {late} (catchup: none)"
    if catchup == Catchup.LATEST and newer_due:
        return f"skipped: {late} and a later tick is also due (catchup: latest)"
    return None


def needs_siblings(job: Job | None, late: bool) -> bool:
    """Whether deciding a run's fate needs the job's other runs: for a late tick or ``overlap: skip``."""
    return job is not None and (job.overlap == Overlap.SKIP or late)


# -- overlap --------------------------------------------------------------------


def leftovers(siblings: Iterable[Run], here: str, born: float) -> list[Run]:
    """Runs another node recorded as running that started before this engine did: they may
    be a crash's leftovers, not runs going on."""
    return [
        r
        for r in siblings
        if r.status is RunStatus.RUNNING and r.node != here and (r.started_at or 0.0) < born
    ]


def another_going(run: Run, siblings: Iterable[Run], here: str, live_here: Iterable[Run]) -> bool:
    """Whether another run of ``run``'s job is going.

    This node knows its own runs first hand (``live_here``): one started here is going until
    its process ends, whether or not the cluster has heard of its start (a short run is
    replicated as running only after ``START_REPORT_DELAY_S``) or of its end (its
    ``FinishRun`` may still be on its way). A run on another node is going while the log
    says it is running.
    """
    if any(r.status is RunStatus.RUNNING and r.node != here and r.id != run.id for r in siblings):
        return True
    return any(r.job_id == run.job_id and r.id != run.id for r in live_here)


def overlap_verdict(
    run: Run,
    siblings: list[Run],
    here: str,
    live_here: list[Run],
    *,
    born: float,
    now: float,
    deadline: float,
) -> bool | None:
    """For ``overlap: skip``: True if another run of the job is going (``run`` is skipped),
    False if none is (it starts), None if not sure yet (ask again a moment later).

    A run another node recorded as running before this engine started (``born``) may be
    what a crash left (every node restarted at once, say): its node marks it lost when it is
    back, or the leader when it is not. Until ``deadline`` (``LEFTOVER_WAIT_S`` after the
    first question) such a run is not counted; past it, it is taken as going.
    """
    doubtful = leftovers(siblings, here, born)
    sure = [r for r in siblings if r not in doubtful]
    if another_going(run, sure, here, live_here):
        return True
    if not doubtful:
        return False
    if now > deadline:
        return another_going(run, siblings, here, live_here)
    return None


def skipped_when_going(run: Run) -> bool:
    """Whether ``overlap: skip`` skips ``run`` when another run of its job is going: a run a
    person asked for (``odin run``, the dashboard) is never skipped; it waits its turn."""
    return run.reason is not RunReason.MANUAL


def queue_verdict(waiting_for_job: int, waiting_for_owner: int) -> str | None:
    """Why a run that must wait its turn (``overlap: queue``) is skipped, or None to queue it."""
    if waiting_for_job >= config.MAX_QUEUED_PER_JOB:
        return (
            f"skipped: {waiting_for_job} runs of this job already wait their turn "
            f"(overlap: queue keeps at most {config.MAX_QUEUED_PER_JOB} per job)"
        )
    if waiting_for_owner >= config.MAX_QUEUED_PER_USER:
        return (
            f"skipped: {waiting_for_owner} runs of this user's jobs already wait their turn "
            f"(overlap: queue keeps at most {config.MAX_QUEUED_PER_USER} per user)"
        )
    return None


REMOVED_WHILE_WAITING = (
    RunStatus.CANCELLED,
    "cancelled: the job was removed while this run waited its turn",
)


def turn_verdict(job: Job | None) -> tuple[RunStatus, str] | None:
    """How a queued run ends instead of starting when its turn comes, or None to start it."""
    if job is None:
        return REMOVED_WHILE_WAITING
    if job.paused:
        return RunStatus.SKIPPED, "skipped: the job was paused while this run waited its turn"
    return None


# -- the start gate -------------------------------------------------------------


def still_ours(run: Run | None, here: str) -> TypeGuard[Run]:
    """Whether ``run`` is still this node's to start: planned, and planned here."""
    return run is not None and run.status is RunStatus.PLANNED and run.node == here


def may_start(run: Run | None, here: str, holds_lease: bool) -> bool:
    """The lease rule (``odin.cluster.lease``), checked right before a gate opens: this
    node holds its lease and, in a state caught up with it, the run is still its own."""
    return holds_lease and still_ours(run, here)


# -- how it ended ---------------------------------------------------------------


def end_verdict(outcome: RunOutcome, records: Iterable[Record]) -> tuple[RunStatus, str]:
    """The status and message of a run whose process ended with ``outcome``; a failed run's
    message names the last ``result`` record its SDK made, if any."""
    if outcome.timed_out:
        return RunStatus.TIMED_OUT, "timed out: the process group was killed"
    if outcome.cancelled:
        return RunStatus.CANCELLED, "cancelled: the job was removed while it ran"
    if outcome.exit_code == 0:
        return RunStatus.SUCCEEDED, "exec"
    if outcome.signal is not None:
        return RunStatus.FAILED, f"failed: killed by signal {outcome.signal}"
    results = [r for r in records if r.type == "result"]
    detail = f" ({results[-1].desc})" if results else ""
    return RunStatus.FAILED, f"failed: exit code {outcome.exit_code}{detail}"
