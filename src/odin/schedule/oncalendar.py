"""systemd ``OnCalendar=`` text → ``OnCalendarRule``, read the way systemd reads it.

Accepted: the shorthands (``minutely``, ``hourly``, ``daily``, ``weekly``,
``monthly``, ``quarterly``, ``semiannually``, ``yearly``, ``annually``) and
``[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]] [ZONE]``. Weekdays are
names joined by ``,`` and ``..``; every number field is ``*`` or a comma list of
``N``, ``N..M``, ``N/STEP`` and ``N..M/STEP``; ``~`` before the day counts from the
month's end; the zone is ``UTC`` or an IANA name (or Odin's ``in ZONE``). The
checks are systemd's (``src/shared/calendarspec.c``), so what systemd refuses,
Odin refuses too. Odin also refuses what it cannot keep: a fraction of a second,
and an event that never fires (``*-02-30``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn
from zoneinfo import ZoneInfo

from odin.errors import ScheduleError
from odin.schedule.parser import Token
from odin.schedule.systemd import MAX_YEAR, MIN_YEAR, DateFields, OnCalendarRule, TimeGrid
from odin.schedule.wall import load_zone

EXPECTED = 'a systemd calendar event like "Mon..Fri *-*-* 09:00"'
SHORTHANDS = {
    "minutely": "*-*-* *:*:00",
    "hourly": "*-*-* *:00:00",
    "daily": "*-*-* 00:00:00",
    "weekly": "Mon *-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00",
    "semiannually": "*-01,07-01 00:00:00",
    "semi-annually": "*-01,07-01 00:00:00",
    "biannually": "*-01,07-01 00:00:00",
    "bi-annually": "*-01,07-01 00:00:00",
    "yearly": "*-01-01 00:00:00",
    "annually": "*-01-01 00:00:00",
    "anually": "*-01-01 00:00:00",  # systemd keeps this misspelling for old unit files
}
WEEKDAY_NAMES = tuple(
    (name, number)
    for number, short in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    for name in (
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[number],
        short,
    )
)
AFTER_WEEKDAY = ("", "-", ".", ",", " ")
AFTER_NUMBER = ("", " ", ",", "-", "~", ":")
FROM_END_MAX = 28  # "~" counts at most 28 days back, so that every month has the day
MAX_DIGITS = 9
PROBE_START = datetime(1969, 12, 31, tzinfo=UTC)
_ODIN_ZONE = re.compile(r"\s+in\s+(\S+)\s*\Z", re.IGNORECASE)
_MARKS = re.compile(r"\.\.|~|\*|/\d|(?:\A|\s)\d+-\d+", re.ASCII)


@dataclass(frozen=True)
class Item:
    """One element of a component: ``start``, ``start..stop``, with an optional ``/step``."""

    start: int
    stop: int | None
    step: int
    pos: int
    text: str


Chain = tuple[Item, ...] | None  # None is "*"


def looks_like_systemd(text: str) -> bool:
    """True when the text has a mark only systemd uses (for choosing which error to show)."""
    words = text.lower().split()
    return bool(_MARKS.search(text)) or bool(words and words[0] in SHORTHANDS)


def parse_event(text: str) -> tuple[OnCalendarRule, Token | None]:
    """The rule and the zone token (if the text names a zone); ScheduleError if not systemd's."""
    body, zone = _split_zone(text)
    start = len(text) - len(text.lstrip())
    if body <= start:
        _fail(text, start, "", EXPECTED)
    shorthand = SHORTHANDS.get(text[start:body].lower())
    if shorthand is not None:
        rule = _EventParser(shorthand, 0, len(shorthand)).event()
    else:
        rule = _EventParser(text, start, body).event()
    if rule.next_after(PROBE_START, PROBE_START.timestamp(), ZoneInfo("UTC")) is None:
        raise ScheduleError(
            f'the calendar event "{text[start:body]}" never fires (position {start}): '
            f"expected {EXPECTED}",
            text=text,
            position=start,
            expected=EXPECTED,
        )
    return rule, zone


def _split_zone(text: str) -> tuple[int, Token | None]:
    """Where the event ends, and its zone: Odin's ``in ZONE``, or systemd's trailing zone."""
    body = len(text.rstrip())
    odin = _ODIN_ZONE.search(text)
    if odin is not None:
        name = odin.group(1)
        return odin.start(), Token(name, name.lower(), odin.start(1))
    space = text.rfind(" ", 0, body)
    last = text[space + 1 : body]
    if space > 0 and text[:space].strip() and (last.upper() == "UTC" or load_zone(last)):
        name = "UTC" if last.upper() == "UTC" else last
        return space, Token(name, name.lower(), space + 1)
    return body, None


