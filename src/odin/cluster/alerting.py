"""Which alerts a run's end or a leader's alarm makes: pure decisions on replicated values.

The state machine calls these with the job, the run and the job's failure streak,
and turns each ``Due`` into an ``Alert`` with a deterministic id, so that every
node decides the same alerts and a replayed command decides none twice.
"""

from __future__ import annotations

import dataclasses

from odin import config
from odin.cluster.model import Job, Run, RunReason, RunStatus
from odin.jobs.notify import AlertEvent

_FAILED = (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST)


@dataclasses.dataclass(frozen=True)
class Due:
    """An alert to make: to the job's ``notify[index]``, about ``event``."""

    index: int
    event: AlertEvent
    detail: str


def after_end(job: Job, run: Run, streak: int, retried: bool) -> tuple[int, list[Due]]:
    """The job's failure streak after ``run`` ended, and the alerts its end makes.

    A failure counts once its tick has no retry left; the alert goes to a destination
    when the streak reaches its ``after`` (so once per streak), and the first success
    after that tells it of the recovery. A lost run is told at once to whoever asks.
    """
    due: list[Due] = []
    if run.status is RunStatus.LOST:
        due += _to(job, AlertEvent.LOST, run.message or f"run lost on node {run.node}")
    if run.status is RunStatus.SUCCEEDED:
        due += [
            Due(i, AlertEvent.RECOVERY, f"succeeded after {streak} failed run(s) in a row")
            for i, entry in enumerate(job.notify)
            if entry.wants(AlertEvent.RECOVERY) and streak >= entry.after
        ]
        return 0, due
    if run.status is RunStatus.SKIPPED:
        return streak, due + _skipped_late(job, run)
    if run.status not in _FAILED or retried:
        return streak, due
    streak += 1
    detail = _failure_detail(run, streak)
    due += [
        Due(i, AlertEvent.FAILURE, detail)
        for i, entry in enumerate(job.notify)
        if entry.wants(AlertEvent.FAILURE) and streak == entry.after
    ]
    return streak, due


def _skipped_late(job: Job, run: Run) -> list[Due]:
    """A scheduled tick skipped past its grace (catch-up said so) was missed."""
    if run.reason not in (RunReason.SCHEDULE, RunReason.CATCHUP) or run.finished_at is None:
        return []
    if run.finished_at < run.starts_at + grace_of(job):
        return []
    return _to(job, AlertEvent.MISSED, f"skipped: {run.message}" if run.message else "skipped")


def _failure_detail(run: Run, streak: int) -> str:
    if run.status is RunStatus.TIMED_OUT:
        what = "timed out"
    elif run.status is RunStatus.LOST:
        what = "was lost"
    elif run.exit_code is not None:
        what = f"exited {run.exit_code}"
    else:
        what = "failed"
    why = f": {run.message}" if run.message else ""
    row = f" ({streak} in a row)" if streak > 1 else ""
    return f"{what}{why}{row}"


def _to(job: Job, event: AlertEvent, detail: str) -> list[Due]:
    return [Due(i, event, detail) for i, entry in enumerate(job.notify) if entry.wants(event)]


def grace_of(job: Job) -> float:
    return job.grace_s if job.grace_s is not None else config.DEFAULT_MISSED_GRACE_S


def missed_due(job: Job, run: Run, at: float) -> list[Due]:
    """``missed`` alerts for a run still waiting to start past its grace (catch-up runs are
    late by design: the ticks they stand for are told when planning resumes)."""
    if run.status is not RunStatus.PLANNED or run.reason is RunReason.CATCHUP:
        return []
    if at < run.starts_at + grace_of(job):  # its instant, plus its jitter
        return []
    late = at - run.starts_at
    return _to(
        job, AlertEvent.MISSED, f"not started {late:.0f} s after its instant (node {run.node})"
    )


def overdue_due(job: Job, run: Run, at: float) -> list[Due]:
    """``overdue`` alerts for a run still going ``warn_after`` after its start."""
    if run.status is not RunStatus.RUNNING or job.warn_after_s is None or run.started_at is None:
        return []
    if at < run.started_at + job.warn_after_s:
        return []
    return _to(job, AlertEvent.OVERDUE, f"still running after {at - run.started_at:.0f} s")


def skipped_due(job: Job, detail: str) -> list[Due]:
    """``missed`` alerts for ticks that passed while no leader planned them."""
    return _to(job, AlertEvent.MISSED, detail)


def next_attempt_at(attempt: int, at: float) -> float:
    """When attempt ``attempt + 1`` is due after attempt ``attempt`` failed at ``at``."""
    wait = config.ALERT_BACKOFF_FIRST_S * float(2 ** max(0, attempt - 1))
    return at + min(wait, config.ALERT_BACKOFF_MAX_S)
