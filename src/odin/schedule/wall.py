"""Wall-clock time in an IANA zone, with Odin's one DST rule.

A schedule names wall times ("at 02:30"); an instant is what fires. The
mapping must hold for every zone:

- a wall time that exists once maps to that instant;
- a wall time repeated by fall-back maps to its first occurrence (fold 0);
- a wall time skipped by spring-forward maps to the first valid instant after
  the gap, i.e. the transition itself.

Zone data is read through ``zoneinfo`` (the only file access, done and cached
by the standard library); nothing here reads a clock.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

ONE_MINUTE = timedelta(minutes=1)
ONE_DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ORDINAL = EPOCH.date().toordinal()
MAX_GAP_MINUTES = 24 * 60  # no zone has ever skipped a whole day of wall time
SECONDS_PER_DAY = 24 * 3600
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*", re.ASCII)


def load_zone(name: str) -> ZoneInfo | None:
    """The zone called ``name`` (exact, then case-insensitive), or None."""
    if not _ZONE_NAME.fullmatch(name) or len(name) > 64:
        return None
    for candidate in (name, _known_zones_folded().get(name.lower())):
        if candidate is None:
            continue
        try:
            return ZoneInfo(candidate)
        except Exception:  # zoneinfo raises several types for a bad key
            continue
    return None


def zone_names() -> frozenset[str]:
    """Every IANA zone name this machine knows (for suggestions)."""
    return _known_zones()


@functools.cache
def _known_zones() -> frozenset[str]:
    try:
        return frozenset(zoneinfo.available_timezones())
    except Exception:  # an unreadable tz database only costs us suggestions
        return frozenset()


@functools.cache
def _known_zones_folded() -> dict[str, str]:
    return {name.lower(): name for name in _known_zones()}


def exists(wall: datetime) -> bool:
    """True when the aware ``wall`` time is not inside a spring-forward gap."""
    # Same tzinfo on both sides: == compares the wall fields, not instants.
    return wall.astimezone(UTC).astimezone(wall.tzinfo) == wall


def resolve(day: date, minute_of_day: int, zone: ZoneInfo) -> datetime:
    """The instant at which the wall time ``minute_of_day`` on ``day`` fires."""
    hour, minute = divmod(minute_of_day, 60)
    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    if exists(wall):
        return wall
    naive = wall.replace(tzinfo=None)
    for _ in range(MAX_GAP_MINUTES):
        naive += ONE_MINUTE
        wall = naive.replace(tzinfo=zone)
        if exists(wall):
            break
    return wall


def resolve_second(day: date, second_of_day: int, zone: ZoneInfo) -> datetime:
    """The instant at which the wall time ``second_of_day`` (to the second) on ``day`` fires."""
    minute_of_day, second = divmod(second_of_day, 60)
    if second == 0:
        return resolve(day, minute_of_day, zone)
    hour, minute = divmod(minute_of_day, 60)
    wall = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=zone)
    if exists(wall):
        return wall
    return resolve(day, minute_of_day, zone)  # the whole minute is in the gap too: its end


def first_second_after(day: date, low: int, t_ts: float, zone: ZoneInfo) -> int:
    """The first second of ``day`` from ``low`` whose wall time fires after ``t_ts`` (or 86400).

    ``resolve_second`` never decreases as the second grows, so a binary search
    finds it; it is needed only when ``t`` lies in an hour that fall-back repeats.
    """
    high = SECONDS_PER_DAY
    while low < high:
        middle = (low + high) // 2
        if resolve_second(day, middle, zone).timestamp() > t_ts:
            high = middle
        else:
            low = middle + 1
    return low


def second_of_day(instant: datetime) -> int:
    """Seconds since local midnight of an aware datetime, by its wall clock."""
    return instant.hour * 3600 + instant.minute * 60 + instant.second


def epoch_floor(t: datetime) -> int:
    """Whole seconds from the epoch to ``t``, rounded down (exact, no floats)."""
    delta = t - EPOCH
    return delta.days * 86400 + delta.seconds


def from_epoch(seconds: int, zone: ZoneInfo) -> datetime:
    return (EPOCH + timedelta(seconds=seconds)).astimezone(zone)


def format_minute(minute_of_day: int) -> str:
    hour, minute = divmod(minute_of_day, 60)
    return f"{hour:02d}:{minute:02d}"


def format_second(second_of_day: int) -> str:
    """``09:00``, or ``09:00:30`` when the seconds are not zero."""
    minute_of_day, second = divmod(second_of_day, 60)
    clock = format_minute(minute_of_day)
    return clock if second == 0 else f"{clock}:{second:02d}"


def offsets_seconds(zone: ZoneInfo) -> frozenset[int]:
    """UTC offsets the zone uses around now-ish years (sampled, for cron equivalence)."""
    seen: set[int] = set()
    for year in range(1990, 2051):
        for month in (1, 4, 7, 10):
            offset = datetime(year, month, 15, 12, tzinfo=zone).utcoffset()
            if offset is not None:
                seen.add(int(offset.total_seconds()))
    return frozenset(seen)
