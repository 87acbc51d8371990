"""Exceptions to a schedule (``except:``): days on which its ticks do not run.

An exception is one of (docs/schedules.md, "Exceptions and calendars")::

    on public holidays in IE            # a country, or a subdivision: US-CA, GB-SCT
    2026-12-24                          # a date, or an inclusive range:
    2026-12-24 to 2027-01-02
    on weekends                         # any day form of the schedule language:
    on Mon, Fri                         #   on weekdays, on Mondays, on the 1st...
    the last Friday of each month
    calendar: closed                    # a named calendar of the job's owner

A tick is excluded when its local date (in the schedule's zone) matches a rule.
``upcoming`` walks a schedule's ticks and says, for each, whether it runs and
which rule skipped it; with ``move`` (a job's ``on_excluded: next``) the ticks
of an excluded period move, together, to the first instant of the first day after it that is
not excluded (merging with a tick of the job at that instant).

Pure but for ``HolidayBook``, a cache of public holidays that its owner (the
planner, the service) keeps: the ``holidays`` library is imported only when a
rule names a country, and each (country, subdivision, year) is built once.

    >>> rule = parse_item("2026-12-24 to 2027-01-02")
    >>> rule.describe()
    '2026-12-24 to 2027-01-02'
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from odin.errors import ScheduleError
from odin.schedule import words
from odin.schedule.days import DaySpec, EveryDay, Weekdays, describe_on
from odin.schedule.model import Schedule
from odin.schedule.parser import Parser
from odin.schedule.wall import resolve

__all__ = [
    "CalendarRef",
    "DateSpan",
    "Exclusion",
    "Exclusions",
    "HolidayBook",
    "OnDays",
    "PublicHolidays",
    "Upcoming",
    "calendar_refs",
    "next_run",
    "parse_item",
    "preview",
    "read_item",
    "regions",
    "resolve_items",
    "upcoming",
]

HORIZON = timedelta(days=3660)
"""How far ahead a walk looks for a tick that is not excluded (ten years)."""

MAX_SKIPS_SHOWN = 20
"""Skipped periods ``preview`` lists at most before the runs it was asked for."""

MAX_ITEM_CHARS = 200
CALENDAR_NAME_CHARS = 64
HOLIDAY_YEARS_KEPT = 4096
"""(country, subdivision, year) tables a ``HolidayBook`` keeps before it starts over."""

REGIONS_HINT = "list the codes with: odin calendar regions"
EXPECTED = (
    'an exception such as "on public holidays in IE", "2026-12-24", "2026-12-24 to 2027-01-02", '
    '"on weekends", "the last Friday of each month" or "calendar: NAME"'
)
_EPSILON = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)
_CALENDAR = re.compile(r"calendar\s*:\s*(.*)", re.IGNORECASE | re.DOTALL)
_CALENDAR_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{CALENDAR_NAME_CHARS - 1}}}", re.ASCII)
_HOLIDAYS = re.compile(
    r"(?:on\s+)?(?:the\s+)?public\s+holidays?\s+(?:in|of)\s+(.*)", re.IGNORECASE | re.DOTALL
)
_REGION = re.compile(r"([A-Za-z]{2,3})(?:\s*-\s*(.+))?", re.DOTALL)
_DATE = r"(\d{4}-\d{1,2}-\d{1,2})"
_DATES = re.compile(
    rf"(?:(?:on|from)\s+)?{_DATE}(?:\s+(?:to|until|through)\s+{_DATE})?", re.IGNORECASE
)
_LOOKS_DATED = re.compile(r"(?:(?:on|from)\s+)?\d{4}-", re.IGNORECASE)


# -- the rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicHolidays:
    """The public holidays of a country (ISO 3166-1 code) or one of its subdivisions."""

    country: str
    subdivision: str | None = None

    @property
    def region(self) -> str:
        return self.country if self.subdivision is None else f"{self.country}-{self.subdivision}"

    def describe(self) -> str:
        return f"on public holidays in {self.region}"

    def why(self, day: date, book: HolidayBook) -> str | None:
        name = book.holiday(self.country, self.subdivision, day)
        return None if name is None else f"public holiday in {self.region} ({name})"

    def resume(self, day: date) -> date:
        return day + _ONE_DAY


@dataclass(frozen=True)
class DateSpan:
    """A date, or an inclusive range of dates."""

    first: date
    last: date

    def describe(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} to {self.last.isoformat()}"

    def why(self, day: date, book: HolidayBook) -> str | None:
        return self.describe() if self.first <= day <= self.last else None

    def resume(self, day: date) -> date:
        return self.last + _ONE_DAY


@dataclass(frozen=True)
class OnDays:
    """Days in the schedule language's day forms: weekends, Mondays, the last Friday..."""

    days: DaySpec

    def describe(self) -> str:
        if isinstance(self.days, Weekdays) and self.days.days == words.WEEKEND:
            return "on weekends"
        return describe_on(self.days)

    def why(self, day: date, book: HolidayBook) -> str | None:
        return self.describe() if self.days.matches(day) else None

    def resume(self, day: date) -> date:
        return day + _ONE_DAY


