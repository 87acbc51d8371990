"""App Engine cron (cron.yaml's ``schedule:``): examples, DST, errors, and property tests.

Fire times below were worked out by hand from the calendar and the zones' DST rules
(Europe/Dublin: 2025-03-30 01:00 GMT -> 02:00 IST, 2025-10-26 02:00 IST -> 01:00 GMT;
America/New_York: 2025-03-09 02:00 EST -> 03:00 EDT, 2025-11-02 02:00 EDT -> 01:00 EST).
Generated texts are checked minute by minute against App Engine's definition of the days
(the n-th weekday of a month is one on days 7n-6 to 7n), read without the code; where
English also reads a text, it must build the very rule App Engine's reading builds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from cronsim import CronSim
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from odin.cli.schedule_cmd import schedule as schedule_command
from odin.errors import ScheduleError
from odin.schedule import Schedule, Syntax, parse, syntax_of
from odin.schedule.appengine import parse_appengine
from odin.schedule.appengine_rules import AppEngineRule, SynchronizedRule
from odin.schedule.cron import is_cron
from odin.schedule.oncalendar import parse_event
from odin.schedule.parser import Parser
from odin.schedule.rules import CalendarRule, IntervalRule
from schedule_oracle import (
    DST_ZONES,
    MINUTE,
    ZONES,
    anywhere,
    chained,
    near_a_change,
    transitions,
    wall_scan,
)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # a Saturday
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ONE_DAY = timedelta(days=1)
WEEK = frozenset(range(7))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def next3(text: str, start: datetime = START, tz: str = "UTC") -> list[str]:
    """The next three fire times, as UTC ISO strings without the offset."""
    fires = parse(text, tz).next_n(start, 3)
    return [f.astimezone(UTC).replace(tzinfo=None).isoformat() for f in fires]


# --- examples ----------------------------------------------------------------------------

E, A = Syntax.ENGLISH, Syntax.APPENGINE

# text, syntax, next three fires after START (UTC), canonical text, explanation, cron form
GOLDEN: list[tuple[str, Syntax, list[str], str, str, list[str] | None]] = [
    # Odin's English already reads these, with App Engine's meaning.
    ("every monday 09:00", E, ["2025-03-03T09:00:00", "2025-03-10T09:00:00", "2025-03-17T09:00:00"], "every Monday at 09:00", "every Monday at 09:00", ["0 9 * * 1"]),
    ("every mon,wed,fri 17:30", E, ["2025-03-03T17:30:00", "2025-03-05T17:30:00", "2025-03-07T17:30:00"], "every Monday, Wednesday and Friday at 17:30", "every Monday, Wednesday and Friday at 17:30", ["30 17 * * 1,3,5"]),
    ("every day 00:00", E, ["2025-03-02T00:00:00", "2025-03-03T00:00:00", "2025-03-04T00:00:00"], "every day at 00:00", "every day at 00:00", ["0 0 * * *"]),
    ("1st monday of month 09:00", E, ["2025-03-03T09:00:00", "2025-04-07T09:00:00", "2025-05-05T09:00:00"], "every first Monday of the month at 09:00", "every first Monday of the month at 09:00", ["0 9 * * 1#1"]),
    ("first,third mon 17:00", E, ["2025-03-03T17:00:00", "2025-03-17T17:00:00", "2025-04-07T17:00:00"], "every first and third Monday of the month at 17:00", "every first and third Monday of the month at 17:00", ["0 17 * * 1#1,1#3"]),
    # Read as App Engine: on every month, they become English rules.
    ("1,8,15,22 of month 09:00", A, ["2025-03-08T09:00:00", "2025-03-15T09:00:00", "2025-03-22T09:00:00"], "every 1st, 8th, 15th and 22nd at 09:00", "every 1st, 8th, 15th and 22nd at 09:00", ["0 9 1,8,15,22 * *"]),
    ("1, 15 of month 09:00", A, ["2025-03-15T09:00:00", "2025-04-01T09:00:00", "2025-04-15T09:00:00"], "every 1st and 15th at 09:00", "every 1st and 15th at 09:00", ["0 9 1,15 * *"]),
    ("2nd tue 09:00", A, ["2025-03-11T09:00:00", "2025-04-08T09:00:00", "2025-05-13T09:00:00"], "every second Tuesday of the month at 09:00", "every second Tuesday of the month at 09:00", ["0 9 * * 2#2"]),
    ("first day 09:00", A, ["2025-04-01T09:00:00", "2025-05-01T09:00:00", "2025-06-01T09:00:00"], "every 1st at 09:00", "every 1st at 09:00", ["0 9 1 * *"]),
    ("every sat,sun of month 10:00", A, ["2025-03-02T10:00:00", "2025-03-08T10:00:00", "2025-03-09T10:00:00"], "every Saturday and Sunday at 10:00", "every Saturday and Sunday at 10:00", ["0 10 * * 0,6"]),
    ("2nd,third mon,wed 17:00", A, ["2025-03-10T17:00:00", "2025-03-12T17:00:00", "2025-03-17T17:00:00"], "every second and third Monday and second and third Wednesday of the month at 17:00", "every second and third Monday and second and third Wednesday of the month at 17:00", ["0 17 * * 1#2,1#3,3#2,3#3"]),
    # Read as App Engine, in chosen months.
    ("1st,3rd monday of sep,oct,nov 17:00", A, ["2025-09-01T17:00:00", "2025-09-15T17:00:00", "2025-10-06T17:00:00"], "1st,3rd mon of sep,oct,nov 17:00", "every first and third Monday of September, October and November at 17:00", ["0 17 * 9-11 1#1,1#3"]),
    ("2nd,third mon,wed,thu of march 17:00", A, ["2025-03-10T17:00:00", "2025-03-12T17:00:00", "2025-03-13T17:00:00"], "2nd,3rd mon,wed,thu of mar 17:00", "every second and third Monday, Wednesday and Thursday of March at 17:00", ["0 17 * 3 1#2,1#3,3#2,3#3,4#2,4#3"]),
    ("1 of jan,april,july,oct 00:00", A, ["2025-04-01T00:00:00", "2025-07-01T00:00:00", "2025-10-01T00:00:00"], "1 of jan,apr,jul,oct 00:00", "every 1st of January, April, July and October at 00:00", ["0 0 1 1-10/3 *"]),
    ("first sunday of quarter 00:00", A, ["2025-04-06T00:00:00", "2025-07-06T00:00:00", "2025-10-05T00:00:00"], "1st sun of jan,apr,jul,oct 00:00", "every first Sunday of January, April, July and October at 00:00", ["0 0 * 1-10/3 0#1"]),
    ("1st mon of 2nd,3rd month of quarter 09:00", A, ["2025-03-03T09:00:00", "2025-05-05T09:00:00", "2025-06-02T09:00:00"], "1st mon of feb,mar,may,jun,aug,sep,nov,dec 09:00", "every first Monday of February, March, May, June, August, September, November and December at 09:00", ["0 9 * 2,3,5,6,8,9,11,12 1#1"]),
    ("every wed,fri of jan,jun 13:15", A, ["2025-06-04T13:15:00", "2025-06-06T13:15:00", "2025-06-11T13:15:00"], "every wed,fri of jan,jun 13:15", "every Wednesday and Friday in January and June at 13:15", ["15 13 * 1,6 3,5"]),
    ("every day of jan 9:00", A, ["2026-01-01T09:00:00", "2026-01-02T09:00:00", "2026-01-03T09:00:00"], "every day of jan 09:00", "every day in January at 09:00", ["0 9 * 1 *"]),
    ("31 of apr,may 09:00", A, ["2025-05-31T09:00:00", "2026-05-31T09:00:00", "2027-05-31T09:00:00"], "31 of apr,may 09:00", "every 31st of April and May at 09:00", ["0 9 31 4,5 *"]),
    ("EVERY Wed OF Jan 13:15 in America/New_York", A, ["2026-01-07T18:15:00", "2026-01-14T18:15:00", "2026-01-21T18:15:00"], "every wed of jan 13:15", "every Wednesday in January at 13:15", ["15 13 * 1 3"]),
    # Grids from midnight, on the wall clock.
    ("every 2 hours synchronized", A, ["2025-03-01T14:00:00", "2025-03-01T16:00:00", "2025-03-01T18:00:00"], "every 2 hours synchronized", "every 2 hours from 00:00 through 22:00", ["0 0-22/2 * * *"]),
    ("every 90 minutes synchronized", A, ["2025-03-01T13:30:00", "2025-03-01T15:00:00", "2025-03-01T16:30:00"], "every 90 minutes synchronized", "every 90 minutes from 00:00 through 22:30", ["0 0-21/3 * * *", "30 1-22/3 * * *"]),
    ("every 5 mins synchronized", A, ["2025-03-01T12:05:00", "2025-03-01T12:10:00", "2025-03-01T12:15:00"], "every 5 minutes synchronized", "every 5 minutes from 00:00 through 23:55", ["0-55/5 0-23 * * *"]),
    ("every 24 hours synchronized", A, ["2025-03-02T00:00:00", "2025-03-03T00:00:00", "2025-03-04T00:00:00"], "every 24 hours synchronized", "every day at 00:00", ["0 0 * * *"]),
    ("every hour synchronized", A, ["2025-03-01T13:00:00", "2025-03-01T14:00:00", "2025-03-01T15:00:00"], "every 1 hours synchronized", "every hour from 00:00 through 23:00", ["0 0-23 * * *"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "syntax", "fires", "canonical", "explained", "cron"), GOLDEN)
def test_examples(
    text: str, syntax: Syntax, fires: list[str], canonical: str, explained: str, cron: list[str]
) -> None:
    schedule = parse(text)
    assert syntax_of(text) is syntax
    assert next3(text) == fires
    assert schedule.describe() == canonical
    assert schedule.explain() == explained
    assert schedule.cron() == cron
    assert parse(canonical, schedule.timezone).rules == schedule.rules


# --- where English and App Engine read the same words ------------------------------------


def test_intervals_keep_odins_reading() -> None:
    """``every N hours from A to B`` is elapsed time from 1970 inside a window (a golden form)."""
    assert syntax_of("every 2 hours from 09:30 to 17:30") is Syntax.ENGLISH
    assert isinstance(parse("every 2 hours from 09:30 to 17:30").rules[0], IntervalRule)
    # App Engine would say 09:30, 11:30, ..., 17:30; Odin keeps its golden meaning.
    assert next3("every 2 hours from 09:30 to 17:30") == [
        "2025-03-01T14:00:00",
        "2025-03-01T16:00:00",
        "2025-03-02T10:00:00",
    ]
    summer = utc("2025-06-01T00:00")
    assert next3("every 2 hours from 09:30 to 17:30", summer, "Europe/Dublin") == [
        "2025-06-01T10:00:00",  # 11:00 IST
        "2025-06-01T12:00:00",
        "2025-06-01T14:00:00",
    ]
    assert next3("every 4 hours from 13:00 to 21:00") == [  # the golden test
        "2025-03-01T16:00:00",
        "2025-03-01T20:00:00",
        "2025-03-02T16:00:00",
    ]
    # Where the period divides the hour and the window starts on it, the readings agree.
    assert next3("every 5 minutes from 10:00 to 14:00", utc("2025-03-01T09:58")) == [
        "2025-03-01T10:00:00",
        "2025-03-01T10:05:00",
        "2025-03-01T10:10:00",
    ]
    assert parse("every 12 hours").rules == (IntervalRule(12 * 3600),)


def test_a_synchronized_grid_is_not_an_interval() -> None:
    """In a zone off UTC by half an hour, the grid keeps to local midnight; the interval does not."""
    kolkata = utc("2025-03-01T00:00")
    assert next3("every 2 hours synchronized in Asia/Kolkata", kolkata) == [
        "2025-03-01T00:30:00",  # 06:00 IST
        "2025-03-01T02:30:00",
        "2025-03-01T04:30:00",
    ]
    assert next3("every 2 hours in Asia/Kolkata", kolkata) == [
        "2025-03-01T02:00:00",  # 07:30 IST
        "2025-03-01T04:00:00",
        "2025-03-01T06:00:00",
    ]


# --- DST ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "fires"),
    [
        # Dublin springs forward: 01:30 on 2025-03-30 does not exist and runs at 02:00 IST.
        ("every sun of mar,oct 01:30 in Europe/Dublin", "2025-03-29T12:00", ["2025-03-30T01:00:00", "2025-10-05T00:30:00", "2025-10-12T00:30:00"]),
        # ...and falls back: 01:30 on 2025-10-26 runs once, at its first occurrence (IST).
        ("every sun of mar,oct 01:30 in Europe/Dublin", "2025-10-25T12:00", ["2025-10-26T00:30:00", "2026-03-01T01:30:00", "2026-03-08T01:30:00"]),
        # 26 October is the fall-back day in 2025, in winter time in 2026 (after the 25th), and
        # still summer time in 2027 (the change is on the 31st).
        ("26 of oct 01:30 in Europe/Dublin", "2025-10-01T00:00", ["2025-10-26T00:30:00", "2026-10-26T01:30:00", "2027-10-26T00:30:00"]),
        # New York's gap eats 02:30 on the second Sunday of March, twice.
        ("2nd sun of mar,nov 02:30 in America/New_York", "2025-03-01T12:00", ["2025-03-09T07:00:00", "2025-11-09T07:30:00", "2026-03-08T07:00:00"]),
        # Its first Sunday of November repeats 01:30 every year: once, in EDT.
        ("1st sun of nov 01:30 in America/New_York", "2025-10-01T00:00", ["2025-11-02T05:30:00", "2026-11-01T05:30:00", "2027-11-07T05:30:00"]),
        # A grid is wall times: 02:00 and 02:30 fall in the gap and run once, at 03:00 EDT...
        ("every 30 minutes synchronized in America/New_York", "2025-03-09T06:15", ["2025-03-09T06:30:00", "2025-03-09T07:00:00", "2025-03-09T07:30:00"]),
        # ...and the repeated 01:00 and 01:30 (EST) do not run again.
        ("every 30 minutes synchronized in America/New_York", "2025-11-02T05:15", ["2025-11-02T05:30:00", "2025-11-02T07:00:00", "2025-11-02T07:30:00"]),
        ("every 1 hours synchronized in Europe/Dublin", "2025-03-30T00:30", ["2025-03-30T01:00:00", "2025-03-30T02:00:00", "2025-03-30T03:00:00"]),
        ("every 1 hours synchronized in Europe/Dublin", "2025-10-25T23:30", ["2025-10-26T00:00:00", "2025-10-26T02:00:00", "2025-10-26T03:00:00"]),
    ],
)  # fmt: skip
def test_dst(text: str, start: str, fires: list[str]) -> None:
    assert next3(text, utc(start)) == fires


def test_fifth_weekdays_of_february_are_leap_days() -> None:
    fires = next3("5th sun of feb 00:00")
    assert fires == ["2032-02-29T00:00:00", "2060-02-29T00:00:00", "2088-02-29T00:00:00"]


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "word"),
    [
        ("30 of feb 09:00", 0, "none of these days exists"),
        ("31 of apr,jun 09:00", 0, "none of these days exists"),
        ("32 of month 09:00", 0, '"32" is not a day of the month'),
        ("1,15 of month", 13, "ends too early"),
        ("1,15 of mnth 09:00", 8, '"mnth"'),
        ("1st,3rd mon of sep 25:00", 19, '"25:00" is not a time of day'),
        ("every 7 minutes synchronized", 6, "divides 24 hours evenly"),
        ("every 48 hours synchronized", 6, "divides 24 hours evenly"),
        ("every 30 seconds synchronized", 9, '"seconds"'),
        ("every 2 hours from 09:00 to 17:00 synchronized", 14, '"from"'),
        ("every mon of quarter 9am", 21, '"9am"'),
        ("1st mon of 4th month of quarter 09:00", 11, '"4th"'),
    ],
)
def test_errors(text: str, position: int, word: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text)
    error = caught.value
    assert (error.position, word in str(error)) == (position, True), str(error)
    assert error.expected and error.expected in str(error)


def test_a_misspelt_keyword_is_suggested() -> None:
    with pytest.raises(ScheduleError, match='did you mean "synchronized"'):
        parse("every 2 hours synchronised")


def test_odins_refusals_stand() -> None:
    """``every second Tuesday`` is still refused; App Engine has no ``every`` before an ordinal."""
    for text in ("every second Tuesday", "every 2nd Friday at 10:00", "second Tuesday at 9am"):
        with pytest.raises(ScheduleError, match="every other week"):
            parse(text)


def test_odin_schedule_explains_app_engine() -> None:
    args = ["1st,3rd monday of sep,oct,nov 17:00", "--tz", "UTC", "-n", "2", "-o", "json"]
    args += ["--from", "2025-03-01T00:00:00+00:00"]
    result = CliRunner().invoke(schedule_command, args, catch_exceptions=False)
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["description"] == (
        "every first and third Monday of September, October and November at 17:00"
    )
    assert report["cron"] == ["0 17 * 9-11 1#1,1#3"]
    assert report["next"] == ["2025-09-01T17:00:00+00:00", "2025-09-15T17:00:00+00:00"]


# --- property tests ----------------------------------------------------------------------

MONTH_WORDS = ("", "jan", "feb", "march", "apr", "may", "june", "jul", "aug", "sep", "oct", "nov", "december")  # fmt: skip
WEEKDAY_WORDS = ("mon", "tuesday", "wed", "thu", "friday", "sat", "sun")
ORDINAL_WORDS = ("", "1st", "second", "3rd", "fourth", "5th")


@dataclass(frozen=True)
class Spec:
    """An App Engine specific time, by its meaning; ``text`` says it App Engine's way."""

    months: frozenset[int]
    minute: int
    monthdays: frozenset[int]  # empty: ordinals x weekdays
    ordinals: frozenset[int]
    weekdays: frozenset[int]  # Monday = 0

    @property
    def text(self) -> str:
        clock = f"{self.minute // 60:02d}:{self.minute % 60:02d}"
        if len(self.months) == 12:
            of = " of month"
        elif self.months == {1, 4, 7, 10}:
            of = " of quarter"
        else:
            of = " of " + ",".join(MONTH_WORDS[m] for m in sorted(self.months))
        if self.monthdays:
            return ",".join(map(str, sorted(self.monthdays))) + of + " " + clock
        if len(self.ordinals) == 5:
            head = "every"
        else:
            head = ",".join(ORDINAL_WORDS[n] for n in sorted(self.ordinals))
        if len(self.weekdays) == 7 and len(self.ordinals) == 5:
            days = "day"
        else:
            days = ",".join(WEEKDAY_WORDS[w] for w in sorted(self.weekdays))
        return f"{head} {days}{of} {clock}"

    def holds(self, d: date) -> bool:
        """App Engine's definition of the days, read from its documentation, not our code."""
        if d.month not in self.months:
            return False
        if self.monthdays:
            return d.day in self.monthdays
        return d.weekday() in self.weekdays and (d.day - 1) // 7 + 1 in self.ordinals


