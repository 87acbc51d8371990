"""The next fire of a rule made of wall-clock seconds on chosen days, under Odin's DST rule.

A rule hands over a ``DayPlan``: which dates may hold a fire, and the first
fire second of a date from a given second on. Walking dates forward and mapping
each wall time with ``resolve_second`` is correct because that mapping never
goes backwards: the first wall time at or after ``t``'s own wall time that maps
to an instant after ``t`` is the answer. Only when ``t`` lies in an hour that
fall-back repeats do earlier-looking wall times map before ``t``; a binary
search then skips them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from odin.schedule.wall import ONE_DAY, first_second_after, resolve_second, second_of_day

MAX_DAYS_TRIED = 8  # a plan may offer a few dates whose fires are all at or before t


class DayPlan(Protocol):
    def next_day(self, d: date) -> date | None:
        """The first date on or after ``d`` that may hold a fire, or None."""
        ...

    def first_second(self, d: date, second: int) -> int | None:
        """The first fire second of the day ``d`` at or after ``second``, or None."""
        ...


def next_wall_fire(plan: DayPlan, t: datetime, t_ts: float, zone: ZoneInfo) -> datetime | None:
    """The first instant strictly after ``t`` at which ``plan`` fires, in ``zone``."""
    local = t.astimezone(zone)
    today = local.date()
    after_t = second_of_day(local) + 1 if local.fold == 0 else 0
    day = plan.next_day(today)
    for _ in range(MAX_DAYS_TRIED):
        if day is None:
            return None
        second = plan.first_second(day, after_t if day == today else 0)
        if second is not None:
            fire = resolve_second(day, second, zone)
            if fire.timestamp() > t_ts:
                return fire
            later = first_second_after(day, second + 1, t_ts, zone)
            second = plan.first_second(day, later)
            if second is not None:
                return resolve_second(day, second, zone)
        day = plan.next_day(day + ONE_DAY)
    return None