@dataclass(frozen=True)
class CalendarRef:
    """A named calendar of the job's owner, whose rules apply as if listed here."""

    name: str

    def describe(self) -> str:
        return f"calendar: {self.name}"


ExceptRule = PublicHolidays | DateSpan | OnDays
ExceptItem = ExceptRule | CalendarRef


# -- reading -----------------------------------------------------------------------------


def parse_item(text: str) -> ExceptItem:
    """One exception from its text; ScheduleError says what is wrong and what would do."""
    value = " ".join(text.split()) if isinstance(text, str) else ""
    if not value:
        raise _error(text if isinstance(text, str) else "", "the exception is empty")
    if len(value) > MAX_ITEM_CHARS:
        raise _error(value[:MAX_ITEM_CHARS], f"is longer than {MAX_ITEM_CHARS} characters")
    found = _CALENDAR.fullmatch(value)
    if found is not None:
        return CalendarRef(check_calendar_name(found.group(1)))
    found = _HOLIDAYS.fullmatch(value)
    if found is not None:
        return _public_holidays(value, found.group(1))
    found = _DATES.fullmatch(value)
    if found is not None:
        return _dates(value, found.group(1), found.group(2))
    if _LOOKS_DATED.match(value):
        raise _error(value, f"{_shown(value)} is not a date or a range of dates", _RANGE)
    return _days(value)


@functools.lru_cache(maxsize=4096)
def read_item(text: str) -> ExceptItem:
    """``parse_item``, once per text (jobs share a handful of exceptions)."""
    return parse_item(text)


def check_calendar_name(text: str) -> str:
    """A calendar's name: letters, digits, ``_``, ``.`` and ``-``, a letter or digit first."""
    name = text.strip()
    if not _CALENDAR_NAME.fullmatch(name):
        raise _error(
            text,
            f"{_shown(name)} is not a calendar name",
            f"letters, digits, _, . and - (at most {CALENDAR_NAME_CHARS}), a letter or digit first",
        )
    return name


def calendar_refs(texts: Sequence[str]) -> list[str]:
    """The calendars that exception texts (as a job stores them) name, in order."""
    names: list[str] = []
    for text in texts:
        found = _CALENDAR.fullmatch(text)
        if found is not None and found.group(1).strip() not in names:
            names.append(found.group(1).strip())
    return names


_RANGE = "a date like 2026-12-24, or a range like 2026-12-24 to 2027-01-02 (both included)"


def _dates(text: str, first_text: str, last_text: str | None) -> DateSpan:
    first = _date(text, first_text)
    last = first if last_text is None else _date(text, last_text)
    if last < first:
        raise _error(
            text, f"the range ends ({last.isoformat()}) before it starts ({first.isoformat()})"
        )
    return DateSpan(first, last)


