"""The three kinds of rule a schedule is a union of, and how each finds its next fire.

- ``IntervalRule``: exact elapsed time. It fires at every instant that is a
  multiple of ``period`` seconds after 1970-01-01T00:00Z, so fire times do not
  depend on when the engine started; an optional wall-clock window filters them.
- ``CalendarRule``: wall times on chosen days, mapped to instants by the DST
  rule of ``odin.schedule.wall``. Computed directly (no cron engine) because it
  is the common case; the tests check it against cronsim and a brute-force scan.
- ``CronRule``: a raw cron expression, evaluated by cronsim.

``next_after(t, t_ts, zone)`` returns the first fire strictly after ``t``
(``t_ts`` is ``t.timestamp()``, computed once by the caller), in ``zone``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cronsim import CronSim

from odin.schedule import words
from odin.schedule.days import DaySpec
from odin.schedule.wall import (
    ONE_DAY,
    epoch_floor,
    format_minute,
    from_epoch,
    offsets_seconds,
    resolve,
    second_of_day,
)

MAX_WINDOW_HOPS = 4000  # days a windowed interval may look ahead (DST gaps can eat a day)
MAX_DATES_TRIED = 4  # the second matching date always has a fire after t; 4 is slack
MAX_CRON_STEPS = 4  # cronsim may return a wall time at or before t in a fall-back hour


@dataclass(frozen=True)
class Window:
    """Wall-clock minutes of the day, both ends included; ``start > end`` wraps midnight."""

    start: int
    end: int

    def contains(self, second: int) -> bool:
        low, high = self.start * 60, self.end * 60
        if low <= high:
            return low <= second <= high
        return second >= low or second <= high

    def length_seconds(self) -> int:
        return ((self.end - self.start) % (24 * 60)) * 60

    def describe(self) -> str:
        return f"between {format_minute(self.start)} and {format_minute(self.end)}"


@dataclass(frozen=True)
class IntervalRule:
    period: int
    window: Window | None = None

    def next_after(self, t: datetime, t_ts: float, zone: ZoneInfo) -> datetime | None:
        tick = (epoch_floor(t) // self.period + 1) * self.period
        if self.window is None:
            return from_epoch(tick, zone)
        return self._next_in_window(tick, zone, self.window)

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
        return text if self.window is None else f"{text} {self.window.describe()}"

    def cron(self, zone: ZoneInfo) -> list[str] | None:
        """Cron lines, only when they fire at exactly the same instants in ``zone``."""
        if any(offset % self.period for offset in offsets_seconds(zone)):
            return None
        fields = _interval_fields(self.period)
        if fields is None or self.window is None:
            return None if fields is None else [fields]
        return _windowed_cron(self.period, self.window)


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

    def cron(self, zone: ZoneInfo) -> list[str] | None:
        return [self.expression]


Rule = IntervalRule | CalendarRule | CronRule
