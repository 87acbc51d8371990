"""A job's exceptions (``except:``) as the engine applies them: its calendars' rules resolved,
public holidays cached, and the skipped ticks ``odin describe`` shows.

``Exceptions`` is owned by the planner (which keeps a copy of every owner's calendars,
updated by ``CalendarChanged``) and by the service (which reads the calendars of the state
per request); both keep their ``HolidayBook`` for their lifetime. The decisions themselves
are the pure functions of ``odin.schedule.exceptions``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from odin.cluster.calendars import Calendar, CalendarRules
from odin.cluster.model import Job
from odin.jobs.fields import OnExcluded
from odin.schedule import Schedule
from odin.schedule.exceptions import Exclusions, HolidayBook, preview, resolve_items


def moves(job: Job) -> bool:
    """Whether the job's excluded ticks move to the end of their exception (``next``)."""
    return job.on_excluded is OnExcluded.NEXT


class Exceptions:
    """Jobs' exclusions from their ``except:`` and their owners' calendars."""

    def __init__(self, book: HolidayBook | None = None) -> None:
        self.book = book or HolidayBook()
        self._calendars: dict[int, dict[str, tuple[str, ...]]] = {}

    def reset(self, calendars: CalendarRules) -> None:
        """Every owner's calendars, as the state holds them (a new leader's)."""
        self._calendars = {uid: dict(named) for uid, named in calendars.items()}

    def put(self, calendar: Calendar) -> None:
        """A calendar was added or changed."""
        self._calendars.setdefault(calendar.owner_uid, {})[calendar.name] = calendar.rules

    def of(self, job: Job) -> Exclusions | None:
        """The job's exclusions, None when it has no exception."""
        return self.resolve(job, self._calendars.get(job.owner_uid, {}))

    def resolve(self, job: Job, calendars: Mapping[str, Sequence[str]]) -> Exclusions | None:
        """The job's exclusions with its owner's ``calendars`` (name → rules)."""
        if not job.exceptions:
            return None
        return resolve_items(job.exceptions, calendars, self.book)


@dataclass(frozen=True, slots=True)
class SkippedView:
    """A tick an exception skips (with the ticks after it through ``through``, if any)."""

    at: str  # ISO instant of the first skipped tick
    through: str | None  # ISO date: the ticks up to this day are skipped too
    rule: str  # the rule that skipped it, e.g. "public holiday in IE (Christmas Day)"
    moved_to: str | None  # ISO instant it runs at instead (on_excluded: next)


def skipped_views(
    job: Job,
    schedule: Schedule,
    after: dt.datetime,
    runs: int,
    excluded: Exclusions | None,
) -> list[SkippedView]:
    """The ticks skipped among the job's next ``runs`` runs after ``after``, in order."""
    if not excluded:
        return []
    found = preview(schedule, excluded, after, runs, moves(job))
    views: list[SkippedView] = []
    for index, item in enumerate(found):
        if item.skipped is None:
            continue
        runs_after = (later for later in found[index + 1 :] if later.skipped is None)
        first = next(runs_after, None)
        moved = first if first is not None and first.moved else None
        views.append(
            SkippedView(
                at=item.at.isoformat(),
                through=None if item.through is None else item.through.isoformat(),
                rule=item.skipped,
                moved_to=None if moved is None else moved.at.isoformat(),
            )
        )
    return views


def run_times(
    schedule: Schedule, after: dt.datetime, count: int, job: Job, excluded: Exclusions
) -> list[str]:
    """The job's next ``count`` runs after ``after``, its exceptions applied (ISO instants)."""
    found = preview(schedule, excluded, after, count, moves(job), skips=0)
    return [item.at.isoformat() for item in found if item.skipped is None]
