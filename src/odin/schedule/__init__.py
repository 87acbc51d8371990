"""Odin's English schedule language: text → ``Schedule`` → ``next_after(t)``.

Pure: no clock, no I/O of ours (zone data is read by ``zoneinfo``), no asyncio.
``parse`` raises ``ScheduleError`` and nothing else, whatever the input.

    >>> s = parse("every Monday and Friday at 10:00", "Europe/Dublin")
    >>> s.describe()
    'every Monday and Friday at 10:00'
    >>> s.cron()
    ['0 10 * * 1,5']
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NoReturn
from zoneinfo import ZoneInfo

from cronsim import CronSim

from odin import config
from odin.errors import ScheduleError
from odin.schedule.model import Schedule
from odin.schedule.parser import Parser, Token
from odin.schedule.rules import CronRule
from odin.schedule.wall import load_zone, zone_names
from odin.schedule.words import suggest

__all__ = ["Schedule", "ScheduleError", "parse"]

CRON_PREFIX = "cron:"
ZONE_EXPECTED = "an IANA time zone like Europe/Dublin"
CRON_PROBE_START = datetime(2000, 1, 1, tzinfo=UTC)


def parse(text: str, default_tz: str = "UTC") -> Schedule:
    """Parse an English schedule; ``in ZONE`` in the text overrides ``default_tz``."""
    if not isinstance(text, str):
        raise ScheduleError("a schedule must be text", text="", expected="text")
    if len(text) > config.MAX_SCHEDULE_CHARS:
        limit = config.MAX_SCHEDULE_CHARS
        raise ScheduleError(
            f"the schedule is longer than {limit} characters",
            text=text[:limit],
            position=limit,
            expected=f"at most {limit} characters",
        )
    try:
        return _parse(text, default_tz)
    except ScheduleError:
        raise
    except RecursionError as error:  # pragma: no cover - the grammar does not recurse
        raise ScheduleError("the schedule is too complex", text=text) from error


def _parse(text: str, default_tz: str) -> Schedule:
    if text.lstrip().lower().startswith(CRON_PREFIX):
        return _parse_cron(text, default_tz)
    parsed = Parser(text).schedule()
    zone_name = default_tz if parsed.zone is None else parsed.zone.text
    timezone, zone = _zone(text, zone_name, parsed.zone)
    return Schedule(text=text, timezone=timezone, rules=parsed.rules, zone=zone)


def _zone(text: str, name: str, token: Token | None) -> tuple[str, ZoneInfo]:
    zone = load_zone(name)
    if zone is None:
        position = len(text) if token is None else token.pos
        hint = suggest(name, sorted(zone_names())) if name.isprintable() else None
        where = "" if token is None else f" (position {position})"
        message = f'unknown time zone "{name[:64]}"{where}: expected {ZONE_EXPECTED}'
        if hint is not None:
            message += f'; did you mean "{hint}"?'
        raise ScheduleError(
            message,
            text=text,
            position=position,
            expected=ZONE_EXPECTED,
            suggestion=hint,
        )
    return zone.key, zone


def _parse_cron(text: str, default_tz: str) -> Schedule:
    """``cron: <5 or 6 fields> [in ZONE]``, checked by cronsim to fire at least once."""
    start = text.lower().index(CRON_PREFIX) + len(CRON_PREFIX)
    fields = text[start:].split()
    zone_token = None
    if len(fields) >= 2 and fields[-2].lower() == "in":
        zone_token = Token(fields[-1], fields[-1].lower(), text.rindex(fields[-1]))
        fields = fields[:-2]
    expression = " ".join(fields)
    if len(fields) not in (5, 6):
        _cron_error(text, start, f"a cron expression has 5 or 6 fields, not {len(fields)}")
    try:
        next(CronSim(expression, CRON_PROBE_START))
    except StopIteration:
        _cron_error(text, start, "this cron expression never fires")
    except Exception as error:  # cronsim raises several types on bad fields
        _cron_error(text, start, f"invalid cron expression ({error})")
    zone_name = default_tz if zone_token is None else zone_token.text
    timezone, zone = _zone(text, zone_name, zone_token)
    rule = CronRule(expression)
    return Schedule(text=text, timezone=timezone, rules=(rule,), zone=zone)


def _cron_error(text: str, position: int, message: str) -> NoReturn:
    expected = '5 or 6 cron fields, like "*/5 * * * *"'
    raise ScheduleError(
        f"{message} (position {position}): expected {expected}",
        text=text,
        position=position,
        expected=expected,
    )
