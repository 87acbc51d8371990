"""Shared pieces of the schedule property tests: zones with DST, start instants near their
changes, and brute-force oracles that test every minute (or second) of a horizon against
the definitions in docs/schedules.md, written without looking at the code.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from odin.schedule import Schedule

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
DST_ZONES = ["Europe/Dublin", "America/New_York"]
ZONES = ["UTC", *DST_ZONES, "Australia/Lord_Howe", "Asia/Kolkata"]

Scheduled = Callable[[date, int], bool]  # is this wall time (day, second of the day) scheduled?
FiresAt = Callable[[datetime], bool]  # does the schedule fire at this instant?


@functools.cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """UTC instants of the zone's offset changes in 2025-2026, to aim tests at."""
    tz = ZoneInfo(zone)
    found = []
    t = datetime(2025, 1, 1, tzinfo=UTC)
    previous = t.astimezone(tz).utcoffset()
    while t.year < 2027:
        t += timedelta(minutes=30)
        offset = t.astimezone(tz).utcoffset()
        if offset != previous:
            found.append(t)
            previous = offset
    return tuple(found)


def near_a_change(zones: list[str], spread: timedelta) -> st.SearchStrategy[datetime]:
    """An instant within ``spread`` of a DST change of one of ``zones``."""
    changes = sorted({t for zone in zones for t in transitions(zone)})
    seconds = int(spread.total_seconds())
    return st.tuples(st.sampled_from(changes), st.integers(-seconds, seconds)).map(
        lambda p: p[0] + timedelta(seconds=p[1])
    )


anywhere = st.datetimes(datetime(1990, 1, 1), datetime(2060, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


def second_of_day(wall: datetime) -> int:
    return wall.hour * 3600 + wall.minute * 60 + wall.second


def _floor(t: datetime, step: timedelta) -> datetime:
    size = int(step.total_seconds())
    return datetime.fromtimestamp(int(t.timestamp()) // size * size, UTC)


def wall_scan(
    scheduled: Scheduled, zone: ZoneInfo, t: datetime, horizon: timedelta, step: timedelta
) -> list[float]:
    """Fires in (t, t + horizon] of wall-time rules under Odin's DST rule, tested each ``step``.

    An instant fires when its wall time is scheduled and is not the repeat of a wall time
    (fold 1), or when a scheduled wall time was skipped by a spring-forward gap that ends
    at this instant.
    """
    instant = _floor(t, step)
    previous = (instant - step).astimezone(zone).replace(tzinfo=None)
    found = []
    while instant <= t + horizon:
        local = instant.astimezone(zone)
        wall = local.replace(tzinfo=None)
        hit = local.fold == 0 and scheduled(wall.date(), second_of_day(wall))
        skipped = previous + step
        while not hit and skipped < wall:
            hit = scheduled(skipped.date(), second_of_day(skipped))
            skipped += step
        if hit and instant > t:
            found.append(instant.timestamp())
        previous, instant = wall, instant + step
    return found


def instant_scan(
    fires_at: FiresAt, t: datetime, horizon: timedelta, step: timedelta
) -> list[float]:
    """Fires in (t, t + horizon] of a rule defined on instants, tested each ``step``."""
    instant = _floor(t, step)
    found = []
    while instant <= t + horizon:
        if instant > t and fires_at(instant):
            found.append(instant.timestamp())
        instant += step
    return found


def chained(schedule: Schedule, t: datetime, horizon: timedelta) -> list[float]:
    """Fires in (t, t + horizon] by chaining ``next_after``, each in the schedule's zone."""
    found = []
    current = schedule.next_after(t)
    while current is not None and current <= t + horizon:
        assert str(current.tzinfo) == schedule.timezone
        found.append(current.timestamp())
        current = schedule.next_after(current)
    return found


def nth_weekday_matches(items: frozenset[tuple[int, int]], d: date) -> bool:
    """(n, weekday) is the n-th such weekday of the month; n = -1 is the last one."""
    length = calendar.monthrange(d.year, d.month)[1]
    for nth, weekday in items:
        if d.weekday() != weekday:
            continue
        if nth == -1 and d.day + 7 > length:
            return True
        if nth > 0 and (d.day - 1) // 7 + 1 == nth:
            return True
    return False