def _date(text: str, value: str) -> date:
    try:
        year, month, day = (int(part) for part in value.split("-"))
        return date(year, month, day)
    except ValueError:
        raise _error(text, f"{value} is not a date", _RANGE) from None


def _days(text: str) -> OnDays:
    parser = Parser(text)
    parser.take_if("on")
    parser.take_if("the", "every", "each")
    try:
        days = parser.days(EXPECTED)
        if parser.peek() is not None:
            parser.fail("the end of the exception")
    except ScheduleError as error:
        raise _error(text, f"cannot read {_shown(text)}: {_unscheduled(error.message)}") from None
    if isinstance(days, EveryDay):
        raise _error(text, f"{_shown(text)} excludes every day: the job would never run")
    return OnDays(days)


def _unscheduled(message: str) -> str:
    """A day-parser message, worded for an exception rather than a schedule."""
    return message.replace("the schedule ends too early", "it ends too early")


def _public_holidays(text: str, region: str) -> PublicHolidays:
    found = _REGION.fullmatch(region.strip())
    if found is None:
        raise _error(
            text,
            f"{_shown(region)} is not a country code",
            f"an ISO 3166 code such as IE, or a subdivision such as US-CA ({REGIONS_HINT})",
        )
    country, subdivision = check_region(found.group(1), found.group(2))
    return PublicHolidays(country, subdivision)


def check_region(country: str, subdivision: str | None = None) -> tuple[str, str | None]:
    """The holidays library's spelling of a country code and subdivision; ScheduleError for
    codes it does not know, naming a close one and how to list them."""
    known = regions()
    code = country.upper()
    code = _aliases().get(code, code)
    if code not in known:
        raise _error(
            country,
            f"unknown country code {_shown(country)}: expected an ISO 3166 code the holidays "
            f"library knows, such as IE, GB or US; {REGIONS_HINT}",
        )
    if subdivision is None:
        return code, None
    wanted = " ".join(subdivision.split())
    by_folded = {name.casefold(): name for name in known[code]}
    by_folded.update((alias.casefold(), name) for alias, name in subdivision_names(code).items())
    if not known[code]:
        raise _error(subdivision, f"{code} has no subdivisions: write {code} alone")
    if wanted.casefold() not in by_folded:
        shown = ", ".join(known[code][:12]) + (", ..." if len(known[code]) > 12 else "")
        raise _error(
            subdivision,
            f"{code} has no subdivision {_shown(wanted)}: expected one of {shown}; "
            f"{REGIONS_HINT} {code}",
        )
    return code, by_folded[wanted.casefold()]


@functools.cache
def regions() -> dict[str, tuple[str, ...]]:
    """Every country code the holidays library knows, with its subdivisions' codes."""
    import holidays  # about 0.1 to 0.3 s: only when a rule names a country

    supported = holidays.list_supported_countries(include_aliases=False)
    return {code: tuple(subdivisions) for code, subdivisions in sorted(supported.items())}


@functools.cache
def country_names() -> dict[str, str]:
    """Country code → its name in English, as far as the holidays library says (for lists)."""
    try:
        from holidays.registry import COUNTRIES
    except ImportError:  # pragma: no cover - a future layout of the library
        return {}
    names: dict[str, str] = {}
    for entry in COUNTRIES.values():
        class_name, code = entry[0], entry[1]
        names[code] = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", class_name)
    return names


@functools.cache
def subdivision_names(country: str) -> dict[str, str]:
    """The names the holidays library gives a country's subdivisions (Scotland → SCT)."""
    import holidays

    try:
        names = holidays.country_holidays(country).subdivisions_aliases
    except (NotImplementedError, AttributeError, ValueError):
        return {}
    return {str(name): str(code) for name, code in names.items()}


