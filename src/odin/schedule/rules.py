"""The three kinds of rule a schedule is a union of, and how each finds its next fire.

- ``IntervalRule``: exact elapsed time. It fires at every instant that is a
  multiple of ``period`` seconds after 1970-01-01T00:00Z, so fire times do not
  depend on when the engine started; an optional wall-clock window and an
  optional day filter keep some of them (a window that passes midnight belongs
  to the day it opens on).
- ``CalendarRule``: wall times on chosen days, mapped to instants by the DST
  rule of ``odin.schedule.wall``. Computed directly (no cron engine) because it
  is the common case; the tests check it against cronsim and a brute-force scan.
- ``CronRule``: a raw cron expression, evaluated and explained by cronsim.

The wall-clock rules to the second (``odin.schedule.clock``), systemd
calendar events (``odin.schedule.systemd``) and App Engine's months and grids
(``odin.schedule.appengine_rules``) live in modules of their own.

``next_after(t, t_ts, zone)`` returns the first fire strictly after ``t``
(``t_ts`` is ``t.timestamp()``, computed once by the caller), in ``zone``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cronsim import CronSim

from odin.schedule import words
from odin.schedule.appengine_rules import AppEngineRule, SynchronizedRule
from odin.schedule.clock import ClockRule, HourlyRule
from odin.schedule.days import DaySpec, describe_on
from odin.schedule.systemd import OnCalendarRule
from odin.schedule.wall import (
    ONE_DAY,
    epoch_floor,
    format_minute,
    from_epoch,
    offsets_seconds,
    resolve,
    second_of_day,
)
from odin.schedule.window import Window

__all__ = [
    "AppEngineRule",
    "CalendarRule",
    "ClockRule",
    "CronRule",
    "HourlyRule",
    "IntervalRule",
    "OnCalendarRule",
    "Rule",
    "SynchronizedRule",
    "Window",
    "describe_period",
]

MAX_WINDOW_HOPS = 4000  # days a windowed interval may look ahead (DST gaps can eat a day)
MAX_DATES_TRIED = 4  # the second matching date always has a fire after t; 4 is slack
MAX_CRON_STEPS = 4  # cronsim may return a wall time at or before t in a fall-back hour
CRON_EXPLAIN_START = datetime(2000, 1, 1)  # cronsim wants a start even to explain


@dataclass(frozen=True)
class IntervalRule:
    period: int
    window: Window | None = None
    days: DaySpec | None = None  # never EveryDay: the parser drops a filter that keeps all

    def next_after(self, t: datetime, t_ts: float, zone: ZoneInfo) -> datetime | None:
        tick = (epoch_floor(t) // self.period + 1) * self.period
        if self.days is not None:
            return self._next_on_days(tick, zone, self.days)
        if self.window is None:
            return from_epoch(tick, zone)
        return self._next_in_window(tick, zone, self.window)

    def _next_on_days(self, tick: int, zone: ZoneInfo, days: DaySpec) -> datetime | None:
        """The first tick from ``tick`` inside a window (if any) that opened on a chosen day."""
        window = self.window
        for _ in range(MAX_WINDOW_HOPS):
            fire = from_epoch(tick, zone)
            second, today = second_of_day(fire), fire.date()
            opened = today if window is None else window.opened_on(today, second)
            if opened is not None and days.matches(opened):
                return fire
            if window is None:
                day, opening_minute = days.next_date(today + ONE_DAY), 0
            else:
                first = today if second < window.start * 60 else today + ONE_DAY
                day, opening_minute = days.next_date(first), window.start
            if day is None:
                return None
            opening = epoch_floor(resolve(day, opening_minute, zone))
            tick = max(-(-opening // self.period) * self.period, tick + self.period)
        return None

    def _next_in_window(self, tick: int, zone: ZoneInfo, window: Window) -> datetime | None:
        for _ in range(MAX_WINDOW_HOPS):
            fire = from_epoch(tick, zone)
            second = second_of_day(fire)
            if window.contains(second):
                return fire
            opens_today = second < window.start * 60
            day = fire.date() if opens_today else fire.date() + ONE_DAY
            opening = epoch_floor(resolve(day, window.start, zone))
            tick = max(-(-opening // self.period) * self.period, tick + self.period)
        return None

    def describe(self) -> str:
        text = "every " + describe_period(self.period)
        if self.window is not None:
            text = f"{text} {self.window.describe()}"
        return text if self.days is None else f"{text} {describe_on(self.days)}"

    def explain(self) -> str:
        return self.describe()

    def cron(self, zone: ZoneInfo) -> list[str] | None:
        """Cron lines, only when they fire at exactly the same instants in ``zone``."""
        if any(offset % self.period for offset in offsets_seconds(zone)):
            return None
        fields = _interval_fields(self.period)
        if fields is None or self.window is None:
            lines = None if fields is None else [fields]
        else:
            lines = _windowed_cron(self.period, self.window)
        if lines is None or self.days is None:
            return lines
        day_parts = self.days.cron_days()
        if day_parts is None:
            return None
        # Every line ends in "* * *" (day of month, month, day of week): put the days there.
        return [line.rsplit(" ", 3)[0] + " " + part for line in lines for part in day_parts]


def _interval_fields(period: int) -> str | None:
    step = "*" if period in (1, 60, 3600) else None
    if period < 60 and 60 % period == 0:
        return f"{step or f'*/{period}'} * * * * *"
    if period < 3600 and period % 60 == 0 and 3600 % period == 0:
        return f"{step or f'*/{period // 60}'} * * * *"
    if period % 3600 == 0 and 86400 % period == 0:
        return f"0 {step or f'*/{period // 3600}'} * * *"
    return None


def _windowed_cron(period: int, window: Window) -> list[str] | None:
    """``*/15 9-16 * * *`` plus ``0 17 * * *`` for a 09:00-17:00 window, else None."""
    if window.start % 60 or window.end % 60 or window.start >= window.end or period >= 3600:
        return None
    first, last = window.start // 60, window.end // 60 - 1
    hours = str(first) if first == last else f"{first}-{last}"
    if period < 60:
        step = "*" if period == 1 else f"*/{period}"
        return [f"{step} * {hours} * * *", f"0 0 {last + 1} * * *"]
    step = "*" if period == 60 else f"*/{period // 60}"
    return [f"{step} {hours} * * *", f"0 {last + 1} * * *"]


def describe_period(period: int) -> str:
    for size, unit in ((3600, "hour"), (60, "minute"), (1, "second")):
        if period % size == 0:
            count = period // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{period} seconds"  # unreachable: every period is whole seconds


@dataclass(frozen=True)
class CalendarRule:
    """Fires at each of ``times`` (minutes of the day, sorted) on each day of ``days``."""

    days: DaySpec
    times: tuple[int, ...]

    def next_after(self, t: datetime, t_ts: float, zone: ZoneInfo) -> datetime | None:
        day = self.days.next_date(t.astimezone(zone).date())
        for _ in range(MAX_DATES_TRIED):
            if day is None:
                return None
            for minute in self.times:
                fire = resolve(day, minute, zone)
                if fire.timestamp() > t_ts:
                    return fire
            day = self.days.next_date(day + ONE_DAY)
        return None

    def describe(self) -> str:
        return (
            f"{self.days.describe()} at {words.join_list([format_minute(m) for m in self.times])}"
        )

    def explain(self) -> str:
        return self.describe()

    def cron(self, zone: ZoneInfo) -> list[str] | None:
        day_parts = self.days.cron_days()
        if day_parts is None:
            return None
        by_minute: dict[int, list[int]] = {}
        for hour, minute in (divmod(m, 60) for m in self.times):
            by_minute.setdefault(minute, []).append(hour)
        return [
            f"{minute} {','.join(map(str, hours))} {days}"
            for minute, hours in by_minute.items()
            for days in day_parts
        ]


@dataclass(frozen=True)
class CronRule:
    """A raw cron expression (5 fields, or 6 with seconds first), cronsim semantics."""

    expression: str

    def next_after(self, t: datetime, t_ts: float, zone: ZoneInfo) -> datetime | None:
        try:
            steps = CronSim(self.expression, t.astimezone(zone))
            for _ in range(MAX_CRON_STEPS):
                fire: datetime = next(steps)
                if fire.timestamp() > t_ts:
                    return fire
        except (StopIteration, OverflowError, ValueError):
            return None
        return None

    def describe(self) -> str:
        return f"cron: {self.expression}"

    def explain(self) -> str:
        """cronsim's English for the expression, starting in lower case like Odin's own."""
        text: str = CronSim(self.expression, CRON_EXPLAIN_START).explain()
        return text[:1].lower() + text[1:]

    def cron(self, zone: ZoneInfo) -> list[str] | None:
        return [self.expression]


Rule = (
    IntervalRule
    | CalendarRule
    | CronRule
    | ClockRule
    | HourlyRule
    | OnCalendarRule
    | AppEngineRule
    | SynchronizedRule
)
