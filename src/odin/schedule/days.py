"""Which calendar days a rule fires on.

Each kind answers ``next_date(d)``: the first matching date on or after ``d``
(None past the end of the calendar), computed directly rather than by scanning
day by day, because the planner asks millions of times. ``matches`` is the
obvious, slow definition the tests check ``next_date`` against.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import MAXYEAR, date, timedelta

from odin.schedule import words
from odin.schedule.wall import EPOCH_ORDINAL

LEAP_CYCLE_YEARS = 9  # Feb 29th recurs within 8 years (2096 -> 2104)
MONTHS_TO_SCAN = 14  # the 31st recurs within 2 months; 14 covers any set


@dataclass(frozen=True)
class EveryDay:
    def next_date(self, d: date) -> date | None:
        return d

    def matches(self, d: date) -> bool:
        return True

    def describe(self) -> str:
        return "every day"

    def cron_days(self) -> list[str] | None:
        return ["* * *"]


@dataclass(frozen=True)
class Weekdays:
    """Days of the week, Monday = 0 (Python's numbering)."""

    days: frozenset[int]
    _ahead: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ahead = tuple(min((w - today) % 7 for w in self.days) for today in range(7))
        object.__setattr__(self, "_ahead", ahead)

    def next_date(self, d: date) -> date | None:
        return d + timedelta(days=self._ahead[d.weekday()])

    def matches(self, d: date) -> bool:
        return d.weekday() in self.days

    def describe(self) -> str:
        if self.days == words.WORKDAYS:
            return "every weekday"
        names = [words.WEEKDAY_NAMES[w] for w in sorted(self.days)]
        return "every " + words.join_list(names)

    def cron_days(self) -> list[str] | None:
        cron_numbers = sorted((w + 1) % 7 for w in self.days)
        return ["* * " + ",".join(str(n) for n in cron_numbers)]


@dataclass(frozen=True)
class MonthDays:
    """Days of the month (1-31) and/or the last day; a day a month lacks is skipped."""

    days: frozenset[int]
    last: bool = False

    def next_date(self, d: date) -> date | None:
        year, month, start = d.year, d.month, d.day
        ordered = sorted(self.days)
        for _ in range(MONTHS_TO_SCAN):
            length = calendar.monthrange(year, month)[1]
            for day in ordered:
                if start <= day <= length:
                    return date(year, month, day)
            if self.last and start <= length:
                return date(year, month, length)
            year, month, start = year + month // 12, month % 12 + 1, 1
            if year > MAXYEAR:
                return None
        return None

    def matches(self, d: date) -> bool:
        last_day = calendar.monthrange(d.year, d.month)[1]
        return d.day in self.days or (self.last and d.day == last_day)

    def describe(self) -> str:
        items = [words.ordinal(day) for day in sorted(self.days)]
        if self.last:
            return "every " + words.join_list([*items, "last day"]) + " of the month"
        return "every " + words.join_list(items)

    def cron_days(self) -> list[str] | None:
        items = [str(day) for day in sorted(self.days)] + (["L"] if self.last else [])
        return [",".join(items) + " * *"]


@dataclass(frozen=True)
class YearDates:
    """(month, day) pairs that fire once a year; Feb 29th fires in leap years."""

    dates: frozenset[tuple[int, int]]

    def next_date(self, d: date) -> date | None:
        ordered = sorted(self.dates)
        for year in range(d.year, min(d.year + LEAP_CYCLE_YEARS, MAXYEAR) + 1):
            for month, day in ordered:
                if day > calendar.monthrange(year, month)[1]:
                    continue
                candidate = date(year, month, day)
                if candidate >= d:
                    return candidate
        return None

    def matches(self, d: date) -> bool:
        return (d.month, d.day) in self.dates

    def describe(self) -> str:
        items = [f"{words.MONTH_NAMES[m]} {words.ordinal(d)}" for m, d in sorted(self.dates)]
        return "every " + words.join_list(items)

    def cron_days(self) -> list[str] | None:
        by_month: dict[int, list[int]] = {}
        for month, day in sorted(self.dates):
            by_month.setdefault(month, []).append(day)
        return [",".join(map(str, days)) + f" {month} *" for month, days in by_month.items()]


@dataclass(frozen=True)
class EveryNDays:
    """Every ``n``-th calendar day, counted from 1970-01-01, so stable across restarts."""

    n: int

    def next_date(self, d: date) -> date | None:
        behind = (d.toordinal() - EPOCH_ORDINAL) % self.n
        return d + timedelta(days=(-behind) % self.n)

    def matches(self, d: date) -> bool:
        return (d.toordinal() - EPOCH_ORDINAL) % self.n == 0

    def describe(self) -> str:
        return f"every {self.n} days"

    def cron_days(self) -> list[str] | None:
        return None


def nth_weekday(year: int, month: int, nth: int, weekday: int) -> int | None:
    """The day of the month of its ``nth`` ``weekday`` (``LAST_NTH`` for the last), if any."""
    first_weekday, length = calendar.monthrange(year, month)
    first = 1 + (weekday - first_weekday) % 7
    if nth == words.LAST_NTH:
        return first + (length - first) // 7 * 7
    day = first + (nth - 1) * 7
    return day if day <= length else None


@dataclass(frozen=True)
class NthWeekdays:
    """Weekdays by their place in the month, as (nth, weekday) pairs: (1, 0) is the first Monday."""

    items: frozenset[tuple[int, int]]

    def next_date(self, d: date) -> date | None:
        year, month, start = d.year, d.month, d.day
        for _ in range(MONTHS_TO_SCAN):
            days = [nth_weekday(year, month, nth, weekday) for nth, weekday in self.items]
            found = [day for day in days if day is not None and day >= start]
            if found:
                return date(year, month, min(found))
            year, month, start = year + month // 12, month % 12 + 1, 1
            if year > MAXYEAR:
                return None
        return None

    def matches(self, d: date) -> bool:
        return any(nth_weekday(d.year, d.month, n, w) == d.day for n, w in self.items)

    def describe(self) -> str:
        """``every first and third Monday and last Friday of the month``."""
        groups = []
        for weekday in sorted({w for _, w in self.items}):
            nths = sorted((n for n, w in self.items if w == weekday), key=_nth_order)
            names = words.join_list([words.NTH_NAMES[n] for n in nths])
            groups.append(f"{names} {words.WEEKDAY_NAMES[weekday]}")
        return "every " + words.join_list(groups) + " of the month"

    def cron_days(self) -> list[str] | None:
        terms = []
        for nth, weekday in sorted(self.items, key=lambda item: (item[1], _nth_order(item[0]))):
            number = (weekday + 1) % 7
            terms.append(f"{number}L" if nth == words.LAST_NTH else f"{number}#{nth}")
        return ["* * " + ",".join(terms)]


def _nth_order(nth: int) -> int:
    return 6 if nth == words.LAST_NTH else nth


DaySpec = EveryDay | Weekdays | MonthDays | YearDates | EveryNDays | NthWeekdays


def describe_on(spec: DaySpec) -> str:
    """The days as a filter after an interval: ``on weekdays``, ``on the 1st``, ``on July 4th``."""
    if isinstance(spec, Weekdays) and spec.days == words.WORKDAYS:
        return "on weekdays"
    the = "the " if isinstance(spec, MonthDays | NthWeekdays) else ""
    return f"on {the}{spec.describe().removeprefix('every ')}"
