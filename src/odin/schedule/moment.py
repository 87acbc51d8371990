"""One moment written by people, for ``odin modify --pause-until``: text → an instant.

Accepted (case-insensitive), in the job's zone unless the text gives an offset:

- ISO 8601: ``2026-12-24 18:00``, ``2026-12-24T18:00:30+01:00``, ``2026-12-24`` (midnight);
- a day and a time: ``Monday 08:00``, ``next Friday at 6pm``, ``tomorrow 09:00``,
  ``today 17:30``; a day alone is its midnight, a time alone its next occurrence;
- a delay: ``in 3 hours``, ``in 90 minutes``, ``in 2 days``, ``in 30s``.

A weekday is the first such day whose moment is still to come (``Monday 08:00`` on a Monday
at 07:00 is today); ``next`` skips today. Wall times map to instants by Odin's DST rule
(``odin.schedule.wall``). A moment that is not in the future is refused. Pure: ``now`` is
given; ``parse_moment`` raises ``ScheduleError`` and nothing else.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import NoReturn
from zoneinfo import ZoneInfo

from odin.errors import ScheduleError
from odin.schedule import words
from odin.schedule.parser import Parser
from odin.schedule.wall import load_zone, resolve_second

EXPECTED = 'a moment like "Monday 08:00", "tomorrow 09:00", "2026-12-24 18:00" or "in 3 hours"'
_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_DELAY = re.compile(r"in\s+((?:\d{1,9}\s*[a-z]+\s*)+)", re.ASCII | re.IGNORECASE)
_DELAY_PART = re.compile(r"(\d{1,9})\s*([a-z]+)", re.ASCII | re.IGNORECASE)
_SHORT_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_TEXT = 200


def parse_moment(text: str, timezone: str, now: datetime) -> datetime:
    """The instant ``text`` names, after the aware ``now``, in whole seconds (rounded up)."""
    try:
        return _moment(text, timezone, now)
    except (OverflowError, ValueError):  # past the end of the calendar (year 9999)
        _fail(text, 0, f'"{text.strip()[:40]}" is too far ahead: expected {EXPECTED}')


def _moment(text: str, timezone: str, now: datetime) -> datetime:
    value = text.strip()[:_MAX_TEXT]
    if not value:
        _fail(text, 0, f"the moment is empty: expected {EXPECTED}")
    zone = load_zone(timezone) or ZoneInfo("UTC")
    if _ISO_START.match(value):
        moment = _iso(text, value, zone)
    elif _DELAY.fullmatch(value):
        moment = _after_delay(text, value, now)
    else:
        try:
            moment = _day_and_time(value, zone, now)
        except ScheduleError as error:  # the parser of schedules speaks of "the schedule"
            error.message = error.message.replace("the schedule", "the moment")
            error.args = (error.message,)
            raise
    moment = _whole_second(moment)
    if moment <= now:
        shown = moment.astimezone(zone).isoformat()
        _fail(text, 0, f'"{value}" ({shown}) is not in the future: expected a moment to come')
    return moment


def _fail(text: str, position: int, message: str) -> NoReturn:
    raise ScheduleError(message, text=text, position=position, expected=EXPECTED)


def _whole_second(moment: datetime) -> datetime:
    stamp = math.ceil(moment.timestamp())
    return datetime.fromtimestamp(stamp, UTC).astimezone(moment.tzinfo)


def _iso(text: str, value: str, zone: ZoneInfo) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _fail(text, 0, f'"{value}" is not an ISO 8601 date and time: expected {EXPECTED}')
    if parsed.tzinfo is not None:
        return parsed
    second = parsed.hour * 3600 + parsed.minute * 60 + parsed.second
    return resolve_second(parsed.date(), second, zone)


def _after_delay(text: str, value: str, now: datetime) -> datetime:
    total = 0
    for match in _DELAY_PART.finditer(value[2:]):
        unit = match.group(2).lower()
        size = words.UNITS.get(unit) or _SHORT_UNITS.get(unit)
        if size is None:
            at = 2 + match.start(2)
            unexpected = f'unexpected "{match.group(2)[:20]}" at position {at}'
            _fail(text, at, f"{unexpected}: expected seconds, minutes, hours or days")
        total += int(match.group(1)) * size
    return now + timedelta(seconds=total)  # OverflowError: too far ahead (parse_moment)


def _day_and_time(value: str, zone: ZoneInfo, now: datetime) -> datetime:
    """``[on] [today | tomorrow | [next] WEEKDAY] [[at] TIME]``, one of the two at least."""
    parser = Parser(value)
    today = now.astimezone(zone).date()
    parser.take_if("on")
    day: date | None = None
    weekday: int | None = None
    skip_today = False
    if parser.take_if("today"):
        day = today
    elif parser.take_if("tomorrow"):
        day = today + timedelta(days=1)
    else:
        skip_today = parser.take_if("next")
        if parser.word() in words.SINGLE_WEEKDAYS:
            weekday = words.SINGLE_WEEKDAYS[parser.take("a weekday").word]
        elif skip_today:
            parser.fail("a weekday, like Monday")
    second: int | None = None
    if parser.peek() is not None:
        parser.take_if("at")
        second = _time(parser, alone=day is None and weekday is None)
    if parser.peek() is not None:
        parser.fail("the end")
    if weekday is None:
        return _next_wall(day, second or 0, zone, now)
    ahead = (weekday - today.weekday()) % 7 or (7 if skip_today else 0)
    moment = resolve_second(today + timedelta(days=ahead), second or 0, zone)
    if moment <= now:
        moment = resolve_second(today + timedelta(days=ahead + 7), second or 0, zone)
    return moment


def _time(parser: Parser, alone: bool) -> int:
    """A time of day; alone (no day before it), a word that is none says all that is read."""
    token = parser.peek()
    try:
        return parser.time()
    except ScheduleError as error:
        if not alone or token is None or error.position != token.pos:
            raise
        message = f'unexpected "{token.text[:40]}" at position {token.pos}: expected {EXPECTED}'
        raise ScheduleError(
            message, text=parser.text, position=token.pos, expected=EXPECTED
        ) from None


def _next_wall(day: date | None, second: int, zone: ZoneInfo, now: datetime) -> datetime:
    """On ``day``, or, for a time alone, today's if still to come, else tomorrow's."""
    if day is not None:
        return resolve_second(day, second, zone)
    today = now.astimezone(zone).date()
    moment = resolve_second(today, second, zone)
    if moment <= now:
        moment = resolve_second(today + timedelta(days=1), second, zone)
    return moment
