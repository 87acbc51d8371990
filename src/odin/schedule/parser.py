"""English text → rules, by recursive descent over whitespace/comma-separated words.

Grammar (case-insensitive; ``[]`` optional, ``|`` choice)::

    schedule := "never" [zone] | rule (("and" | ",") rule)* [zone]
    zone     := "in" IANA-NAME
    rule     := "at" times [days] | ["every" | "each" | "on"] ["the"] body
    body     := N unit [filters] | "other" unit | unit [filters] | "hourly" [filters]
              | (N "hours" | "hour" | "hourly") past [filters] | days [["at"] times]
    past     := "at" OFFSET (("," | "and") OFFSET)*          OFFSET is :MM or :MM:SS
    filters  := window [on] | on [window]
    on       := "on" ["the" | "every" | "each"] days
    days     := "day" | "everyday" | "daily" | N "days" | weekday-list | month-days
              | year-dates | nth-weekdays
    nth-weekdays := nth (("," | "and") nth)* WEEKDAY (...)* ["of" ["the" | "every"] "month"]
    nth      := "first" | "second" | "third" | "fourth" | "fifth" | "1st" ... "5th" | "last"
    window   := "between" time "and" time | "from" time ("to" | "until") time
    times    := time (("," | "and") time)*                  time is HH[:MM[:SS]] [am|pm]

"and" is read three ways: inside a list (days, times) when the word after it
continues the list, inside a window after "between", and otherwise between
rules. Lists are greedy, so "every Monday and Friday at 10:00" is one rule and
"every Monday at 09:30 and every Friday at 17:00" two. Cron and systemd calendar
events are read elsewhere (``odin.schedule.cron``, ``odin.schedule.oncalendar``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from odin import config
from odin.errors import ScheduleError
from odin.schedule import words
from odin.schedule.clock import ClockRule, HourlyRule
from odin.schedule.days import (
    DaySpec,
    EveryDay,
    EveryNDays,
    MonthDays,
    NthWeekdays,
    Weekdays,
    YearDates,
)
from odin.schedule.rules import CalendarRule, IntervalRule, Rule, Window, describe_period

_CHUNK = re.compile(r",|[^\s,]+")
_TIME = re.compile(r"(\d{1,2})(?::(\d{2})(?::(\d{2}))?)?(am|pm|a\.m\.|p\.m\.)?", re.ASCII)
_OFFSET = re.compile(r":(\d{2})(?::(\d{2}))?", re.ASCII)
_ORDINAL = re.compile(r"(\d{1,2})(?:st|nd|rd|th)", re.ASCII)
_NUMBER = re.compile(r"\d{1,9}", re.ASCII)
_MERIDIEM = ("am", "pm", "a.m.", "p.m.")
_DAY_UNIT = 86400

RULE_START = (
    "an interval (every 10 minutes), a day (Monday, 23rd, January 4th) or a time (at 09:00)"
)
TIME = "a time like 09:30, 6pm, noon or midnight"
OFFSET = "minutes past the hour, like :30 or :30:15"
NTH = "first, second, third, fourth, fifth or last"


@dataclass(frozen=True)
class Token:
    text: str  # as typed
    word: str  # lower-cased
    pos: int


@dataclass(frozen=True)
class Parsed:
    rules: tuple[Rule, ...]
    zone: Token | None


def tokenize(text: str) -> list[Token]:
    return [Token(m.group(), m.group().lower(), m.start()) for m in _CHUNK.finditer(text)]


class Parser:
    """One pass over the tokens; every failure is a ScheduleError naming a token."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers -------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.i + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def word(self, ahead: int = 0) -> str:
        token = self.peek(ahead)
        return "" if token is None else token.word

    def take(self, expected: str) -> Token:
        token = self.peek()
        if token is None:
            self.fail(expected)
        self.i += 1
        return token

    def take_if(self, *choices: str) -> bool:
        if self.word() in choices:
            self.i += 1
            return True
        return False

    def expect(self, expected: str, *choices: str) -> None:
        if not self.take_if(*choices):
            self.fail(expected)

    def fail(self, expected: str, token: Token | None = None) -> NoReturn:
        token = token or self.peek()
        if token is None:
            raise ScheduleError(
                f"the schedule ends too early (position {len(self.text)}): expected {expected}",
                text=self.text,
                position=len(self.text),
                expected=expected,
            )
        hint = words.suggest(token.word) if token.word.isalpha() else None
        message = f'unexpected "{token.text[:40]}" at position {token.pos}: expected {expected}'
        if hint is not None and hint.lower() != token.word:
            message += f'; did you mean "{hint}"?'
        else:
            hint = None
        raise ScheduleError(
            message, text=self.text, position=token.pos, expected=expected, suggestion=hint
        )

    def invalid(self, token: Token, message: str, expected: str) -> NoReturn:
        raise ScheduleError(
            f"{message} (position {token.pos}): expected {expected}",
            text=self.text,
            position=token.pos,
            expected=expected,
        )

    def continues(self, starts_item: str) -> bool:
        """Step over ``,`` / ``and`` / ``the`` if the next word starts a list item."""
        index = self.i
        for glue in (",", "and"):
            if self.word(index - self.i) == glue:
                index += 1
        if index == self.i:
            return False
        start = index + (self.word(index - self.i) == "the")
        if self._is_item(starts_item, start - self.i):
            self.i = index
            return True
        return False

    def _is_item(self, kind: str, ahead: int) -> bool:
        word = self.word(ahead)
        if kind == "nth":
            return self._nth_run(ahead)
        if kind == "offset":
            return bool(_OFFSET.fullmatch(word))
        if kind == "weekday":
            return word in words.WEEKDAYS
        if kind == "monthday":
            return word == "last" or bool(_ORDINAL.fullmatch(word))
        if kind == "date":
            return word in words.MONTHS or bool(_ORDINAL.fullmatch(word))
        bare_hour = len(word) <= 2 and word.isdigit() and self.word(ahead + 1) not in words.UNITS
        return bare_hour or self._is_time(ahead)

    def _is_time(self, ahead: int) -> bool:
        word = self.word(ahead)
        if word in ("noon", "midnight"):
            return True
        match = _TIME.fullmatch(word)
        if match is None:
            return False
        clock_like = match.group(2) is not None or match.group(4) is not None
        return clock_like or self.word(ahead + 1) in _MERIDIEM

    def _nth_run(self, ahead: int) -> bool:
        """Do the words from ``ahead`` read "first [and third] Monday"?"""
        index = ahead
        if self.word(index) not in words.NTH_WORDS:
            return False
        while True:
            index += 1
            if self.word(index) in words.SINGLE_WEEKDAYS:
                return True
            if self.word(index) not in (",", "and"):
                return False
            index += self.word(index + 1) == "and"  # ", and"
            if self.word(index + 1) not in words.NTH_WORDS:
                return False
            index += 1

    # -- grammar ---------------------------------------------------------------------------

    def schedule(self) -> Parsed:
        if not self.tokens:
            expected = 'a schedule such as "every day at 09:00" or "never"'
            raise ScheduleError(
                f"the schedule is empty (position 0): expected {expected}",
                text=self.text,
                expected=expected,
            )
        rules: list[Rule] = []
        if not self.take_if("never"):
            rules.append(self.rule())
            while self.take_if(",", "and"):
                self.take_if("and")
                rules.append(self.rule())
        zone = None
        if self.take_if("in"):
            zone = self.take("a time zone like Europe/Dublin")
        if self.peek() is not None:
            self.fail('"and" another rule, "in" a time zone, or the end')
        return Parsed(tuple(rules), zone)

    def rule(self) -> Rule:
        if self.take_if("at"):
            times = self.times()
            return self.at_times(self.optional_days(), times)
        if not self.take_if("every", "each"):
            self.take_if("on")
        self.take_if("the")
        word = self.word()
        if self._nth_run(0):  # before the units: "every second Tuesday of the month"
            return self.calendar(self.days(RULE_START))
        if _NUMBER.fullmatch(word) or word == "other":
            return self.counted()
        if word in words.UNITS and word in words.SINGULAR_UNITS and word != "day":
            self.i += 1
            return self.interval(words.UNITS[word])
        if self.take_if("hourly"):
            return self.interval(3600)
        return self.calendar(self.days(RULE_START))

    def optional_days(self) -> DaySpec:
        if self.peek() is None or self.word() in (",", "and", "in"):
            return EveryDay()
        if not self.take_if("every", "each"):
            self.take_if("on")
        self.take_if("the")
        return self.days("a day (Monday, 23rd, January 4th), a comma or the end")

    def counted(self) -> Rule:
        number = self.take("a number")
        count = 2 if number.word == "other" else int(number.word)
        unit = self.take("seconds, minutes, hours or days")
        if unit.word not in words.UNITS:
            self.fail("seconds, minutes, hours or days", unit)
        if count < 1:
            self.invalid(number, "an interval must be at least 1", "a number from 1")
        period = count * words.UNITS[unit.word]
        if period > config.MAX_SCHEDULE_PERIOD_S:
            limit = config.MAX_SCHEDULE_PERIOD_S
            self.invalid(number, "the interval is too long", f"at most {limit // 86400} days")
        if words.UNITS[unit.word] == _DAY_UNIT:
            days: DaySpec = EveryDay() if count == 1 else EveryNDays(count)
            return self.calendar(days)
        return self.interval(period)

    def interval(self, period: int) -> Rule:
        if self.word() == "at":
            return self.past_the_hour(period)
        window, days = self.filters(period)
        return IntervalRule(period, window, days)

    def past_the_hour(self, period: int) -> Rule:
        """``every 2 hours at :15``: wall-clock minutes past every ``N``-th hour from midnight."""
        at = self.take('"at"')
        if period % 3600 or period > config.MAX_PAST_THE_HOUR_STEP_H * 3600:
            every = describe_period(period)
            limit = config.MAX_PAST_THE_HOUR_STEP_H
            self.invalid(
                at, f'"at :MM" needs whole hours, not every {every}', f"1 to {limit} hours"
            )
        offsets = {self.offset()}
        while self.continues("offset"):
            offsets.add(self.offset())
        window, days = self.filters(None)
        rule = HourlyRule(period // 3600, tuple(sorted(offsets)), window, days)
        if not rule.fires:
            token = self.tokens[self.i - 1]
            self.invalid(token, "none of the times falls in the window", "a wider window")
        return rule

    def offset(self) -> int:
        token = self.take(OFFSET)
        match = _OFFSET.fullmatch(token.word)
        if match is None:
            self.fail(OFFSET, token)
        minute, second = int(match.group(1)), int(match.group(2) or 0)
        if minute > 59 or second > 59:
            self.invalid(token, f'"{token.text}" is not a time past the hour', ":00 to :59:59")
        return minute * 60 + second

    def filters(self, period: int | None) -> tuple[Window | None, DaySpec | None]:
        """An optional window and an optional ``on DAYS``, in either order."""
        window: Window | None = None
        days: DaySpec | None = None
        for _ in range(2):
            if window is None and self.word() in ("between", "from"):
                window = self.window()
                if window is not None and period is not None and window.length_seconds() < period:
                    token = self.tokens[self.i - 1]
                    every = describe_period(period)
                    self.invalid(token, f"the window is shorter than {every}", "a longer window")
            elif days is None and self.take_if("on"):
                self.take_if("the", "every", "each")
                spec = self.days("a day (weekdays, Monday, 23rd, January 4th)")
                days = None if isinstance(spec, EveryDay) else spec
        return window, days

    def window(self) -> Window | None:
        if self.take_if("between"):
            start = self.window_minute()
            self.expect('"and"', "and")
        elif self.take_if("from"):
            start = self.window_minute()
            self.expect('"to" or "until"', "to", "until")
        else:
            return None
        end_token = self.peek()
        end = self.window_minute()
        if end == start and end_token is not None:
            self.invalid(end_token, "the window is empty", "an end time after the start")
        return Window(start, end)

    def window_minute(self) -> int:
        token = self.peek()
        second = self.time()
        if second % 60 and token is not None:
            self.invalid(token, f'"{token.text}" has seconds; a window is whole minutes', TIME)
        return second // 60

    def calendar(self, days: DaySpec) -> Rule:
        times: tuple[int, ...] = (0,)
        if self.take_if("at") or self._is_time(0):
            times = self.times()
        return self.at_times(days, times)

    def at_times(self, days: DaySpec, times: tuple[int, ...]) -> Rule:
        """Whole minutes make a ``CalendarRule``; a time with seconds, a ``ClockRule``."""
        if all(second % 60 == 0 for second in times):
            return CalendarRule(days, tuple(second // 60 for second in times))
        return ClockRule(days, times)

    def days(self, expected: str) -> DaySpec:
        word = self.word()
        if self.take_if("day", "everyday", "daily"):
            return EveryDay()
        if self._nth_run(0):
            return self.nth_weekdays()
        if word in words.WEEKDAYS:
            return self.weekdays()
        dated = _ORDINAL.fullmatch(word) and self.word(1) == "of" and self.word(2) in words.MONTHS
        if word in words.MONTHS or dated:
            return self.year_dates()
        if word == "last" or _ORDINAL.fullmatch(word):
            return self.month_days()
        self.fail(expected)

    def weekdays(self) -> DaySpec:
        chosen: set[int] = set()
        while True:
            chosen |= words.WEEKDAYS[self.take("a weekday").word]
            if not self.continues("weekday"):
                break
            self.take_if("the")
        return EveryDay() if len(chosen) == 7 else Weekdays(frozenset(chosen))

    def nth_weekdays(self) -> DaySpec:
        """``first and third Monday and last Friday [of the month]``."""
        chosen: set[tuple[int, int]] = set()
        ambiguous: Token | None = None
        while True:
            nths: list[int] = []
            while self.word() not in words.SINGLE_WEEKDAYS:
                if nths:
                    self.take_if(",")
                    self.take_if("and")
                token = self.take(NTH)
                if token.word not in words.NTH_WORDS:
                    self.fail(NTH, token)
                nths.append(words.NTH_WORDS[token.word])
                ambiguous = ambiguous or (token if nths[-1] == 2 else None)
            weekday = words.SINGLE_WEEKDAYS[self.take("a weekday").word]
            chosen.update((nth, weekday) for nth in nths)
            if not self.continues("nth"):
                break
            self.take_if("the")
        if self.take_if("of"):
            self.take_if("the", "every", "each")
            self.expect('"month"', "month")
        elif ambiguous is not None:
            self.invalid(
                ambiguous,
                f'"{ambiguous.text}" alone could mean every other week; '
                'say "of the month" for the monthly one',
                f'"{ambiguous.text} ... of the month"',
            )
        return NthWeekdays(frozenset(chosen))

    def month_days(self) -> DaySpec:
        chosen: set[int] = set()
        last = False
        while True:
            if self.take_if("last"):
                last = True
                self.take_if("day")
            else:
                chosen.add(self.day_number(self.take("a day like 23rd")))
                self.take_if("day")
            if not self.continues("monthday"):
                break
            self.take_if("the")
        if self.take_if("of"):
            self.take_if("the", "every", "each")
            self.expect('"month"', "month")
        return MonthDays(frozenset(chosen), last)

    def day_number(self, token: Token) -> int:
        match = _ORDINAL.fullmatch(token.word) or _NUMBER.fullmatch(token.word)
        if match is None:
            self.fail("a day like 23rd", token)
        day = int(match.group(1) if match.lastindex else match.group())
        if not 1 <= day <= 31:
            self.invalid(token, f'"{token.text}" is not a day of the month', "1st to 31st")
        return day

    def year_dates(self) -> DaySpec:
        chosen: set[tuple[int, int]] = set()
        month = 0
        while True:
            month, day = self.year_date(month)
            chosen.add((month, day))
            if not self.continues("date"):
                break
            self.take_if("the")
        return YearDates(frozenset(chosen))

    def year_date(self, previous_month: int) -> tuple[int, int]:
        """``January 4th``, ``Jan 4``, ``4th of July``, or ``15th`` after a dated item."""
        if self.word() in words.MONTHS:
            month = words.MONTHS[self.take("a month").word]
            day_token = self.take(f"a day of {words.MONTH_NAMES[month]}, like 4th")
        else:
            day_token = self.take("a month")
            month = previous_month
            if self.take_if("of"):
                month = words.MONTHS.get(self.word(), 0)
                if month == 0:
                    self.fail("a month")
                self.i += 1
        day = self.day_number(day_token)
        if day > words.MONTH_LENGTHS[month]:
            name = f"{words.MONTH_NAMES[month]} {words.ordinal(day)}"
            limit = words.MONTH_LENGTHS[month]
            self.invalid(day_token, f"{name} never exists", f"a day from 1st to {limit}th")
        return month, day

    def times(self) -> tuple[int, ...]:
        """Seconds of the day, sorted."""
        chosen = {self.time()}
        while self.continues("time"):
            chosen.add(self.time())
        return tuple(sorted(chosen))

    def time(self) -> int:
        """A time of day, in seconds from midnight."""
        token = self.take(TIME)
        if token.word in ("noon", "midnight"):
            return 12 * 3600 if token.word == "noon" else 0
        match = _TIME.fullmatch(token.word)
        if match is None:
            self.fail(TIME, token)
        hour, minute, second = (int(match.group(g) or 0) for g in (1, 2, 3))
        meridiem = match.group(4)
        if meridiem is None and self.word() in _MERIDIEM:
            meridiem = self.take(TIME).word
        if meridiem is not None:
            if not (1 <= hour <= 12 and minute <= 59 and second <= 59):
                self.invalid(token, f'"{token.text}" is not a 12-hour time', TIME)
            hour = hour % 12 + (12 if meridiem.startswith("p") else 0)
        elif hour > 23 or minute > 59 or second > 59:
            self.invalid(token, f'"{token.text}" is not a time of day', "00:00 to 23:59:59")
        return (hour * 60 + minute) * 60 + second
