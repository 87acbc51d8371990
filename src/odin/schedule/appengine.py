"""App Engine cron text (cron.yaml's ``schedule:``) → a rule, read as App Engine reads it.

Grammar (App Engine's "groc", case-insensitive; ``[]`` optional, ``|`` choice)::

    schedule   := (interval | specific) ["in" IANA-NAME]
    interval   := "every" N ("hours" | "minutes" | "mins") "synchronized"
    specific   := days ["of" months] HH:MM          (a list of numbers needs "of")
    days       := ("every" | ordinal ("," ordinal)*) ("day" | weekday ("," weekday)*)
                | N ("," N)*                        (days of the month, 1 to 31)
    ordinal    := "1st" | "first" | ... | "5th" | "fifth"
    months     := "month" | month ("," month)* | "quarter"
                | quarter-ordinal ("," quarter-ordinal)* "month" "of" "quarter"

An ordinal before weekdays picks those weekdays' places in the month
(``1st,3rd mon,wed``: the first and third Monday and Wednesday); before ``day``
it picks days of the month (``2nd day``: the 2nd). ``every N hours`` and ``every
N minutes``, with or without ``from HH:MM to HH:MM``, are Odin's English too and
English reads them first (``odin.schedule``), so only ``synchronized`` is read here.

The parser is tried after English fails, so it sees only texts English cannot
read; whatever can be said in English (a form on every month) becomes the
English rule, and the rest an ``AppEngineRule`` or a ``SynchronizedRule``.
"""

from __future__ import annotations

import itertools
import re

from odin.schedule import words
from odin.schedule.appengine_rules import (
    ALL_MONTHS,
    ALL_ORDINALS,
    ALL_WEEKDAYS,
    AppEngineRule,
    SynchronizedRule,
)
from odin.schedule.days import DaySpec, EveryDay, MonthDays, NthWeekdays, Weekdays
from odin.schedule.parser import Parser, Token, tokenize
from odin.schedule.rules import CalendarRule, Rule
from odin.schedule.wall import SECONDS_PER_DAY

EXPECTED = (
    'an App Engine schedule like "every monday 09:00", "1st,3rd mon of sep 17:00", '
    '"1,15 of month 09:00" or "every 2 hours synchronized"'
)
TIME = "a time like 09:00 (App Engine's HH:MM)"
ORDINAL = "first, second, third, fourth or fifth (or 1st to 5th)"
WEEKDAY = 'a weekday like mon or monday, or "day"'
MONTHS = 'a month like jan or january, "month" or "quarter"'
UNIT = "hours or minutes"
ORDINALS = {word: nth for word, nth in words.NTH_WORDS.items() if nth != words.LAST_NTH}
QUARTER_ORDINALS = {word: nth for word, nth in ORDINALS.items() if nth <= 3}
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)", re.ASCII)
_TIME_SHAPE = re.compile(r"\d{1,2}:\d{2}", re.ASCII)
_NUMBER = re.compile(r"\d{1,9}", re.ASCII)
_DAYS_OF = re.compile(r"\s*\d{1,9}(?:\s*,\s*\d{1,9})*\s+of(?:\s|\Z)", re.ASCII | re.IGNORECASE)


def parse_appengine(text: str) -> tuple[Rule, Token | None]:
    """The rule and the ``in ZONE`` token, if any; ScheduleError if App Engine would refuse it."""
    return _AppEngineParser(text).read()


def looks_like_appengine(text: str) -> bool:
    """True when the text has a mark only App Engine uses (for choosing which error to show)."""
    if _DAYS_OF.match(text):
        return True
    tokens = [token.word for token in tokenize(text)]
    if "synchronized" in tokens or "quarter" in tokens:
        return True
    days = {*words.SINGLE_WEEKDAYS, "day"}
    return any(
        a in days and b == "of" and c in words.MONTHS
        for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False)
    )