hours = st.sampled_from([0, 1, 2, 3, 9, 12, 17, 23]) | st.integers(0, 23)
minutes = st.sampled_from([0, 15, 30, 59]) | st.integers(0, 59)
clock_minutes = st.tuples(hours, minutes).map(lambda hm: hm[0] * 60 + hm[1])
month_sets = st.frozensets(st.integers(1, 12), min_size=1) | st.just(frozenset({1, 4, 7, 10}))
DaySets = tuple[frozenset[int], frozenset[int], frozenset[int]]  # monthdays, ordinals, weekdays
weekday_specs: st.SearchStrategy[DaySets] = st.tuples(
    st.frozensets(st.integers(1, 5), min_size=1) | st.just(frozenset(range(1, 6))),
    st.frozensets(st.integers(0, 6), min_size=1) | st.just(frozenset(range(7))),
).map(lambda p: (frozenset(), p[0], p[1]))
monthday_specs: st.SearchStrategy[DaySets] = st.frozensets(
    st.integers(1, 31), min_size=1, max_size=5
).map(lambda days: (days, frozenset(range(1, 6)), frozenset(range(7))))


@st.composite
def specs(draw: st.DrawFn, around: datetime | None = None, zone: str = "UTC") -> Spec:
    """A spec; with ``around``, its months hold that instant's month and the next."""
    months = set(draw(month_sets))
    if around is not None:
        local = around.astimezone(ZoneInfo(zone))
        months |= {local.month, local.month % 12 + 1}
    monthdays, ordinals, weekdays = draw(weekday_specs | monthday_specs)
    spec = Spec(frozenset(months), draw(clock_minutes), monthdays, ordinals, weekdays)
    assume(not monthdays or any(d <= (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[m - 1] for d in monthdays for m in months))  # fmt: skip
    return spec


def check(
    schedule: Schedule, t: datetime, horizon: timedelta, scheduled: Callable[[date, int], bool]
) -> None:
    """Chained ``next_after`` equals the minute scan of the wall times ``scheduled`` names."""
    expected = wall_scan(scheduled, schedule.zone, t, horizon, MINUTE)
    assert chained(schedule, t, horizon) == expected, schedule.text


@st.composite
def timed_specs(draw: st.DrawFn) -> tuple[Spec, str, datetime]:
    zone = draw(st.sampled_from(ZONES))
    t = draw(anywhere | near_a_change(DST_ZONES, timedelta(days=20)))
    return draw(specs(t, zone)), zone, t


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timed_specs())
def test_specific_times_match_minute_scan(case: tuple[Spec, str, datetime]) -> None:
    spec, zone, t = case
    schedule = parse(f"{spec.text} in {zone}")
    check(
        schedule,
        t,
        timedelta(days=35),
        lambda d, s: s % 60 == 0 and s // 60 == spec.minute and spec.holds(d),
    )


