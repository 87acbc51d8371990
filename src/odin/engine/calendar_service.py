"""Named calendars (``odin calendar``): validate, authorise, propose; answer from local state.

A calendar belongs to the user who adds it; their jobs name it in ``except:``
(``- calendar: closed``). Only its owner may change, describe or remove it; root lists
everyone's. Writes go through Raft (``PutCalendar``, ``RemoveCalendar``), whose state
machine refuses a removal while a job names the calendar.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from zoneinfo import ZoneInfo

from odin.cluster import commands as c
from odin.cluster.calendars import Calendar, users_of
from odin.engine.identity import Caller
from odin.engine.node import EngineNode
from odin.engine.service import Service
from odin.errors import NotFound
from odin.jobs.calendars import CalendarSpec, load_calendar_yaml
from odin.schedule.exceptions import (
    Exclusions,
    HolidayBook,
    check_calendar_name,
    resolve_items,
)
from odin.schedule.wall import load_zone

EXCLUDED_DAYS_SHOWN = 10
"""The next excluded days ``odin calendar describe`` lists at most."""

EXCLUDED_DAYS_AHEAD = 366
"""How far ahead (days) ``odin calendar describe`` looks for them."""


@dataclass(frozen=True, slots=True)
class CalendarView:
    """One row of ``odin calendar list``."""

    name: str
    owner: str
    owner_uid: int
    description: str
    rules: Sequence[str]
    jobs: Sequence[str]  # ids of the owner's jobs that name it
    created_at: str | None  # ISO instants
    updated_at: str | None
    version: int


@dataclass(frozen=True, slots=True)
class ExcludedDays:
    """Days a calendar excludes: ``first`` through ``last`` (the same day for one)."""

    first: str  # ISO dates
    last: str
    rule: str  # why, e.g. "public holiday in IE (Christmas Day)"


@dataclass(frozen=True, slots=True)
class CalendarDetail(CalendarView):
    """Everything ``odin calendar describe`` shows: its file and the next days it excludes."""

    yaml: str  # the calendar as a file (``odin calendar add -f`` takes it back)
    excluded: Sequence[ExcludedDays]  # in the engine's zone's today and the year after


@dataclass(frozen=True, slots=True)
class CalendarAdded:
    calendar: CalendarDetail
    updated: bool  # False for a new calendar


@dataclass(frozen=True, slots=True)
class CalendarRemoved:
    removed: str  # its name


def _iso(instant: float) -> str | None:
    return dt.datetime.fromtimestamp(instant, dt.UTC).isoformat() if instant else None


def excluded_days(
    exclusions: Exclusions, start: dt.date, days: int, limit: int
) -> list[ExcludedDays]:
    """The days from ``start`` (for ``days``) that ``exclusions`` exclude, runs of days for the
    same reason as one, at most ``limit`` of them."""
    found: list[ExcludedDays] = []
    day, end = start, start + dt.timedelta(days=days)
    while day < end and len(found) <= limit:
        skip = exclusions.check(day)
        if skip is None:
            day += dt.timedelta(days=1)
            continue
        last = skip.resume - dt.timedelta(days=1)
        previous = found[-1] if found else None
        follows = previous is not None and dt.date.fromisoformat(previous.last) == day - (
            dt.timedelta(days=1)
        )
        if previous is not None and follows and previous.rule == skip.reason:
            found[-1] = ExcludedDays(previous.first, last.isoformat(), skip.reason)
        else:
            found.append(ExcludedDays(day.isoformat(), last.isoformat(), skip.reason))
        day = skip.resume
    return found[:limit]


class CalendarService:
    """The calendar operations of the API, over this node's replicated state."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.book = HolidayBook()

    @property
    def node(self) -> EngineNode:
        return self.service.node

    @property
    def zone(self) -> ZoneInfo:
        """The engine's zone, whose today the next excluded days start from."""
        return load_zone(self.service.default_timezone) or ZoneInfo("UTC")

    def _view(self, calendar: Calendar, jobs: Sequence[str]) -> CalendarView:
        return CalendarView(
            name=calendar.name,
            owner=calendar.owner,
            owner_uid=calendar.owner_uid,
            description=calendar.description,
            rules=list(calendar.rules),
            jobs=list(jobs),
            created_at=_iso(calendar.created_at),
            updated_at=_iso(calendar.updated_at),
            version=calendar.version,
        )

    def _detail(self, calendar: Calendar, jobs: Sequence[str], now: float) -> CalendarDetail:
        view = self._view(calendar, jobs)
        spec = CalendarSpec(calendar.name, calendar.description, calendar.rules)
        exclusions = resolve_items(calendar.rules, {}, self.book)
        today = dt.datetime.fromtimestamp(now, self.zone).date()
        return CalendarDetail(
            **{field.name: getattr(view, field.name) for field in fields(CalendarView)},
            yaml=spec.to_yaml(),
            excluded=excluded_days(exclusions, today, EXCLUDED_DAYS_AHEAD, EXCLUDED_DAYS_SHOWN),
        )

    def _users(self, calendar: Calendar) -> list[str]:
        return self.node.read(
            lambda state: [
                job.id for job in users_of(state.jobs.values(), calendar.owner_uid, calendar.name)
            ]
        )

    async def add(self, caller: Caller, text: str, source: str = "") -> CalendarAdded:
        """Add the calendar of a file, or replace the caller's calendar of that name."""
        spec = load_calendar_yaml(text, source=source or "calendar YAML")
        now = time.time()
        existing = self.node.read(lambda state: state.calendars.get(caller.uid, spec.name))
        calendar = Calendar(
            owner_uid=caller.uid,
            owner=caller.user,
            name=spec.name,
            description=spec.description,
            rules=spec.rules,
            created_at=now,
            updated_at=now,
        )
        saved: Calendar = await self.node.propose(c.PutCalendar(calendar))
        detail = self._detail(saved, self._users(saved), now)
        return CalendarAdded(calendar=detail, updated=existing is not None)

    def list(self, caller: Caller) -> list[CalendarView]:
        """The caller's calendars (root: everyone's), by owner and name."""
        calendars = self.node.read(
            lambda state: [cal for cal in state.calendars.all() if caller.may_see(cal.owner_uid)]
        )
        return [self._view(calendar, self._users(calendar)) for calendar in calendars]

    def _own(self, caller: Caller, name: str) -> Calendar:
        wanted = check_calendar_name(name) if name.strip() else name
        calendar = self.node.read(lambda state: state.calendars.get(caller.uid, wanted))
        if calendar is None:
            raise NotFound(f"you have no calendar named {name} (see odin calendar list)")
        return calendar

    def describe(self, caller: Caller, name: str) -> CalendarDetail:
        calendar = self._own(caller, name)
        return self._detail(calendar, self._users(calendar), time.time())

    async def remove(self, caller: Caller, name: str) -> CalendarRemoved:
        """Remove one of the caller's calendars; refused while a job of theirs names it."""
        calendar = self._own(caller, name)
        await self.node.propose(c.RemoveCalendar(calendar.owner_uid, calendar.name))
        return CalendarRemoved(removed=calendar.name)