class _AppEngineParser(Parser):
    """One pass over the tokens, with the English parser's helpers (its grammar goes unused)."""

    def read(self) -> tuple[Rule, Token | None]:
        if not self.tokens:
            self.fail(EXPECTED)
        counted = bool(_NUMBER.fullmatch(self.word(1))) or self.word(1) in words.UNITS
        interval = self.word() == "every" and counted and self.word(1) != "day"
        rule = self.synchronized() if interval else self.specific()
        zone = None
        if self.take_if("in"):
            zone = self.take("a time zone like Europe/Dublin")
        if self.peek() is not None:
            self.fail('"in" a time zone, or the end')
        return rule, zone

    def synchronized(self) -> Rule:
        self.take('"every"')
        count_token = self.peek()
        count = int(self.take("a number").word) if _NUMBER.fullmatch(self.word()) else 1
        unit = self.take(UNIT)
        if words.UNITS.get(unit.word) not in (60, 3600):
            self.fail(UNIT, unit)
        self.expect('"synchronized" (Odin reads "every N hours" and "from ... to")', "synchronized")
        period = count * words.UNITS[unit.word]
        if count < 1 or period > SECONDS_PER_DAY or SECONDS_PER_DAY % period:
            assert count_token is not None
            self.invalid(
                count_token,
                "synchronized needs an interval that divides 24 hours evenly",
                "an interval like 5 minutes, 90 minutes or 2 hours",
            )
        return SynchronizedRule(period)

    def specific(self) -> Rule:
        first = self.peek()
        monthdays: frozenset[int] = frozenset()
        ordinals, weekdays = ALL_ORDINALS, ALL_WEEKDAYS
        if _NUMBER.fullmatch(self.word()):
            monthdays = self.monthdays()
            self.expect('"of" and the months, like "of month"', "of")
            months = self.months()
        else:
            if not self.take_if("every"):
                ordinals = self.ordinals()
            if self.take_if("day"):
                if ordinals != ALL_ORDINALS:  # "2nd day" is the 2nd of the month
                    monthdays, ordinals = ordinals, ALL_ORDINALS
            else:
                weekdays = self.weekday_list()
            months = self.months() if self.take_if("of") else ALL_MONTHS
        minute = self.hh_mm()
        if monthdays and not any(d <= words.MONTH_LENGTHS[m] for d in monthdays for m in months):
            assert first is not None
            self.invalid(first, "none of these days exists in these months", "a day they have")
        return _rule(months, minute, monthdays, ordinals, weekdays)

    def ordinals(self) -> frozenset[int]:
        chosen: set[int] = set()
        while True:
            token = self.take(ORDINAL)
            if token.word not in ORDINALS:
                self.fail(ORDINAL if chosen else EXPECTED, token)
            chosen.add(ORDINALS[token.word])
            if not self.take_if(","):
                return frozenset(chosen)

    def weekday_list(self) -> frozenset[int]:
        chosen: set[int] = set()
        while True:
            token = self.take(WEEKDAY)
            if token.word not in words.SINGLE_WEEKDAYS:
                self.fail(WEEKDAY, token)
            chosen.add(words.SINGLE_WEEKDAYS[token.word])
            if not self.take_if(","):
                return frozenset(chosen)

    def monthdays(self) -> frozenset[int]:
        chosen: set[int] = set()
        while True:
            token = self.take("a day of the month, 1 to 31")
            if not _NUMBER.fullmatch(token.word):
                self.fail("a day of the month, 1 to 31", token)
            if not 1 <= int(token.word) <= words.MONTH_LENGTHS[1]:
                self.invalid(token, f'"{token.text}" is not a day of the month', "1 to 31")
            chosen.add(int(token.word))
            if not self.take_if(","):
                return frozenset(chosen)

    def months(self) -> frozenset[int]:
        if self.take_if("month"):
            return ALL_MONTHS
        if self.take_if("quarter"):
            return frozenset({1, 4, 7, 10})
        if self.word() in QUARTER_ORDINALS:
            return self.months_of_quarter()
        chosen: set[int] = set()
        while True:
            token = self.take(MONTHS)
            if token.word not in words.MONTHS:
                self.fail(MONTHS, token)
            chosen.add(words.MONTHS[token.word])
            if not self.take_if(","):
                return frozenset(chosen)

    def months_of_quarter(self) -> frozenset[int]:
        """``2nd,3rd month of quarter``: those months of each quarter."""
        chosen: set[int] = set()
        while True:
            token = self.take("first, second or third")
            if token.word not in QUARTER_ORDINALS:
                self.fail("first, second or third", token)
            chosen.update(range(QUARTER_ORDINALS[token.word], 13, 3))
            if not self.take_if(","):
                break
        self.expect('"month of quarter"', "month")
        self.expect('"of quarter"', "of")
        self.expect('"quarter"', "quarter")
        return frozenset(chosen)

    def hh_mm(self) -> int:
        """App Engine's ``HH:MM`` (or ``H:MM``), in minutes of the day."""
        token = self.take(TIME)
        match = _TIME.fullmatch(token.word)
        if match is None:
            if _TIME_SHAPE.fullmatch(token.word):
                self.invalid(token, f'"{token.text}" is not a time of day', "00:00 to 23:59")
            self.fail(TIME, token)
        return int(match.group(1)) * 60 + int(match.group(2))


def _rule(
    months: frozenset[int],
    minute: int,
    monthdays: frozenset[int],
    ordinals: frozenset[int],
    weekdays: frozenset[int],
) -> Rule:
    """The English rule when English can say it (every month), else an ``AppEngineRule``."""
    if months != ALL_MONTHS:
        return AppEngineRule(months, minute, monthdays, ordinals, weekdays)
    days: DaySpec
    if monthdays:
        days = MonthDays(monthdays)
    elif ordinals != ALL_ORDINALS:
        days = NthWeekdays(frozenset(itertools.product(ordinals, weekdays)))
    elif weekdays != ALL_WEEKDAYS:
        days = Weekdays(weekdays)
    else:
        days = EveryDay()
    return CalendarRule(days, (minute,))
