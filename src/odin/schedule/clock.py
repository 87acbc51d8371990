"""English rules on the wall clock to the second: "at 09:00:30", "every 2 hours at :15".

Both fire at wall times under Odin's DST rule (``odin.schedule.wall``), found by
``odin.schedule.walk``. ``HourlyRule`` counts its hours from midnight each day,
as cron's ``*/5`` does, so "every 5 hours at :00" fires at 00:00, 05:00, ..., 20:00.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from odin.schedule import words
from odin.schedule.days import DaySpec, describe_on
from odin.schedule.runs import cron_field
from odin.schedule.walk import next_wall_fire
from odin.schedule.wall import ONE_DAY, format_second
from odin.schedule.window import Window


def first_at_or_after(times: tuple[int, ...], second: int) -> int | None:
    """The first of the sorted ``times`` at or after ``second``, or None."""
    index = bisect.bisect_left(times, second)
    return times[index] if index < len(times) else None


def format_offset(offset: int) -> str:
    """Seconds past the hour as ``:15`` or ``:15:30``."""
    minute, second = divmod(offset, 60)
    return f":{minute:02d}" if second == 0 else f":{minute:02d}:{second:02d}"


@dataclass(frozen=True)
class ClockRule:
    """Wall times to the second (``times``: seconds of the day, sorted) on the days of ``days``."""

    days: DaySpec
    times: tuple[int, ...]

    def next_after(self, t: datetime, t_ts: float, zone: ZoneInfo) -> datetime | None:
        return next_wall_fire(self, t, t_ts, zone)

    def next_day(self, d: date) -> date | None:
        return self.days.next_date(d)

    def first_second(self, d: date, second: int) -> int | None:
        return first_at_or_after(self.times, second)

    def describe(self) -> str:
        return (
            f"{self.days.describe()} at {words.join_list([format_second(s) for s in self.times])}"
        )

    def explain(self) -> str:
        return self.describe()

    def cron(self, zone: ZoneInfo) -> list[str] | None:
        """None: cron's seconds field follows elapsed time across DST, not the wall clock."""
        return None


@dataclass(frozen=True)
class HourlyRule:
    """``offsets`` (seconds past the hour) every ``step`` hours from midnight, in a window, on days.

    After midnight, a window that wraps still belongs to the day it opened on.
    """

    step: int
    offsets: tuple[int, ...]
    window: Window | None = None
    days: DaySpec | None = None  # never EveryDay: the parser drops a filter that keeps all
    _late: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _early: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seconds = sorted(h * 3600 + o for h in range(0, 24, self.step) for o in self.offsets)
        window = self.window
        late, early = seconds, []
        if window is not None and not window.wraps:
            late = [s for s in seconds if window.contains(s)]
        elif window is not None:
            late = [s for s in seconds if s >= window.start * 60]
            early = [s for s in seconds if s <= window.end * 60]
        object.__setattr__(self, "_late", tuple(late))
        object.__setattr__(self, "_early", tuple(early))

    @property
    def fires(self) -> bool:
        """False when no time falls inside the window (the parser refuses that)."""
        return bool(self._late or self._early)

    def next_after(self, t: datetime, t_ts: float, zone: ZoneInfo) -> datetime | None:
        return next_wall_fire(self, t, t_ts, zone)

    def next_day(self, d: date) -> date | None:
        if self.days is None:
            return d
        found = []
        if self._late:
            found.append(self.days.next_date(d))
        if self._early:
            opened = self.days.next_date(d - ONE_DAY)
            found.append(opened + ONE_DAY if opened is not None and opened < date.max else None)
        days = [day for day in found if day is not None]
        return min(days) if days else None

    def first_second(self, d: date, second: int) -> int | None:
        found = []
        if self.days is None or self.days.matches(d):
            found.append(first_at_or_after(self._late, second))
        if self._early and (self.days is None or self.days.matches(d - ONE_DAY)):
            found.append(first_at_or_after(self._early, second))
        seconds = [s for s in found if s is not None]
        return min(seconds) if seconds else None

    def describe(self) -> str:
        every = "every hour" if self.step == 1 else f"every {self.step} hours"
        text = f"{every} at {words.join_list([format_offset(o) for o in self.offsets])}"
        if self.window is not None:
            text = f"{text} {self.window.describe()}"
        return text if self.days is None else f"{text} {describe_on(self.days)}"

    def explain(self) -> str:
        return self.describe()

    def cron(self, zone: ZoneInfo) -> list[str] | None:
        """Cron lines with explicit hours, which cron keeps on the wall clock across DST."""
        if any(offset % 60 for offset in self.offsets):
            return None
        if self.window is not None and self.window.wraps and self.days is not None:
            return None
        day_parts = ["* * *"] if self.days is None else self.days.cron_days()
        if day_parts is None:
            return None
        hours_by_minute: dict[int, list[int]] = {}
        for second in sorted(set(self._late + self._early)):
            hour, minute = divmod(second // 60, 60)
            hours_by_minute.setdefault(minute, []).append(hour)
        return [
            f"{minute} {cron_field(hours)} {days}"
            for minute, hours in sorted(hours_by_minute.items())
            for days in day_parts
        ]