@functools.cache
def _aliases() -> dict[str, str]:
    """Other codes the holidays library takes for a country (GBR and UK for GB), to its own."""
    try:
        from holidays.registry import COUNTRIES
    except ImportError:  # pragma: no cover - a future layout of the library
        return {}
    aliases: dict[str, str] = {}
    for entry in COUNTRIES.values():
        for alias in entry[2:]:
            if isinstance(alias, str) and re.fullmatch(r"[A-Z]{2,3}", alias):
                aliases[alias] = entry[1]
    return aliases


def _shown(text: str) -> str:
    cut = text if len(text) <= 60 else text[:57] + "..."
    return '"' + "".join(ch if ch.isprintable() else "?" for ch in cut) + '"'


def _error(text: str, message: str, expected: str | None = None) -> ScheduleError:
    if expected is not None:
        message = f"{message}: expected {expected}"
    return ScheduleError(message, text=text, expected=expected or EXPECTED)


# -- holidays ----------------------------------------------------------------------------


class HolidayBook:
    """Public holidays by (country, subdivision, year), each year built once and kept.

    Owned by whoever walks schedules (the planner, the service), never shared through a
    module: building a year costs about a millisecond, importing the library a few tenths
    of a second. A code the library no longer knows has no holidays.
    """

    def __init__(self, limit: int = HOLIDAY_YEARS_KEPT) -> None:
        self._years: dict[tuple[str, str | None, int], Mapping[date, str]] = {}
        self._limit = limit

    def holiday(self, country: str, subdivision: str | None, day: date) -> str | None:
        """The name of the holiday on ``day`` (several joined by "; "), or None."""
        key = (country, subdivision, day.year)
        table = self._years.get(key)
        if table is None:
            table = _build_year(*key)
            if len(self._years) >= self._limit:
                self._years = {}
            self._years[key] = table
        return table.get(day)


