"""What the API returns: jobs and runs as plain JSON data, for one caller."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from functools import lru_cache
from typing import Any

from odin.cluster.model import Job, Run
from odin.cluster.placement import stranded_reason
from odin.engine.planner import schedule_for


def iso(instant: float | None) -> str | None:
    if instant is None:
        return None
    return dt.datetime.fromtimestamp(instant, dt.UTC).isoformat()


def next_runs(
    job: Job, now: float | dt.datetime, count: int, members: Collection[str] = ()
) -> list[str]:
    """The job's next ``count`` fire times after ``now`` (none when paused, or when none of
    its ``nodes:`` is among ``members``: the leader plans no run of it then)."""
    if job.paused or stranded_reason(job, members):
        return []
    schedule = schedule_for(job.schedule, job.timezone)
    moment = now if isinstance(now, dt.datetime) else dt.datetime.fromtimestamp(now, dt.UTC)
    found: list[str] = []
    for _ in range(count):
        following = schedule.next_after(moment)
        if following is None:
            break
        found.append(following.isoformat())
        moment = following
    return found


@lru_cache(maxsize=4096)
def schedule_text(text: str, timezone: str) -> str:
    """The schedule in words, as ``odin list`` shows it (many jobs share a few schedules)."""
    return schedule_for(text, timezone).describe()


NextRunMemo = dict[tuple[str, str], str | None]
"""Next fire times after one instant, by (schedule, timezone): a list computes each once."""


def _next_run(
    job: Job, now: float | dt.datetime, memo: NextRunMemo | None, members: Collection[str]
) -> str | None:
    if job.paused or stranded_reason(job, members):
        return None
    key = (job.schedule, job.timezone)
    if memo is not None and key in memo:
        return memo[key]
    upcoming = next_runs(job, now, 1)
    found = upcoming[0] if upcoming else None
    if memo is not None:
        memo[key] = found
    return found


def job_summary(
    job: Job,
    links: dict[str, str],
    last: Run | None,
    now: float | dt.datetime,
    memo: NextRunMemo | None = None,
    members: Collection[str] = (),
) -> dict[str, Any]:
    """One row of ``odin list``; ``now`` may be given as an aware datetime, made once per list,
    with a ``memo`` shared by the rows of that list (jobs share a handful of schedules).
    ``members`` (the cluster's node names) tell whether the job can get runs at all."""
    return {
        "id": job.id,
        "name": job.name,
        "description": job.description,
        "language": job.language,
        "schedule": job.schedule,
        "schedule_text": schedule_text(job.schedule, job.timezone),
        "timezone": job.timezone,
        "owner": job.owner,
        "owner_uid": job.owner_uid,
        "links": links,
        "next_run": _next_run(job, now, memo, members),
        "not_planned": stranded_reason(job, members),
        "last_status": str(last.status) if last else None,
        "last_run": last.id if last else None,
        "paused": job.paused,
    }


def job_detail(
    job: Job,
    links: dict[str, str],
    last: Run | None,
    now: float,
    members: Collection[str] = (),
) -> dict[str, Any]:
    """Everything ``odin describe`` shows of a job, with its next five fire times."""
    detail = job_summary(job, links, last, now, members=members)
    detail.update(
        {
            "file": job.filename,
            "owner_gid": job.owner_gid,
            "timeout_s": job.timeout_s,
            "retries": job.retries,
            "overlap": job.overlap,
            "catchup": job.catchup,
            "env": dict(job.env),
            "workdir": job.workdir,
            "nodes": list(job.nodes),
            "created_at": iso(job.created_at),
            "updated_at": iso(job.updated_at),
            "version": job.version,
            "code_sha256": job.code_sha,
            "next_runs": next_runs(job, now, 5, members),
        }
    )
    return detail


def run_view(run: Run) -> dict[str, Any]:
    data = run.to_dict()
    data.update(
        {
            "instant_iso": iso(run.instant),
            "started_iso": iso(run.started_at),
            "finished_iso": iso(run.finished_at),
            "duration": run.duration,
            "lag": run.lag,
            "result_desc": run.result_desc,
        }
    )
    return data
