"""A systemd calendar event (``OnCalendar=``) as a rule: which dates, which wall times.

The date part is an AND of years, months, days (counted from the month's end
after ``~``) and weekdays, as systemd has it; the time part is every
combination of the chosen hours, minutes and seconds. Wall times map to
instants by Odin's one DST rule (``odin.schedule.wall``), found by
``odin.schedule.walk``. ``odin.schedule.oncalendar`` parses the text.
"""

from __future__ import annotations

import bisect
import calendar
from dataclasses import dataclass
from datetime import MAXYEAR, date, datetime
from zoneinfo import ZoneInfo

from odin.schedule import systemd_words
from odin.schedule.runs import cron_field, systemd_component
from odin.schedule.walk import next_wall_fire

CALENDAR_CYCLE_MONTHS = 400 * 12 + 12  # the Gregorian calendar repeats every 400 years
MIN_YEAR, MAX_YEAR = 1970, 2199  # systemd's bounds
WEEKDAY_ABBREVIATIONS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _first_at_or_after(values: tuple[int, ...], value: int) -> int | None:
    index = bisect.bisect_left(values, value)
    return values[index] if index < len(values) else None


@dataclass(frozen=True)
class DateFields:
    """Sorted allowed values per field; None allows any. ``from_end`` days count back (1 = last)."""

    years: tuple[int, ...] | None = None
    months: tuple[int, ...] | None = None
    days: tuple[int, ...] | None = None
    from_end: bool = False
    weekdays: tuple[int, ...] | None = None  # Monday = 0

    def next_date(self, d: date) -> date | None:
        """The first matching date on or after ``d``, jumping over whole years and months."""
        year, month, start = d.year, d.month, d.day
        for _ in range(CALENDAR_CYCLE_MONTHS):
            if year > MAXYEAR:
                return None
            if self.years is not None and year not in self.years:
                later = _first_at_or_after(self.years, year)
                if later is None:
                    return None
                year, month, start = later, 1, 1
                continue
            if self.months is not None and month not in self.months:
                later = _first_at_or_after(self.months, month)
                if later is None:
                    year, month, start = year + 1, self.months[0], 1
                else:
                    month, start = later, 1
                continue
            day = self._first_day(year, month, start)
            if day is not None:
                return date(year, month, day)
            year, month, start = year + month // 12, month % 12 + 1, 1
        return None

    def _first_day(self, year: int, month: int, start: int) -> int | None:
        first_weekday, length = calendar.monthrange(year, month)
        if self.days is None:
            if self.weekdays is None:
                return start if start <= length else None
            today = (first_weekday + start - 1) % 7
            day = start + min((w - today) % 7 for w in self.weekdays)
            return day if day <= length else None
        for day in self._days_of(year, month):
            if day >= start and (
                self.weekdays is None or (first_weekday + day - 1) % 7 in self.weekdays
            ):
                return day
        return None

    def _days_of(self, year: int, month: int) -> list[int]:
        assert self.days is not None
        length = calendar.monthrange(year, month)[1]
        if self.from_end:
            return sorted(length + 1 - v for v in self.days if v <= length)
        return [v for v in self.days if v <= length]

    def normalized(self) -> str:
        """``Mon..Fri *-*-01``: the date part in systemd's own spelling."""
        year = "*" if self.years is None else systemd_component(self.years, 4, MAX_YEAR)
        month = "*" if self.months is None else systemd_component(self.months, top=12)
        top = None if self.from_end else 31  # "~1/2" would step towards the month's end
        day = "*" if self.days is None else systemd_component(self.days, top=top)
        text = f"{year}-{month}{'~' if self.from_end else '-'}{day}"
        if self.weekdays is None:
            return text
        return f"{_weekday_list(self.weekdays)} {text}"


def _weekday_list(weekdays: tuple[int, ...]) -> str:
    """``Mon..Fri``, ``Sat,Sun``, ``Mon,Wed,Fri``: ranges only for three days or more."""
    parts: list[str] = []
    i = 0
    while i < len(weekdays):
        j = i
        while j + 1 < len(weekdays) and weekdays[j + 1] == weekdays[j] + 1:
            j += 1
        names = [WEEKDAY_ABBREVIATIONS[w] for w in weekdays[i : j + 1]]
        parts.append(f"{names[0]}..{names[-1]}" if len(names) >= 3 else ",".join(names))
        i = j + 1
    return ",".join(parts)


@dataclass(frozen=True)
class TimeGrid:
    """Every combination of ``hours``, ``minutes`` and ``seconds`` (each sorted, non-empty)."""

    hours: tuple[int, ...]
    minutes: tuple[int, ...]
    seconds: tuple[int, ...]

    def first_at_or_after(self, second_of_day: int) -> int | None:
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        first_minute, first_second = self.minutes[0], self.seconds[0]
        next_hour = _first_at_or_after(self.hours, hour)
        if next_hour is None:
            return None
        if next_hour == hour:
            next_minute = _first_at_or_after(self.minutes, minute)
            if next_minute == minute:
                next_second = _first_at_or_after(self.seconds, second)
                if next_second is not None:
                    return hour * 3600 + minute * 60 + next_second
                next_minute = _first_at_or_after(self.minutes, minute + 1)
            if next_minute is not None:
                return hour * 3600 + next_minute * 60 + first_second
            next_hour = _first_at_or_after(self.hours, hour + 1)
            if next_hour is None:
                return None
        return next_hour * 3600 + first_minute * 60 + first_second

    def normalized(self) -> str:
        """``09..17:00/15:00``: the time part in systemd's own spelling."""
        fields = ((self.hours, 23), (self.minutes, 59), (self.seconds, 59))
        return ":".join(
            "*" if len(values) == top + 1 else systemd_component(values, top=top)
            for values, top in fields
        )


@dataclass(frozen=True)
class OnCalendarRule:
    """A systemd calendar event: the wall times of ``times`` on the dates of ``dates``."""

    dates: DateFields
    times: TimeGrid

    def next_after(self, t: datetime, t_ts: float, zone: ZoneInfo) -> datetime | None:
        return next_wall_fire(self, t, t_ts, zone)

    def next_day(self, d: date) -> date | None:
        return self.dates.next_date(d)

    def first_second(self, d: date, second: int) -> int | None:
        return self.times.first_at_or_after(second)

    def describe(self) -> str:
        """systemd's normalized form, which parses back to an equal rule."""
        return f"{self.dates.normalized()} {self.times.normalized()}"

    def explain(self) -> str:
        return systemd_words.explain(self.dates, self.times)

    def cron(self, zone: ZoneInfo) -> list[str] | None:
        """One cron line when cron can say the same: no years or seconds, no weekday AND day.

        Hours and minutes are written out (never ``*``), which keeps cron on the
        wall clock across DST, as Odin's rule is.
        """
        dates, times = self.dates, self.times
        if times.seconds != (0,) or dates.years is not None:
            return None
        if dates.days is not None and dates.weekdays is not None:
            return None  # systemd wants both; cron would take either
        if dates.days is None:
            day = "*"
        elif not dates.from_end:
            day = cron_field(dates.days)
        elif dates.days == (1,):
            day = "L"
        else:
            return None
        month = "*" if dates.months is None else cron_field(dates.months)
        weekday = "*"
        if dates.weekdays is not None:
            weekday = cron_field((w + 1) % 7 for w in dates.weekdays)
        minute, hour = cron_field(times.minutes), cron_field(times.hours)
        return [f"{minute} {hour} {day} {month} {weekday}"]
