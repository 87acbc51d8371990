"""The rules of App Engine cron that Odin's English has no rule for: chosen months, and grids.

- ``AppEngineRule``: one wall time on days of chosen months, App Engine's
  ``1st,3rd mon of sep,oct,nov 17:00``, ``every wed,fri of jan,jun 13:15`` and
  ``1,15 of jan,jul 09:00``. The days are an AND of months, days of the month and
  weekdays, so the date arithmetic is systemd's (``odin.schedule.systemd``): the
  n-th Monday of a month is a Monday on one of the days 7n-6 to 7n.
- ``SynchronizedRule``: App Engine's ``every 2 hours synchronized``, the wall times
  0, N, 2N, ... from midnight each day.

Both fire at wall times under Odin's DST rule (``odin.schedule.wall``), found by
``odin.schedule.walk``. What English can say (any form on every month) the
parser (``odin.schedule.appengine``) turns into English rules instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from odin.schedule import words
from odin.schedule.runs import cron_field
from odin.schedule.systemd import DateFields
from odin.schedule.walk import next_wall_fire
from odin.schedule.wall import SECONDS_PER_DAY, format_minute

ALL_ORDINALS = frozenset(range(1, 6))
ALL_WEEKDAYS = frozenset(range(7))
ALL_MONTHS = frozenset(range(1, 13))
DAYS_PER_WEEK = 7
LONGEST_MONTH = 31
MONTH_ABBREVIATIONS = tuple(name[:3].lower() for name in words.MONTH_NAMES)
WEEKDAY_ABBREVIATIONS = tuple(name[:3].lower() for name in words.WEEKDAY_NAMES)


def ordinal_days(ordinals: frozenset[int]) -> tuple[int, ...]:
    """The days of the month on which the ``ordinals``-th weekdays can fall: 1st is 1 to 7."""
    days: set[int] = set()
    for nth in ordinals:
        days.update(range(DAYS_PER_WEEK * (nth - 1) + 1, DAYS_PER_WEEK * nth + 1))
    return tuple(sorted(day for day in days if day <= LONGEST_MONTH))


@dataclass(frozen=True)
class AppEngineRule:
    """A wall time on chosen days of chosen months: monthdays, or ordinals x weekdays.

    ``monthdays`` empty means the days are the ``ordinals``-th ``weekdays`` (all five
    ordinals: every such weekday; all seven weekdays too: every day).
    """

    months: frozenset[int]  # 1-12
    minute: int  # of the day
    monthdays: frozenset[int] = frozenset()  # 1-31
    ordinals: frozenset[int] = ALL_ORDINALS  # 1-5
    weekdays: frozenset[int] = ALL_WEEKDAYS  # Monday = 0
    _dates: DateFields = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        months = tuple(sorted(self.months))
        if self.monthdays:
            dates = DateFields(months=months, days=tuple(sorted(self.monthdays)))
        else:
            days = None if self.ordinals == ALL_ORDINALS else ordinal_days(self.ordinals)
            weekdays = None if self.weekdays == ALL_WEEKDAYS else tuple(sorted(self.weekdays))
            dates = DateFields(months=months, days=days, weekdays=weekdays)
        object.__setattr__(self, "_dates", dates)

    def next_after(self, t: datetime, t_ts: float, zone: ZoneInfo) -> datetime | None:
        return next_wall_fire(self, t, t_ts, zone)

    def next_day(self, d: date) -> date | None:
        return self._dates.next_date(d)

    def first_second(self, d: date, second: int) -> int | None:
        fire = self.minute * 60
        return fire if fire >= second else None

    def describe(self) -> str:
        """App Engine's own spelling, which English never reads and so parses back to this rule."""
        months = ",".join(MONTH_ABBREVIATIONS[m] for m in sorted(self.months))
        clock = format_minute(self.minute)
        if self.monthdays:
            return f"{','.join(map(str, sorted(self.monthdays)))} of {months} {clock}"
        if self.ordinals == ALL_ORDINALS:
            return f"every {self._weekday_words(everyday='day')} of {months} {clock}"
        ordinals = ",".join(words.ordinal(n) for n in sorted(self.ordinals))
        return f"{ordinals} {self._weekday_words(everyday=None)} of {months} {clock}"

    def _weekday_words(self, everyday: str | None) -> str:
        if everyday is not None and self.weekdays == ALL_WEEKDAYS:
            return everyday
        return ",".join(WEEKDAY_ABBREVIATIONS[w] for w in sorted(self.weekdays))

    def explain(self) -> str:
        """``every first and third Monday of September, October and November at 17:00``."""
        months = words.join_list([words.MONTH_NAMES[m] for m in sorted(self.months)])
        at = f"at {format_minute(self.minute)}"
        if self.monthdays:
            days = words.join_list([words.ordinal(d) for d in sorted(self.monthdays)])
            return f"every {days} of {months} {at}"
        names = words.join_list([words.WEEKDAY_NAMES[w] for w in sorted(self.weekdays)])
        if self.ordinals == ALL_ORDINALS:
            what = "day" if self.weekdays == ALL_WEEKDAYS else names
            return f"every {what} in {months} {at}"
        nths = words.join_list([words.NTH_NAMES[n] for n in sorted(self.ordinals)])
        return f"every {nths} {names} of {months} {at}"

    def cron(self, zone: ZoneInfo) -> list[str] | None:
        """One line with a fixed minute and hour, which cron keeps on the wall clock across DST."""
        hour, minute = divmod(self.minute, 60)
        months = cron_field(self.months)
        if self.monthdays:
            return [f"{minute} {hour} {cron_field(self.monthdays)} {months} *"]
        numbers = sorted((w + 1) % 7 for w in self.weekdays)
        if self.ordinals == ALL_ORDINALS:
            weekdays = "*" if self.weekdays == ALL_WEEKDAYS else cron_field(numbers)
        else:
            weekdays = ",".join(f"{w}#{n}" for w in numbers for n in sorted(self.ordinals))
        return [f"{minute} {hour} * {months} {weekdays}"]


