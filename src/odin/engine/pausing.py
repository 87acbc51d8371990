"""What ``odin modify`` asks of a job's pause: pure, from the flags given and the time.

``--pause`` stops scheduled runs until ``--resume``; ``--pause-until WHEN`` stops them until
that instant, when the job resumes by itself (the planner hands out nothing of it before,
``odin.engine.planner``). Either of the first two ends a pause until an instant; the last
ends a pause without an end.
"""

from __future__ import annotations

import datetime as dt

from odin.cluster.model import Job
from odin.errors import InvalidInput
from odin.schedule.moment import parse_moment

CLEARED = 0.0
"""``PatchJob.paused_until`` for "no pause until an instant any more"."""


def pause_change(
    job: Job, paused: bool | None, pause_until: str | None, now: float
) -> tuple[bool | None, float | None]:
    """The ``paused`` and ``paused_until`` of the ``PatchJob`` for these flags (None: no
    change); ``pause_until`` is read in the job's zone and must be still to come."""
    if pause_until is None:
        if paused is None or job.paused_until is None:
            return paused, None
        return paused, CLEARED  # --pause or --resume ends a pause until an instant
    if paused is not None:
        raise InvalidInput("--pause-until goes alone: not with --pause or --resume")
    moment = parse_moment(pause_until, job.timezone, dt.datetime.fromtimestamp(now, dt.UTC))
    return (False if job.paused else None), moment.timestamp()
