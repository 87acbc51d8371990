"""Golden tests of the English forms of the second edition: day filters on intervals,
minutes past the hour, times with seconds and the nth weekday of a month; their DST
behaviour in two zones, their errors, and what ``odin schedule`` says about them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from odin.cli.schedule_cmd import schedule as schedule_command
from odin.errors import ScheduleError
from odin.schedule import Syntax, parse, syntax_of
from odin.schedule.clock import ClockRule, HourlyRule
from odin.schedule.days import NthWeekdays
from odin.schedule.rules import CalendarRule, IntervalRule

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # a Saturday


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def next3(text: str, start: datetime = START, tz: str = "UTC") -> list[str]:
    fires = parse(text, tz).next_n(start, 3)
    return [f.astimezone(UTC).replace(tzinfo=None).isoformat() for f in fires]


# text, next three fires after START (UTC), canonical description, cron form
GOLDEN: list[tuple[str, list[str], str, list[str] | None]] = [
    (
        "every 10 minutes on weekdays",
        ["2025-03-03T00:00:00", "2025-03-03T00:10:00", "2025-03-03T00:20:00"],
        "every 10 minutes on weekdays",
        ["*/10 * * * 1,2,3,4,5"],
    ),
    (
        "every hour between 09:00 and 17:00 on Mon, Wed and Fri",
        ["2025-03-03T09:00:00", "2025-03-03T10:00:00", "2025-03-03T11:00:00"],
        "every hour between 09:00 and 17:00 on Monday, Wednesday and Friday",
        None,
    ),
    (
        "every 15 minutes on weekends between 09:00 and 17:00",
        ["2025-03-01T12:15:00", "2025-03-01T12:30:00", "2025-03-01T12:45:00"],
        "every 15 minutes between 09:00 and 17:00 on Saturday and Sunday",
        ["*/15 9-16 * * 0,6", "0 17 * * 0,6"],
    ),
    (
        "every 30 seconds on the 1st",
        ["2025-03-01T12:00:30", "2025-03-01T12:01:00", "2025-03-01T12:01:30"],
        "every 30 seconds on the 1st",
        ["*/30 * * 1 * *"],
    ),
    (
        "every hour on the first Monday",
        ["2025-03-03T00:00:00", "2025-03-03T01:00:00", "2025-03-03T02:00:00"],
        "every hour on the first Monday of the month",
        ["0 * * * 1#1"],
    ),
    (
        "every hour at :30",
        ["2025-03-01T12:30:00", "2025-03-01T13:30:00", "2025-03-01T14:30:00"],
        "every hour at :30",
        ["30 0-23 * * *"],
    ),
    (
        "every 2 hours at :15",
        ["2025-03-01T12:15:00", "2025-03-01T14:15:00", "2025-03-01T16:15:00"],
        "every 2 hours at :15",
        ["15 0-22/2 * * *"],
    ),
    (
        "hourly at :05 and :35 between 22:00 and 01:00 on Fridays",
        ["2025-03-07T22:05:00", "2025-03-07T22:35:00", "2025-03-07T23:05:00"],
        "every hour at :05 and :35 between 22:00 and 01:00 on Friday",
        None,
    ),
    (
        "every 6 hours at :00:30",
        ["2025-03-01T12:00:30", "2025-03-01T18:00:30", "2025-03-02T00:00:30"],
        "every 6 hours at :00:30",
        None,
    ),
    (
        "at 09:00:30",
        ["2025-03-02T09:00:30", "2025-03-03T09:00:30", "2025-03-04T09:00:30"],
        "every day at 09:00:30",
        None,
    ),
    (
        "every Monday at 6:30:15 pm and 07:00",
        ["2025-03-03T07:00:00", "2025-03-03T18:30:15", "2025-03-10T07:00:00"],
        "every Monday at 07:00 and 18:30:15",
        None,
    ),
    (
        "every first Monday at 09:00",
        ["2025-03-03T09:00:00", "2025-04-07T09:00:00", "2025-05-05T09:00:00"],
        "every first Monday of the month at 09:00",
        ["0 9 * * 1#1"],
    ),
    (
        "every last Friday of the month at 17:00",
        ["2025-03-28T17:00:00", "2025-04-25T17:00:00", "2025-05-30T17:00:00"],
        "every last Friday of the month at 17:00",
        ["0 17 * * 5L"],
    ),
    (
        "every 1st and 3rd Monday and last Friday at 9am",
        ["2025-03-03T09:00:00", "2025-03-17T09:00:00", "2025-03-28T09:00:00"],
        "every first and third Monday and last Friday of the month at 09:00",
        ["0 9 * * 1#1,1#3,5L"],
    ),
    (
        "the second Tuesday of the month at 10:00",
        ["2025-03-11T10:00:00", "2025-04-08T10:00:00", "2025-05-13T10:00:00"],
        "every second Tuesday of the month at 10:00",
        ["0 10 * * 2#2"],
    ),
    (
        "every fifth Saturday",
        ["2025-03-29T00:00:00", "2025-05-31T00:00:00", "2025-08-30T00:00:00"],
        "every fifth Saturday of the month at 00:00",
        ["0 0 * * 6#5"],
    ),
]


@pytest.mark.parametrize(("text", "fires", "description", "cron"), GOLDEN)
def test_golden(text: str, fires: list[str], description: str, cron: list[str] | None) -> None:
    schedule = parse(text)
    assert syntax_of(text) is Syntax.ENGLISH
    assert next3(text) == fires
    assert schedule.describe() == description == schedule.explain()
    assert schedule.cron() == cron
    assert parse(description).rules == schedule.rules


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("every 10 minutes on weekdays", IntervalRule),
        ("every 2 hours at :15", HourlyRule),
        ("at 09:00:30", ClockRule),
        ("at 09:00:00", CalendarRule),  # whole minutes: the form of old
        ("every first Monday", CalendarRule),
    ],
)
def test_rule_kinds(text: str, kind: type) -> None:
    assert isinstance(parse(text).rules[0], kind)


def test_forms_that_keep_every_day_are_the_forms_of_old() -> None:
    assert parse("every 10 minutes on every day").rules == parse("every 10 minutes").rules
    assert parse("every hour on weekdays and weekends").rules == parse("every hour").rules
    assert parse("at 09:00:00").rules == parse("at 09:00").rules


def test_day_filter_keeps_a_window_on_the_day_it_opens() -> None:
    # Friday 22:00 to Saturday 01:00; nothing on Thursday night.
    fires = parse("every hour between 22:00 and 01:00 on Fridays").next_n(
        utc("2025-03-06T12:00"), 5
    )
    assert [f.strftime("%a %H:%M") for f in fires] == [
        "Fri 22:00",
        "Fri 23:00",
        "Sat 00:00",
        "Sat 01:00",
        "Fri 22:00",
    ]


def test_nth_weekday_edges() -> None:
    assert NthWeekdays(frozenset({(5, 0)})).describe() == "every fifth Monday of the month"
    # February 2026 has no fifth Monday; March 2026 has one (the 30th).
    assert next3("every fifth Monday at 10:00", utc("2026-02-01T00:00"))[0] == "2026-03-30T10:00:00"
    assert next3("every last Sunday at 01:00", utc("2024-02-01T00:00"))[0] == "2024-02-25T01:00:00"


@pytest.mark.parametrize(
    ("text", "start", "fires"),
    [
        # New York springs forward 2025-03-09 02:00 EST -> 03:00 EDT: 02:30 runs at 03:00.
        (
            "every hour at :30 in America/New_York",
            "2025-03-09T06:00",
            ["2025-03-09T06:30:00", "2025-03-09T07:00:00", "2025-03-09T07:30:00"],
        ),
        # ...and falls back 2025-11-02 02:00 EDT -> 01:00 EST: 01:30 runs once.
        (
            "every hour at :30 in America/New_York",
            "2025-11-02T05:00",
            ["2025-11-02T05:30:00", "2025-11-02T07:30:00", "2025-11-02T08:30:00"],
        ),
        # Dublin springs forward 2025-03-30 01:00 GMT -> 02:00 IST.
        (
            "every day at 01:30:30 in Europe/Dublin",
            "2025-03-29T12:00",
            ["2025-03-30T01:00:00", "2025-03-31T00:30:30", "2025-04-01T00:30:30"],
        ),
        # ...and falls back 2025-10-26 02:00 IST -> 01:00 GMT: the first 01:30:30 only.
        (
            "every day at 01:30:30 in Europe/Dublin",
            "2025-10-26T00:31",
            ["2025-10-27T01:30:30", "2025-10-28T01:30:30", "2025-10-29T01:30:30"],
        ),
        # The nth weekday in a DST change: the last Sunday of March at 01:15 in Dublin.
        (
            "every last Sunday of the month at 01:15 in Europe/Dublin",
            "2025-03-29T00:00",
            ["2025-03-30T01:00:00", "2025-04-27T00:15:00", "2025-05-25T00:15:00"],
        ),
        # An interval stays elapsed time, filtered by the day of its wall clock.
        (
            "every 30 minutes on Sundays in America/New_York",
            "2025-11-02T05:00",
            ["2025-11-02T05:30:00", "2025-11-02T06:00:00", "2025-11-02T06:30:00"],
        ),
    ],
)
def test_dst(text: str, start: str, fires: list[str]) -> None:
    assert next3(text, utc(start)) == fires


@pytest.mark.parametrize(
    ("text", "position", "word"),
    [
        ("every second Tuesday", 6, '"second" alone could mean every other week'),
        ("every 2nd Friday at 10:00", 6, '"2nd" alone could mean every other week'),
        ("every 90 minutes at :15", 17, "needs whole hours"),
        ("every 24 hours at :15", 15, "needs whole hours"),
        ("every hour at 30", 14, "minutes past the hour"),
        ("every hour at :60", 14, '":60" is not a time past the hour'),
        ("every 2 hours at :15 between 09:00 and 09:05", 39, "none of the times"),
        ("every 10 minutes on", 19, "ends too early"),
        ("every 10 minutes on Funday", 20, '"Funday"'),
        ("every 15 minutes between 09:00:30 and 17:00", 25, "a window is whole minutes"),
        ("every day at 09:00:60", 13, '"09:00:60" is not a time of day'),
        ("every sixth Monday", 6, '"sixth"'),
        ("every first weekday at 09:00", 6, '"first"'),
    ],
)
def test_errors(text: str, position: int, word: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text)
    error = caught.value
    assert (error.position, word in str(error)) == (position, True), str(error)
    assert error.expected and error.expected in str(error)


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("every 10 minutes on weekdays", "every 10 minutes on weekdays"),
        (
            "*/15 9-17 * * 1-5",
            "every 15th minute from 09:00 through 17:59 on Monday through Friday",
        ),
        ("Mon..Fri *-*-* 09:00", "at 09:00 on Monday through Friday"),
        ("cron: */20 * * * *", "every 20th minute of every hour"),
    ],
)
def test_odin_schedule_explains_every_syntax(text: str, description: str) -> None:
    args = [text, "--tz", "UTC", "--from", "2025-03-03T08:00:00+00:00", "-n", "2", "-o", "json"]
    result = CliRunner().invoke(schedule_command, args, catch_exceptions=False)
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["description"] == description
    assert len(report["next"]) == 2