def _build_year(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    import holidays

    try:
        found = holidays.country_holidays(country, subdiv=subdivision, years=year)
    except (NotImplementedError, ValueError, KeyError):
        return {}
    return {day: str(name) for day, name in found.items()}


# -- resolving a job's exceptions ----------------------------------------------------------


@dataclass(frozen=True)
class Exclusion:
    """A rule of a job, or of a calendar the job names (``calendar``)."""

    rule: ExceptRule
    calendar: str | None = None


@dataclass(frozen=True)
class Skip:
    """Why a day is excluded, and the first day after those its rules exclude with it."""

    reason: str
    resume: date


@dataclass(frozen=True)
class Exclusions:
    """A job's exceptions, its calendars' rules in place, with the holidays to check them."""

    items: tuple[Exclusion, ...]
    book: HolidayBook = field(compare=False, hash=False, repr=False)

    def __bool__(self) -> bool:
        return bool(self.items)

    def check(self, day: date) -> Skip | None:
        """Whether ``day`` is excluded: the first rule that says so names the reason."""
        reason: str | None = None
        resume = day
        for item in self.items:
            why = item.rule.why(day, self.book)
            if why is None:
                continue
            if reason is None:
                reason = why if item.calendar is None else f"calendar {item.calendar}: {why}"
            resume = max(resume, item.rule.resume(day))
        return None if reason is None else Skip(reason, resume)


def resolve_items(
    texts: Sequence[str], calendars: Mapping[str, Sequence[str]], book: HolidayBook
) -> Exclusions:
    """A job's exceptions (as stored) with the rules of the owner's ``calendars`` (name →
    rule texts) in place; a text that no longer reads, or an unknown calendar, adds none."""
    items: list[Exclusion] = []
    for text in texts:
        item = _readable(text)
        if isinstance(item, CalendarRef):
            for inner_text in calendars.get(item.name, ()):
                inner = _readable(inner_text)
                if inner is not None and not isinstance(inner, CalendarRef):
                    items.append(Exclusion(inner, item.name))
        elif item is not None:
            items.append(Exclusion(item))
    return Exclusions(tuple(items), book)


def _readable(text: str) -> ExceptItem | None:
    try:
        return read_item(text)
    except ScheduleError:  # e.g. a subdivision a newer holidays library dropped
        return None


# -- walking a schedule -------------------------------------------------------------------


@dataclass(frozen=True)
class Upcoming:
    """A tick of a schedule: a run, or a skip with the rule that excluded it.

    ``through``: a skip whose rule excludes the days after its own too (a range, or
    excluded days in a row), up to this day. ``moved``: a run that excluded ticks moved to
    (``move``, a job's ``on_excluded: next``), merged with a tick of the schedule there.
    """

    at: datetime
    skipped: str | None = None
    through: date | None = None
    moved: bool = False


def upcoming(
    schedule: Schedule,
    exclusions: Exclusions,
    after: datetime,
    move: bool = False,
) -> Iterator[Upcoming]:
    """The schedule's ticks after ``after``, runs and skips in order, for ``HORIZON``.

    After an excluded tick the walk goes on from the first day its rules do not cover, so a
    long range or a weekend of an every-second job costs one step. Instants are compared as
    timestamps: two wall times of one zone compare without their fold.
    """
    zone = schedule.zone
    horizon = after.timestamp() + HORIZON.total_seconds()
    moved_to: datetime | None = None
    moment = after
    while True:
        tick = schedule.next_after(moment)
        if tick is not None and tick.timestamp() > horizon:
            tick = None
        if moved_to is not None and (tick is None or tick.timestamp() >= moved_to.timestamp()):
            yield Upcoming(moved_to, moved=True)
            moment, moved_to = moved_to, None  # a tick at that instant is the same run
            continue
        if tick is None:
            return
        day = tick.astimezone(zone).date()
        skip = exclusions.check(day)
        if skip is None:
            yield Upcoming(tick)
            moment = tick
            continue
        last = skip.resume - _ONE_DAY
        yield Upcoming(tick, skipped=skip.reason, through=last if last > day else None)
        if move and moved_to is None:
            moved_to = _first_allowed(exclusions, skip.resume, zone, horizon)
        resumes = resolve(skip.resume, 0, zone).astimezone(UTC) - _EPSILON
        moment = resumes if resumes.timestamp() > tick.timestamp() else tick


def _first_allowed(
    exclusions: Exclusions, day: date, zone: ZoneInfo, horizon: float
) -> datetime | None:
    """The first instant of the first day from ``day`` on that is not excluded."""
    while True:
        start = resolve(day, 0, zone)
        if start.timestamp() > horizon:
            return None
        skip = exclusions.check(day)
        if skip is None:
            return start
        day = skip.resume


def next_run(
    schedule: Schedule,
    exclusions: Exclusions,
    after: datetime,
    move: bool = False,
) -> datetime | None:
    """The first run after ``after``: a tick not excluded, or a moved one; None within
    ``HORIZON`` (a job excluded for ten years has no next run)."""
    for item in upcoming(schedule, exclusions, after, move):
        if item.skipped is None:
            return item.at
    return None


def preview(
    schedule: Schedule,
    exclusions: Exclusions,
    after: datetime,
    runs: int,
    move: bool = False,
    skips: int = MAX_SKIPS_SHOWN,
) -> list[Upcoming]:
    """The next ``runs`` runs with the skips among them (at most ``skips``; skips in a row
    for the same reason are one, ``through`` its last day), as ``odin describe`` lists them."""
    found: list[Upcoming] = []
    count = shown = 0
    if runs <= 0:
        return found
    for item in upcoming(schedule, exclusions, after, move):
        if item.skipped is None:
            found.append(item)
            count += 1
            if count >= runs:
                break
            continue
        previous = found[-1] if found else None
        if previous is not None and previous.skipped == item.skipped:
            day = item.at.astimezone(schedule.zone).date()
            found[-1] = Upcoming(previous.at, previous.skipped, item.through or day)
        elif shown < skips:
            found.append(item)
            shown += 1
    return found
