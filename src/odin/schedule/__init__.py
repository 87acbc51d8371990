"""Odin's schedules: text → ``Schedule`` → ``next_after(t)``.

Four syntaxes, told apart without ambiguity (``docs/schedules.md``):

- cron, when the text starts with ``cron:`` or ``@``, or its first two fields
  are made of digits, ``*``, ``/``, ``,`` and ``-`` (``odin.schedule.cron``);
- Odin's English, for any other text it reads (``odin.schedule.parser``);
- App Engine cron, for what English cannot read (``odin.schedule.appengine``);
- a systemd calendar event, for what neither reads (``odin.schedule.oncalendar``).

App Engine and systemd never read the same text: App Engine's starts with
``every``, an ordinal or a day of the month and ``of``; systemd's with a weekday,
a date or a time.

Any of them may end in ``, spread over DURATION`` (``odin.schedule.spread``), and
several, joined by ``;``, are a list whose fire times are the union of theirs.

Pure: no clock, no I/O of ours (zone data is read by ``zoneinfo``), no asyncio.
``parse`` raises ``ScheduleError`` and nothing else, whatever the input.

    >>> s = parse("every Monday and Friday at 10:00", "Europe/Dublin")
    >>> s.describe()
    'every Monday and Friday at 10:00'
    >>> s.cron()
    ['0 10 * * 1,5']
    >>> parse("*/15 9-17 * * 1-5").explain()
    'every 15th minute from 09:00 through 17:59 on Monday through Friday'
"""

from __future__ import annotations

from enum import Enum
from zoneinfo import ZoneInfo

from odin import config
from odin.errors import ScheduleError
from odin.schedule.appengine import looks_like_appengine, parse_appengine
from odin.schedule.cron import is_cron, parse_cron
from odin.schedule.model import LIST_SEPARATOR, Schedule
from odin.schedule.oncalendar import looks_like_systemd, parse_event
from odin.schedule.parser import Parser, Token
from odin.schedule.rules import Rule
from odin.schedule.spread import split_spread
from odin.schedule.wall import load_zone, zone_names
from odin.schedule.words import suggest

__all__ = ["Schedule", "ScheduleError", "Syntax", "parse", "syntax_of"]

ZONE_EXPECTED = "an IANA time zone like Europe/Dublin"


class Syntax(Enum):
    """The four ways to write a schedule."""

    ENGLISH = "english"
    CRON = "cron"
    SYSTEMD = "systemd"
    APPENGINE = "appengine"


def parse(text: str, default_tz: str = "UTC") -> Schedule:
    """Parse a schedule in any syntax; a zone named in the text overrides ``default_tz``."""
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


def syntax_of(text: str) -> Syntax:
    """Which syntax reads ``text`` (the first of a list); ScheduleError when none does."""
    first = text.split(LIST_SEPARATOR, 1)[0]
    return _read(split_spread(first)[0])[0]


def _parse(text: str, default_tz: str) -> Schedule:
    if LIST_SEPARATOR in text:
        return _parse_list(text, default_tz)
    core, spread = split_spread(text)
    _, rules, zone_token = _read(core)
    zone_name = default_tz if zone_token is None else zone_token.text
    timezone, zone = _zone(core, zone_name, zone_token)
    return Schedule(text=text, timezone=timezone, rules=rules, zone=zone, spread_s=spread)


def _parse_list(text: str, default_tz: str) -> Schedule:
    """Schedules joined by ``;``, each in any syntax; an error names the one at fault."""
    entries = text.split(LIST_SEPARATOR)
    parts: list[Schedule] = []
    start = 0
    for number, entry in enumerate(entries, 1):
        where = f"schedule {number} of {len(entries)}"
        try:
            if not entry.strip():
                expected = "a schedule between the semicolons"
                raise ScheduleError(
                    f"{where} is empty (position {start}): expected {expected}",
                    position=0,
                    expected=expected,
                )
            part = _parse(entry.strip(), default_tz)
            if part.is_never:
                expected = '"never" alone, or schedules that fire'
                raise ScheduleError(
                    f'{where} is "never", which cannot be one of several: expected {expected}',
                    expected=expected,
                )
        except ScheduleError as error:
            at = start + len(entry) - len(entry.lstrip()) + error.position
            message = error.message if error.message.startswith(where) else f"{where}: {error}"
            raise ScheduleError(
                message,
                text=text,
                position=at,
                expected=error.expected,
                suggestion=error.suggestion,
            ) from None
        parts.append(part)
        start += len(entry) + len(LIST_SEPARATOR)
    zones = {part.timezone for part in parts}
    timezone, zone = (
        (parts[0].timezone, parts[0].zone) if len(zones) == 1 else _zone(text, default_tz, None)
    )
    return Schedule(text=text, timezone=timezone, rules=(), zone=zone, parts=tuple(parts))


def _read(text: str) -> tuple[Syntax, tuple[Rule, ...], Token | None]:
    """Cron by its shape; else English if English reads it; else App Engine; else systemd."""
    if is_cron(text):
        rule, zone_token = parse_cron(text)
        return Syntax.CRON, (rule,), zone_token
    try:
        parsed = Parser(text).schedule()
    except ScheduleError as english_error:
        return _read_not_english(text, english_error)
    return Syntax.ENGLISH, parsed.rules, parsed.zone


def _read_not_english(
    text: str, english_error: ScheduleError
) -> tuple[Syntax, tuple[Rule, ...], Token | None]:
    """App Engine cron or a systemd calendar event; else the error of the syntax it looks like."""
    try:
        rule, zone_token = parse_appengine(text)
    except ScheduleError as appengine_error:
        try:
            event, zone_token = parse_event(text)
        except ScheduleError as systemd_error:
            if looks_like_appengine(text):
                raise appengine_error from None
            if looks_like_systemd(text):
                raise systemd_error from None
            raise english_error from None
        return Syntax.SYSTEMD, (event,), zone_token
    return Syntax.APPENGINE, (rule,), zone_token


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