@dataclass(frozen=True)
class SynchronizedRule:
    """The wall times 0, ``period``, 2 x ``period``, ... seconds after each midnight."""

    period: int  # seconds: whole minutes that divide a day

    def next_after(self, t: datetime, t_ts: float, zone: ZoneInfo) -> datetime | None:
        return next_wall_fire(self, t, t_ts, zone)

    def next_day(self, d: date) -> date | None:
        return d

    def first_second(self, d: date, second: int) -> int | None:
        fire = -(-second // self.period) * self.period
        return fire if fire < SECONDS_PER_DAY else None

    def describe(self) -> str:
        """App Engine's spelling (always plural, as its grammar wants): ``every 1 hours synchronized``."""
        if self.period % 3600 == 0:
            return f"every {self.period // 3600} hours synchronized"
        return f"every {self.period // 60} minutes synchronized"

    def explain(self) -> str:
        """``every 2 hours from 00:00 through 22:00``, or ``every day at 00:00`` for 24 hours."""
        last = (SECONDS_PER_DAY - self.period) // 60
        if last == 0:
            return "every day at 00:00"
        size, unit = (3600, "hour") if self.period % 3600 == 0 else (60, "minute")
        count = self.period // size
        every = unit if count == 1 else f"{count} {unit}s"
        return f"every {every} from 00:00 through {format_minute(last)}"

    def cron(self, zone: ZoneInfo) -> list[str] | None:
        """Lines with explicit minutes and hours (never ``*``), which keep to the wall clock."""
        hours_of_minute: dict[int, list[int]] = {}
        for second in range(0, SECONDS_PER_DAY, self.period):
            hour, minute = divmod(second // 60, 60)
            hours_of_minute.setdefault(minute, []).append(hour)
        minutes_of_hours: dict[tuple[int, ...], list[int]] = {}
        for minute, hours in sorted(hours_of_minute.items()):
            minutes_of_hours.setdefault(tuple(hours), []).append(minute)
        return [
            f"{cron_field(minutes)} {cron_field(hours)} * * *"
            for hours, minutes in minutes_of_hours.items()
        ]
