"""English for a systemd calendar event, for people to read (it is not parsed back).

``Mon..Fri 09..17:00/15`` reads "every 15 minutes from 09:00 through 17:45 on
Monday through Friday".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from odin.schedule import words
from odin.schedule.runs import runs
from odin.schedule.wall import format_second

if TYPE_CHECKING:
    from odin.schedule.systemd import DateFields, TimeGrid

MAX_LISTED_TIMES = 6  # more wall times than this a day are described by their pattern
EVERY_DAY = "every day"


def explain(dates: DateFields, times: TimeGrid) -> str:
    when = _dates(dates)
    if when == EVERY_DAY and not _times(times).startswith("at "):
        return _times(times)  # "every 15 minutes", not "every 15 minutes every day"
    return f"{_times(times)} {when}"


def _times(times: TimeGrid) -> str:
    hours, minutes, seconds = times.hours, times.minutes, times.seconds
    if len(hours) * len(minutes) * len(seconds) <= MAX_LISTED_TIMES:
        listed = [h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds]
        return "at " + words.join_list([format_second(s) for s in listed])
    within_minute = _every(seconds, 60, "second")
    if seconds == (0,):
        return _minutes_and_hours(hours, minutes, seconds)
    if within_minute is None:
        spelt = words.join_list([str(s) for s in seconds])
        within_minute = f"at second{'s' if len(seconds) > 1 else ''} {spelt}"
    if len(minutes) == 60 and len(hours) == 24:
        return within_minute
    return f"{within_minute}, {_minutes_and_hours(hours, minutes, seconds)}"


def _minutes_and_hours(
    hours: tuple[int, ...], minutes: tuple[int, ...], seconds: tuple[int, ...]
) -> str:
    """``every 15 minutes from 09:00 through 17:45``, ``at :05 and :35 past every hour``."""
    step = _every(minutes, 60, "minute")
    contiguous = hours == tuple(range(hours[0], hours[-1] + 1))
    if step is not None:
        if len(hours) == 24:
            return step
        if contiguous:
            first = (hours[0] * 60 + minutes[0]) * 60 + seconds[0]
            last = (hours[-1] * 60 + minutes[-1]) * 60 + seconds[-1]
            return f"{step} from {format_second(first)} through {format_second(last)}"
        return f"{step} during hours {_hour_list(hours)}"
    past = words.join_list([f":{m:02d}" for m in minutes])
    if len(hours) == 24:
        return f"at {past} past every hour"
    return f"at {past} past hours {_hour_list(hours)}"


def _every(values: tuple[int, ...], size: int, unit: str) -> str | None:
    """``every minute`` or ``every 15 minutes`` when ``values`` step evenly from 0 round ``size``."""
    if values[0] != 0 or len(values) < 2 or size % values[1]:
        return None
    step = values[1]
    if values != tuple(range(0, size, step)):
        return None
    return f"every {unit}" if step == 1 else f"every {step} {unit}s"


def _hour_list(hours: tuple[int, ...]) -> str:
    return _spell(hours, lambda h: f"{h:02d}")


def _dates(dates: DateFields) -> str:
    weekdays, days, months = dates.weekdays, dates.days, dates.months
    text = EVERY_DAY
    if weekdays is not None and days is not None:
        names = words.join_list([words.WEEKDAY_NAMES[w] for w in weekdays]).rsplit(" and ", 1)
        text = f"on a {' or '.join(names)} that is {_month_days(days, dates.from_end)}"
    elif weekdays is not None:
        text = "on " + _spell(weekdays, lambda w: words.WEEKDAY_NAMES[w])
    elif days is not None:
        text = "on " + _month_days(days, dates.from_end)
    if days is not None:
        text += " of every month" if months is None else ""
    if months is not None:
        joiner = " of " if days is not None else " in "
        text += joiner + _spell(months, lambda m: words.MONTH_NAMES[m])
    if dates.years is not None:
        text += " in " + _spell(dates.years, str)
    return text


def _month_days(days: tuple[int, ...], from_end: bool) -> str:
    if not from_end:
        return "the " + _spell(days, words.ordinal)
    if len(days) > 1 and days == tuple(range(1, len(days) + 1)):
        return f"one of the last {len(days)} days"
    items = ["last day" if v == 1 else f"{words.ordinal(v)}-to-last day" for v in days]
    return "the " + words.join_list(items)


def _spell(values: tuple[int, ...], spell: Callable[[int], str]) -> str:
    """Values joined in English, with a run of three or more as ``A through B``."""
    items = []
    for run in runs(values):
        if run.step == 1 and run.stop != run.start:
            items.append(f"{spell(run.start)} through {spell(run.stop)}")
        else:
            items += [spell(v) for v in range(run.start, run.stop + 1, run.step)]
    return words.join_list(items)
