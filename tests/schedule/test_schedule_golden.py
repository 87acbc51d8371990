"""Golden tests of the schedule language: every documented example and extension,
the original parser's bugs, DST in two zones, leap years, month ends, and errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from odin import config
from odin.errors import InvalidInput, ScheduleError
from odin.schedule import parse
from odin.schedule.rules import CalendarRule, CronRule, IntervalRule
from odin.schedule.words import MONTH_NAMES

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # a Saturday


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def next3(text: str, start: datetime = START, tz: str = "UTC") -> list[str]:
    """The next three fire times, as UTC ISO strings without the offset."""
    fires = parse(text, tz).next_n(start, 3)
    return [f.astimezone(UTC).replace(tzinfo=None).isoformat() for f in fires]


# text, next three fires after START (UTC), canonical description, cron form
GOLDEN: list[tuple[str, list[str], str, list[str] | None]] = [
    # The documented examples (docs/schedules.md).
    (
        "every minute",
        ["2025-03-01T12:01:00", "2025-03-01T12:02:00", "2025-03-01T12:03:00"],
        "every minute",
        ["* * * * *"],
    ),
    (
        "every hour",
        ["2025-03-01T13:00:00", "2025-03-01T14:00:00", "2025-03-01T15:00:00"],
        "every hour",
        ["0 * * * *"],
    ),
    (
        "everyday at 21:15",
        ["2025-03-01T21:15:00", "2025-03-02T21:15:00", "2025-03-03T21:15:00"],
        "every day at 21:15",
        ["15 21 * * *"],
    ),
    (
        "every Wednesday at 14:00",
        ["2025-03-05T14:00:00", "2025-03-12T14:00:00", "2025-03-19T14:00:00"],
        "every Wednesday at 14:00",
        ["0 14 * * 3"],
    ),
    (
        "every 23rd at 13:05",
        ["2025-03-23T13:05:00", "2025-04-23T13:05:00", "2025-05-23T13:05:00"],
        "every 23rd at 13:05",
        ["5 13 23 * *"],
    ),
    (
        "every January 4th at 13:15",
        ["2026-01-04T13:15:00", "2027-01-04T13:15:00", "2028-01-04T13:15:00"],
        "every January 4th at 13:15",
        ["15 13 4 1 *"],
    ),
    (
        "every Monday at 09:30 and every Friday at 17:00",
        ["2025-03-03T09:30:00", "2025-03-07T17:00:00", "2025-03-10T09:30:00"],
        "every Monday at 09:30 and every Friday at 17:00",
        ["30 9 * * 1", "0 17 * * 5"],
    ),
    (
        "every 1st at 08:00 and every 15th at 08:00",
        ["2025-03-15T08:00:00", "2025-04-01T08:00:00", "2025-04-15T08:00:00"],
        "every 1st at 08:00 and every 15th at 08:00",
        ["0 8 1 * *", "0 8 15 * *"],
    ),
    ("never", [], "never", None),
    # What the original parser got wrong.
    (
        "every Saturday",
        ["2025-03-08T00:00:00", "2025-03-15T00:00:00", "2025-03-22T00:00:00"],
        "every Saturday at 00:00",
        ["0 0 * * 6"],
    ),
    (
        "every day at 00:00",
        ["2025-03-02T00:00:00", "2025-03-03T00:00:00", "2025-03-04T00:00:00"],
        "every day at 00:00",
        ["0 0 * * *"],
    ),
    (
        "every day at 13:13",
        ["2025-03-01T13:13:00", "2025-03-02T13:13:00", "2025-03-03T13:13:00"],
        "every day at 13:13",
        ["13 13 * * *"],
    ),
    (
        "every 22nd at 10:00",
        ["2025-03-22T10:00:00", "2025-04-22T10:00:00", "2025-05-22T10:00:00"],
        "every 22nd at 10:00",
        ["0 10 22 * *"],
    ),
    (
        "every July 4th at 09:00",
        ["2025-07-04T09:00:00", "2026-07-04T09:00:00", "2027-07-04T09:00:00"],
        "every July 4th at 09:00",
        ["0 9 4 7 *"],
    ),
    (
        "every March 21st",
        ["2025-03-21T00:00:00", "2026-03-21T00:00:00", "2027-03-21T00:00:00"],
        "every March 21st at 00:00",
        ["0 0 21 3 *"],
    ),
    (
        "EVERY sat AT 6PM",
        ["2025-03-01T18:00:00", "2025-03-08T18:00:00", "2025-03-15T18:00:00"],
        "every Saturday at 18:00",
        ["0 18 * * 6"],
    ),
    # Extensions.
    (
        "every 10 seconds",
        ["2025-03-01T12:00:10", "2025-03-01T12:00:20", "2025-03-01T12:00:30"],
        "every 10 seconds",
        ["*/10 * * * * *"],
    ),
    (
        "every second",
        ["2025-03-01T12:00:01", "2025-03-01T12:00:02", "2025-03-01T12:00:03"],
        "every second",
        ["* * * * * *"],
    ),
    (
        "every 15 minutes",
        ["2025-03-01T12:15:00", "2025-03-01T12:30:00", "2025-03-01T12:45:00"],
        "every 15 minutes",
        ["*/15 * * * *"],
    ),
    (
        "every 2 hours",
        ["2025-03-01T14:00:00", "2025-03-01T16:00:00", "2025-03-01T18:00:00"],
        "every 2 hours",
        ["0 */2 * * *"],
    ),
    (
        "every 7 minutes",
        ["2025-03-01T12:05:00", "2025-03-01T12:12:00", "2025-03-01T12:19:00"],
        "every 7 minutes",
        None,
    ),
    (
        "every 3 days at 10:00",
        ["2025-03-04T10:00:00", "2025-03-07T10:00:00", "2025-03-10T10:00:00"],
        "every 3 days at 10:00",
        None,
    ),
    (
        "every day",
        ["2025-03-02T00:00:00", "2025-03-03T00:00:00", "2025-03-04T00:00:00"],
        "every day at 00:00",
        ["0 0 * * *"],
    ),
    (
        "daily at 7am",
        ["2025-03-02T07:00:00", "2025-03-03T07:00:00", "2025-03-04T07:00:00"],
        "every day at 07:00",
        ["0 7 * * *"],
    ),
    (
        "hourly",
        ["2025-03-01T13:00:00", "2025-03-01T14:00:00", "2025-03-01T15:00:00"],
        "every hour",
        ["0 * * * *"],
    ),
    (
        "every weekday at 9am",
        ["2025-03-03T09:00:00", "2025-03-04T09:00:00", "2025-03-05T09:00:00"],
        "every weekday at 09:00",
        ["0 9 * * 1,2,3,4,5"],
    ),
    (
        "weekends at noon",
        ["2025-03-02T12:00:00", "2025-03-08T12:00:00", "2025-03-09T12:00:00"],
        "every Saturday and Sunday at 12:00",
        ["0 12 * * 0,6"],
    ),
    (
        "every Monday and Friday at 10:00",
        ["2025-03-03T10:00:00", "2025-03-07T10:00:00", "2025-03-10T10:00:00"],
        "every Monday and Friday at 10:00",
        ["0 10 * * 1,5"],
    ),
    (
        "every Mon, Wed and Fri at 9am",
        ["2025-03-03T09:00:00", "2025-03-05T09:00:00", "2025-03-07T09:00:00"],
        "every Monday, Wednesday and Friday at 09:00",
        ["0 9 * * 1,3,5"],
    ),
    (
        "at 09:00 and 17:30",
        ["2025-03-01T17:30:00", "2025-03-02T09:00:00", "2025-03-02T17:30:00"],
        "every day at 09:00 and 17:30",
        ["0 9 * * *", "30 17 * * *"],
    ),
    (
        "every day at 6:30 am and 6pm",
        ["2025-03-01T18:00:00", "2025-03-02T06:30:00", "2025-03-02T18:00:00"],
        "every day at 06:30 and 18:00",
        ["30 6 * * *", "0 18 * * *"],
    ),
    (
        "at midnight and noon",
        ["2025-03-02T00:00:00", "2025-03-02T12:00:00", "2025-03-03T00:00:00"],
        "every day at 00:00 and 12:00",
        ["0 0,12 * * *"],
    ),
    (
        "at 12am every Sunday",
        ["2025-03-02T00:00:00", "2025-03-09T00:00:00", "2025-03-16T00:00:00"],
        "every Sunday at 00:00",
        ["0 0 * * 0"],
    ),
    (
        "last day of the month at 23:00",
        ["2025-03-31T23:00:00", "2025-04-30T23:00:00", "2025-05-31T23:00:00"],
        "every last day of the month at 23:00",
        ["0 23 L * *"],
    ),
    (
        "every 1st, 15th and last day of the month at 08:00",
        ["2025-03-15T08:00:00", "2025-03-31T08:00:00", "2025-04-01T08:00:00"],
        "every 1st, 15th and last day of the month at 08:00",
        ["0 8 1,15,L * *"],
    ),
    (
        "every 15 minutes between 09:00 and 17:00",
        ["2025-03-01T12:15:00", "2025-03-01T12:30:00", "2025-03-01T12:45:00"],
        "every 15 minutes between 09:00 and 17:00",
        ["*/15 9-16 * * *", "0 17 * * *"],
    ),
    (
        "every 4 hours from 13:00 to 21:00",
        ["2025-03-01T16:00:00", "2025-03-01T20:00:00", "2025-03-02T16:00:00"],
        "every 4 hours between 13:00 and 21:00",
        None,
    ),
    (
        "every 10 minutes from 23:50 until 00:10",
        ["2025-03-01T23:50:00", "2025-03-02T00:00:00", "2025-03-02T00:10:00"],
        "every 10 minutes between 23:50 and 00:10",
        None,
    ),
    (
        "every 4th of July at noon",
        ["2025-07-04T12:00:00", "2026-07-04T12:00:00", "2027-07-04T12:00:00"],
        "every July 4th at 12:00",
        ["0 12 4 7 *"],
    ),
    (
        "every Jan 1st and 15th and Jul 1st at 10:00",
        ["2025-07-01T10:00:00", "2026-01-01T10:00:00", "2026-01-15T10:00:00"],
        "every January 1st, January 15th and July 1st at 10:00",
        ["0 10 1,15 1 *", "0 10 1 7 *"],
    ),
    (
        "every other day at 10:00",
        ["2025-03-03T10:00:00", "2025-03-05T10:00:00", "2025-03-07T10:00:00"],
        "every 2 days at 10:00",
        None,
    ),
    (
        "cron: */20 * * * *",
        ["2025-03-01T12:20:00", "2025-03-01T12:40:00", "2025-03-01T13:00:00"],
        "cron: */20 * * * *",
        ["*/20 * * * *"],
    ),
    (
        "cron: 30 0 12 * * *",
        ["2025-03-01T12:00:30", "2025-03-02T12:00:30", "2025-03-03T12:00:30"],
        "cron: 30 0 12 * * *",
        ["30 0 12 * * *"],
    ),
]


@pytest.mark.parametrize(("text", "fires", "description", "cron"), GOLDEN)
def test_golden(text: str, fires: list[str], description: str, cron: list[str] | None) -> None:
    schedule = parse(text)
    assert next3(text) == fires
    assert schedule.describe() == description
    assert schedule.cron() == cron
    assert parse(description).rules == schedule.rules  # the description reads back the same


@pytest.mark.parametrize(
    ("text", "rules", "kind"),
    [
        ("every Monday at 09:00 and 17:30", 1, CalendarRule),  # "and" joins times
        ("every Monday and Friday at 10:00", 1, CalendarRule),  # "and" joins days
        ("every Monday at 09:30 and every Friday at 17:00", 2, CalendarRule),  # joins rules
        ("every Monday at 9am and Friday at 5pm", 2, CalendarRule),
        ("every 1st and 15th at 08:00", 1, CalendarRule),
        ("every 15 minutes between 09:00 and 17:00 and every day at 20:00", 2, IntervalRule),
        ("at 9am and 5pm every weekday", 1, CalendarRule),
        ("at 9 and 17", 1, CalendarRule),
        ("cron: 0 9 * * 1-5", 1, CronRule),
    ],
)
def test_and_is_read_as_written(text: str, rules: int, kind: type) -> None:
    schedule = parse(text)
    assert len(schedule.rules) == rules
    assert isinstance(schedule.rules[0], kind)


def test_case_and_abbreviations_do_not_matter() -> None:
    base = parse("every Monday, Wednesday and Friday at 09:00").rules
    assert parse("EVERY mon, WED AND fri AT 9AM").rules == base
    assert parse("every mondays, weds and fridays at 9 am").rules == base
    assert parse("every Sept 1st").rules == parse("every september 1st").rules


@pytest.mark.parametrize("day", range(1, 32))
def test_every_ordinal_parses(day: int) -> None:
    suffix = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}.get(day, "th")
    fires = parse(f"every {day}{suffix} at 10:00").next_n(START, 2)
    assert all(f.day == day for f in fires)


@pytest.mark.parametrize(
    "month",
    MONTH_NAMES[1:],
)
def test_every_month_name_and_abbreviation(month: str) -> None:
    full = parse(f"every {month} 9th")
    assert parse(f"every {month[:3]} 9th").rules == full.rules
    fire = full.next_after(START)
    assert fire is not None and fire.day == 9 and fire.strftime("%B") == month


def test_time_zone_suffix_and_default() -> None:
    dublin = parse("every day at 09:00 in Europe/Dublin")
    assert dublin.timezone == "Europe/Dublin"
    assert parse("every day at 09:00", "America/New_York").timezone == "America/New_York"
    assert parse("every day at 09:00 in europe/dublin").timezone == "Europe/Dublin"
    fire = dublin.next_after(utc("2025-07-01T12:00"))
    assert fire is not None and fire.isoformat() == "2025-07-02T09:00:00+01:00"


# --- DST: a skipped wall time fires once at the end of the gap; a repeated one once ---


@pytest.mark.parametrize(
    ("text", "start", "fires"),
    [
        # New York springs forward 2025-03-09 02:00 EST -> 03:00 EDT.
        (
            "every day at 02:30 in America/New_York",
            "2025-03-08T12:00",
            ["2025-03-09T07:00:00", "2025-03-10T06:30:00", "2025-03-11T06:30:00"],
        ),
        # ...and falls back 2025-11-02 02:00 EDT -> 01:00 EST: 01:30 happens twice, fires once.
        (
            "every day at 01:30 in America/New_York",
            "2025-11-01T12:00",
            ["2025-11-02T05:30:00", "2025-11-03T06:30:00", "2025-11-04T06:30:00"],
        ),
        # Starting inside the second 01:xx hour must not fire the repeated 01:30.
        (
            "every day at 01:30 in America/New_York",
            "2025-11-02T06:15",
            ["2025-11-03T06:30:00", "2025-11-04T06:30:00", "2025-11-05T06:30:00"],
        ),
        # Dublin springs forward 2025-03-30 01:00 GMT -> 02:00 IST.
        (
            "every day at 01:30 in Europe/Dublin",
            "2025-03-29T12:00",
            ["2025-03-30T01:00:00", "2025-03-31T00:30:00", "2025-04-01T00:30:00"],
        ),
        # ...and falls back 2025-10-26 02:00 IST -> 01:00 GMT.
        (
            "every day at 01:30 in Europe/Dublin",
            "2025-10-25T12:00",
            ["2025-10-26T00:30:00", "2025-10-27T01:30:00", "2025-10-28T01:30:00"],
        ),
        # Two wall times in the same gap fire once, together.
        (
            "every day at 02:15 and 02:45 in America/New_York",
            "2025-03-09T05:00",
            ["2025-03-09T07:00:00", "2025-03-10T06:15:00", "2025-03-10T06:45:00"],
        ),
        # Intervals are elapsed time: every 30 minutes through the repeated hour.
        (
            "every 30 minutes in America/New_York",
            "2025-11-02T05:00",
            ["2025-11-02T05:30:00", "2025-11-02T06:00:00", "2025-11-02T06:30:00"],
        ),
        # A window is wall time: 01:00 EST, 03:00 EDT (the gap ate 02:00), then next day.
        (
            "every hour between 01:00 and 03:00 in America/New_York",
            "2025-03-09T04:00",
            ["2025-03-09T06:00:00", "2025-03-09T07:00:00", "2025-03-10T05:00:00"],
        ),
    ],
)
def test_dst(text: str, start: str, fires: list[str]) -> None:
    assert next3(text, utc(start)) == fires


def test_dst_results_agree_with_cronsim() -> None:
    from cronsim import CronSim

    for zone in ("America/New_York", "Europe/Dublin"):
        schedule = parse("every day at 01:30 and 02:30", zone)
        t = utc("2025-01-01T00:00")
        lines = schedule.cron()
        assert lines == ["30 1,2 * * *"]
        reference = CronSim(lines[0], t.astimezone(schedule.zone))
        ours = schedule.next_n(t, 730)
        theirs = [next(reference) for _ in range(800)]
        seen = sorted({f.timestamp() for f in theirs})[: len(ours)]
        assert [f.timestamp() for f in ours] == seen


# --- Calendar edges -----------------------------------------------------------------------


def test_leap_years() -> None:
    assert next3("every February 29th at 12:00", utc("2024-03-01T00:00")) == [
        "2028-02-29T12:00:00",
        "2032-02-29T12:00:00",
        "2036-02-29T12:00:00",
    ]
    # 2100 is not a leap year: from 2096 the next is 2104.
    fire = parse("every Feb 29").next_after(utc("2096-03-01T00:00"))
    assert fire is not None and fire.date().isoformat() == "2104-02-29"


def test_month_ends() -> None:
    assert next3("every 31st at 10:00", utc("2025-04-01T00:00")) == [
        "2025-05-31T10:00:00",
        "2025-07-31T10:00:00",
        "2025-08-31T10:00:00",
    ]
    assert next3("every 30th", utc("2025-01-31T00:00")) == [
        "2025-03-30T00:00:00",
        "2025-04-30T00:00:00",
        "2025-05-30T00:00:00",
    ]
    assert next3("last day of the month at 23:00", utc("2024-01-31T23:00")) == [
        "2024-02-29T23:00:00",
        "2024-03-31T23:00:00",
        "2024-04-30T23:00:00",
    ]


def test_never() -> None:
    schedule = parse("never in Europe/Dublin")
    assert schedule.is_never and schedule.rules == ()
    assert schedule.next_after(START) is None
    assert schedule.next_n(START, 5) == []
    assert schedule.cron() is None and schedule.describe() == "never"


def test_next_after_is_strict_and_in_the_zone() -> None:
    schedule = parse("every day at 12:00 in Europe/Dublin")
    noon = utc("2025-01-10T12:00")
    fire = schedule.next_after(noon)
    assert fire is not None and fire.timestamp() > noon.timestamp()
    assert str(fire.tzinfo) == "Europe/Dublin"
    with pytest.raises(InvalidInput):
        schedule.next_after(datetime(2025, 1, 1))


def test_end_of_calendar_is_none_not_a_crash() -> None:
    end = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    for text in ("every minute", "every day at 23:58", "every Dec 31st", "cron: * * * * *"):
        assert parse(text).next_after(end) is None


def test_schedules_are_values() -> None:
    a, b = parse("every day at 09:00"), parse("every day at 09:00")
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.text = "x"  # type: ignore[misc]


# --- Errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "word", "suggestion"),
    [
        ("every Satruday", 6, "Satruday", "Saturday"),
        ("every mondya at 10:00", 6, "mondya", "Monday"),
        ("every day at 10:00 and evry Friday", 23, "evry", "every"),
        ("every Februray 3rd", 6, "Februray", "February"),
        ("every Feb 30th", 10, "February 30th", None),
        ("every February 31st", 15, "February 31st", None),
        ("every April 31st", 12, "April 31st", None),
        ("every 32nd", 6, "32nd", None),
        ("every day at 25:00", 13, "25:00", None),
        ("every day at 13pm", 13, "13pm", None),
        ("every 0 minutes", 6, "at least 1", None),
        ("every 400 days", 6, "too long", None),
        ("every 15 minutes between 09:00 and 09:05", 35, "shorter", None),
        ("every day in Europe/Dubln", 13, "Europe/Dubln", "Europe/Dublin"),
        ("every July", 10, "July", None),
        ("every day at", 12, "ends too early", None),
        ("", 0, "empty", None),
        ("cron: * * *", 5, "5 or 6 fields", None),
        ("cron: 61 * * * *", 5, "invalid cron", None),
        ("cron: 0 0 30 2 *", 5, "invalid cron", None),
    ],
)
def test_errors_say_where_and_what(
    text: str, position: int, word: str, suggestion: str | None
) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text)
    error = caught.value
    assert error.position == position
    assert word in str(error)
    assert f"position {position}" in str(error)
    assert error.expected and error.expected in str(error)
    assert error.suggestion == suggestion
    if suggestion:
        assert f'did you mean "{suggestion}"' in str(error)


def test_unknown_default_zone_is_a_schedule_error() -> None:
    with pytest.raises(ScheduleError, match="Mars/Olympus"):
        parse("every day", "Mars/Olympus")


def test_length_is_capped() -> None:
    with pytest.raises(ScheduleError, match="longer than"):
        parse("every day at 09:00 " * (config.MAX_SCHEDULE_CHARS // 10))


def test_the_package_is_pure() -> None:
    """No clock reads, no I/O, no asyncio in odin.schedule (docs/architecture.md: pure)."""
    import pathlib

    import odin.schedule

    banned = ("datetime.now", "time.time", "import time", "import asyncio", "open(", "import os")
    for path in pathlib.Path(odin.schedule.__file__).parent.glob("*.py"):
        source = path.read_text()
        assert not [word for word in banned if word in source], path.name