def _fail(text: str, position: int, word: str, expected: str) -> NoReturn:
    if word:
        message = f'unexpected "{word[:40]}" at position {position}: expected {expected}'
    else:
        message = f"the calendar event ends too early (position {position}): expected {expected}"
    raise ScheduleError(message, text=text, position=position, expected=expected)


class _EventParser:
    """One pass over ``text[start:end]``, as systemd's parser goes."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self.text, self.i, self.end = text, start, end

    def peek(self, size: int = 1) -> str:
        return self.text[self.i : min(self.i + size, self.end)]

    def fail(self, expected: str) -> NoReturn:
        rest = self.text[self.i : self.end].split(" ", 1)[0]
        _fail(self.text, self.i, rest, expected)

    def invalid(self, item: Item, message: str, expected: str) -> NoReturn:
        raise ScheduleError(
            f'"{item.text}" {message} (position {item.pos}): expected {expected}',
            text=self.text,
            position=item.pos,
            expected=expected,
        )

    def skip_spaces(self) -> None:
        while self.peek() == " ":
            self.i += 1

    # -- the three parts -------------------------------------------------------------------

    def event(self) -> OnCalendarRule:
        weekdays = self.weekdays()
        dates = self.date(weekdays)
        times = self.time()
        if self.i < self.end:
            self.fail("the end of the calendar event")
        return OnCalendarRule(dates, times)

    def weekdays(self) -> tuple[int, ...] | None:
        chosen: set[int] = set()
        opened: int | None = None
        first = True
        while True:
            number = self.weekday_name()
            if number is None:
                if first:
                    return None
                self.fail("a weekday like Mon or Friday")
            if opened is not None:
                if opened > number:
                    self.fail("a weekday range that goes forwards, like Mon..Fri")
                chosen.update(range(opened, number))
            chosen.add(number)
            if self.peek() in ("", " "):
                break
            if self.peek() == ".":
                if opened is not None or self.peek(2) != "..":
                    self.fail('".." between two weekdays')
                opened, self.i = number, self.i + 2
            elif self.peek() == "-":  # systemd still takes "Mon-Fri"
                if opened is not None:
                    self.fail("one weekday range at a time")
                opened, self.i = number, self.i + 1
            else:  # ","
                opened, self.i = None, self.i + 1
            if self.peek() in ("", " "):
                if opened is not None:
                    self.fail("the weekday that ends the range")
                break
            first = False
        self.skip_spaces()
        return None if len(chosen) == 7 else tuple(sorted(chosen))

    def weekday_name(self) -> int | None:
        rest = self.text[self.i : self.end].lower()
        for name, number in WEEKDAY_NAMES:
            if rest.startswith(name):
                if rest[len(name) : len(name) + 1] not in AFTER_WEEKDAY:
                    self.fail("a weekday like Mon or Friday")
                self.i += len(name)
                return number
        return None

    def date(self, weekdays: tuple[int, ...] | None) -> DateFields:
        if self.i >= self.end:
            return DateFields(weekdays=weekdays)
        begin = self.i
        first = self.chain()
        if self.peek() in ("", ":"):  # it was the time, not a date
            self.i = begin
            return DateFields(weekdays=weekdays)
        from_end = self.separator(False)
        second = self.chain()
        if self.peek() in ("", " "):
            self.skip_spaces()
            return self.date_fields(None, first, second, from_end, weekdays)
        if from_end:
            self.fail("a space after the day")
        from_end = self.separator(False)
        third = self.chain()
        if self.peek() not in ("", " "):
            self.fail("a space after the date")
        self.skip_spaces()
        return self.date_fields(first, second, third, from_end, weekdays)

    def separator(self, from_end: bool) -> bool:
        mark = self.peek()
        if mark not in ("-", "~"):
            self.fail('"-" (or "~" before a day counted from the end of the month)')
        self.i += 1
        return from_end or mark == "~"

    def date_fields(
        self,
        years: Chain,
        months: Chain,
        days: Chain,
        from_end: bool,
        weekdays: tuple[int, ...] | None,
    ) -> DateFields:
        year_values = None
        if years is not None:
            year_values = self.values(_two_digit_years(years), MIN_YEAR, MAX_YEAR, "a year")
        month_values = None if months is None else self.values(months, 1, 12, "a month")
        day_values = None
        if days is not None:
            top = FROM_END_MAX if from_end else 31
            day_values = self.values(days, 1, top, "a day of the month", from_end=from_end)
        if month_values == tuple(range(1, 13)):
            month_values = None
        if day_values == tuple(range(1, 32)):
            day_values = None
        return DateFields(
            year_values, month_values, day_values, from_end and days is not None, weekdays
        )

    def time(self) -> TimeGrid:
        if self.i >= self.end:
            return TimeGrid((0,), (0,), (0,))
        hours = self.chain()
        self.expect_colon()
        minutes = self.chain()
        seconds: Chain = (Item(0, None, 0, self.i, "0"),)
        if self.i < self.end:
            self.expect_colon()
            seconds = self.chain(seconds=True)
        return TimeGrid(
            self.values(hours, 0, 23, "an hour", every=True),
            self.values(minutes, 0, 59, "a minute", every=True),
            self.values(seconds, 0, 59, "a second", every=True),
        )

    def expect_colon(self) -> None:
        if self.peek() != ":":
            self.fail('":" in a time like 09:30')
        self.i += 1

    # -- components ------------------------------------------------------------------------

    def chain(self, seconds: bool = False) -> Chain:
        if self.peek() == "*":
            self.i += 1
            return None
        items = []
        while True:
            begin = self.i
            start = self.number(seconds)
            stop, step = None, 0
            if self.peek(2) == "..":
                self.i += 2
                stop, step = self.number(seconds), 1
            if self.peek() == "/":
                self.i += 1
                step = self.number(seconds)
                if step == 0:
                    self.i -= 1
                    self.fail("a step of at least 1")
            elif seconds and stop is not None and stop <= start:
                self.i = begin
                self.fail("a range of seconds that goes forwards, like 10..20")
            if self.peek() not in AFTER_NUMBER:
                self.fail("a number, a range like 1..5 or a step like 0/15")
            items.append(Item(start, stop, step, begin, self.text[begin : self.i]))
            if self.peek() != ",":
                return tuple(items)
            self.i += 1

    def number(self, seconds: bool) -> int:
        begin = self.i
        while self.peek().isdigit() and self.peek().isascii():
            self.i += 1
        digits = self.text[begin : self.i]
        if not digits:
            self.fail("a number, a range like 1..5 or a step like 0/15")
        if len(digits) > MAX_DIGITS:
            self.i = begin
            self.fail(f"a number of at most {MAX_DIGITS} digits")
        if seconds and self.peek() == "." and self.peek(2) != "..":
            self.i += 1
            fraction = self.i
            while self.peek().isdigit() and self.peek().isascii():
                self.i += 1
            if self.i == fraction or self.text[fraction : self.i].strip("0"):
                self.i = begin
                self.fail("whole seconds (Odin runs jobs to the second)")
        return int(digits)

    def values(
        self,
        chain: Chain,
        low: int,
        high: int,
        what: str,
        *,
        from_end: bool = False,
        every: bool = False,
    ) -> tuple[int, ...]:
        """The allowed values of a component, after systemd's own checks."""
        if chain is None:
            return tuple(range(low, high + 1)) if every else ()
        expected = f"{what} from {low} to {high}"
        found: set[int] = set()
        for item in chain:
            start, stop, step = item.start, item.stop, item.step
            if stop is not None and stop > start and step > 0:
                stop -= (stop - start) % step  # systemd trims a range to whole steps...
            if stop is not None and (stop == start or start < stop < start + step):
                stop, step = None, 0  # ...and a range that holds one value is that value
            if not low <= start <= high or (stop is not None and not low <= stop <= high):
                self.invalid(item, "is out of range", expected)
            if step > high - low:
                self.invalid(item, "has too long a step", expected)
            if stop is not None:
                if start + step > stop:
                    self.invalid(item, "is not a range that goes forwards", expected)
                found.update(range(start, stop + 1, step))
            elif step == 0:
                found.add(start)
            elif from_end:
                if start - step < low:
                    self.invalid(item, "steps past the end of the month", expected)
                found.update(range(start, low - 1, -step))
            else:
                if start + step > high:
                    self.invalid(item, "steps past the largest value", expected)
                found.update(range(start, high + 1, step))
        return tuple(sorted(found))


def _two_digit_years(chain: tuple[Item, ...]) -> tuple[Item, ...]:
    """systemd reads 25 as 2025 and 89 as 1989."""

    def fix(year: int) -> int:
        return year + 2000 if year < 70 else year + 1900 if year < 100 else year

    return tuple(
        Item(fix(i.start), None if i.stop is None else fix(i.stop), i.step, i.pos, i.text)
        for i in chain
    )