@st.composite
def specs_on_a_change(draw: st.DrawFn) -> tuple[Spec, str, datetime]:
    """A spec that fires on the day of a DST change, near the changed hour, and a start before."""
    zone = draw(st.sampled_from(DST_ZONES))
    change = draw(st.sampled_from(transitions(zone)))
    wall = (change - MINUTE).astimezone(ZoneInfo(zone))
    minute = (wall.hour * 60 + wall.minute + 1 + draw(st.integers(-90, 90))) % 1440
    months = draw(month_sets) | {wall.month}
    if draw(st.booleans()):
        spec = Spec(months, minute, frozenset({wall.day}), frozenset(range(1, 6)), WEEK)
    else:
        nth = (wall.day - 1) // 7 + 1
        ordinals = draw(st.frozensets(st.integers(1, 5))) | {nth}
        spec = Spec(months, minute, frozenset(), ordinals, frozenset({wall.weekday()}))
    start = change - timedelta(minutes=draw(st.integers(0, 48 * 60)))
    return spec, zone, start


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs_on_a_change())
def test_specific_times_on_a_dst_change_match_minute_scan(case: tuple[Spec, str, datetime]) -> None:
    spec, zone, t = case
    schedule = parse(f"{spec.text} in {zone}")
    check(
        schedule,
        t,
        timedelta(days=3),
        lambda d, s: s % 60 == 0 and s // 60 == spec.minute and spec.holds(d),
    )


@settings(max_examples=400, deadline=None)
@given(specs(), st.dates(date(1900, 1, 1), date(2200, 1, 1)))
def test_days_match_day_scan(spec: Spec, start: date) -> None:
    rule = parse_appengine(spec.text)[0]
    assume(isinstance(rule, AppEngineRule))
    assert isinstance(rule, AppEngineRule)
    expected = start
    while not spec.holds(expected):
        expected += ONE_DAY
    assert rule.next_day(start) == expected


SYNC_MINUTES = [m for m in range(1, 1441) if 1440 % m == 0]


def sync_text(period_minutes: int) -> str:
    if period_minutes % 60 == 0:
        return f"every {period_minutes // 60} hours synchronized"
    return f"every {period_minutes} minutes synchronized"


@FAST
@given(
    st.sampled_from(SYNC_MINUTES),
    st.sampled_from(ZONES),
    anywhere | near_a_change(DST_ZONES, timedelta(hours=30)),
)
def test_synchronized_matches_minute_scan(period: int, zone: str, t: datetime) -> None:
    schedule = parse(f"{sync_text(period)} in {zone}")
    check(schedule, t, timedelta(days=2), lambda d, s: s % (period * 60) == 0)


def cronsim_next(lines: list[str], t: datetime, zone: ZoneInfo) -> float:
    best = None
    for line in lines:
        steps = CronSim(line, t.astimezone(zone))
        for _ in range(4):
            fire = next(steps)
            if fire.timestamp() > t.timestamp():
                break
        if best is None or fire.timestamp() < best:
            best = fire.timestamp()
    assert best is not None
    return best


texts = specs().map(lambda spec: spec.text) | st.sampled_from(SYNC_MINUTES).map(sync_text)


@FAST
@given(texts, st.sampled_from(ZONES), anywhere | near_a_change(DST_ZONES, timedelta(hours=30)))
def test_cron_form_agrees_with_cronsim(text: str, zone: str, t: datetime) -> None:
    schedule = parse(f"{text} in {zone}")
    lines = schedule.cron()
    assert lines is not None
    current = t
    for _ in range(4):
        if _repeated(current, schedule.zone):
            break  # cron fires a repeated wall time twice; Odin once (docs/schedules.md, DST)
        ours = schedule.next_after(current)
        assert ours is not None
        if _repeated(ours, schedule.zone):
            break
        assert ours.timestamp() == cronsim_next(lines, current, schedule.zone), (lines, current)
        current = ours


def _repeated(t: datetime, zone: ZoneInfo) -> bool:
    """``t``'s wall time is one that fall-back repeats (either of its two passes)."""
    local = t.astimezone(zone)
    other = local.replace(fold=1 - local.fold)
    return local.utcoffset() != other.utcoffset()


@FAST
@given(texts, st.sampled_from(ZONES))
def test_canonical_text_reads_back_and_syntaxes_stay_apart(text: str, zone: str) -> None:
    schedule = parse(text, zone)
    assert parse(schedule.describe(), zone).rules == schedule.rules
    assert not is_cron(text)
    with pytest.raises(ScheduleError):
        parse_event(text)
    rules = (parse_appengine(text)[0],)
    try:
        english = Parser(text).schedule().rules
    except ScheduleError:
        assert syntax_of(text) is Syntax.APPENGINE
        assert schedule.rules == rules
        return
    # Where English reads an App Engine text, it builds the rule App Engine's reading builds.
    assert syntax_of(text) is Syntax.ENGLISH
    assert english == rules
    assert isinstance(rules[0], CalendarRule)


@FAST
@given(texts)
def test_the_rule_is_what_english_cannot_say(text: str) -> None:
    """An ``AppEngineRule`` has chosen months; on every month the rule is English's."""
    rule = parse(text).rules[0]
    if isinstance(rule, AppEngineRule):
        assert rule.months != frozenset(range(1, 13))
    else:
        assert isinstance(rule, CalendarRule | SynchronizedRule)
