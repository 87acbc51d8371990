"""Bare cron: examples, macros, Vixie cron's day rule, and property tests.

The fires of generated expressions are checked minute by minute against the definition
(written here from the cron man page, with Debian cron's DST handling), in zones with DST,
and against croniter, a second, independent implementation.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from odin.errors import ScheduleError
from odin.schedule import Syntax, parse, syntax_of
from odin.schedule.rules import CronRule
from schedule_oracle import (
    DST_ZONES,
    MINUTE,
    ZONES,
    anywhere,
    chained,
    instant_scan,
    near_a_change,
    wall_scan,
)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # a Saturday
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def utc_fires(text: str, count: int = 3, start: datetime = START, tz: str = "UTC") -> list[str]:
    fires = parse(text, tz).next_n(start, count)
    return [f.astimezone(UTC).replace(tzinfo=None).isoformat() for f in fires]


@pytest.mark.parametrize(
    ("text", "fires", "explained"),
    [
        (
            "*/15 9-17 * * 1-5",
            ["2025-03-03T09:00:00", "2025-03-03T09:15:00", "2025-03-03T09:30:00"],
            "every 15th minute from 09:00 through 17:59 on Monday through Friday",
        ),
        ("0 9 * * mon-fri", ["2025-03-03T09:00:00", "2025-03-04T09:00:00", "2025-03-05T09:00:00"], "at 09:00 on Monday through Friday"),
        # Vixie cron: both day fields restricted, so either fires (the 1st, the 15th, Mondays).
        ("0 0 1,15 * 1", ["2025-03-03T00:00:00", "2025-03-10T00:00:00", "2025-03-15T00:00:00"], "at 00:00 on the first and the 15th day of month and on Monday"),
        # ...but a day field that starts with * makes it "and": odd days that are Mondays.
        ("0 0 */2 * 1", ["2025-03-03T00:00:00", "2025-03-17T00:00:00", "2025-03-31T00:00:00"], None),
        ("@hourly", ["2025-03-01T13:00:00", "2025-03-01T14:00:00", "2025-03-01T15:00:00"], "at the start of every hour"),
        ("@daily", ["2025-03-02T00:00:00", "2025-03-03T00:00:00", "2025-03-04T00:00:00"], "at 00:00 every day"),
        ("@midnight", ["2025-03-02T00:00:00", "2025-03-03T00:00:00", "2025-03-04T00:00:00"], "at 00:00 every day"),
        ("@weekly", ["2025-03-02T00:00:00", "2025-03-09T00:00:00", "2025-03-16T00:00:00"], "at 00:00 on Sunday"),
        ("@monthly", ["2025-04-01T00:00:00", "2025-05-01T00:00:00", "2025-06-01T00:00:00"], "at 00:00 on the first day of every month"),
        ("@yearly", ["2026-01-01T00:00:00", "2027-01-01T00:00:00", "2028-01-01T00:00:00"], "at 00:00 on January 1"),
        ("@ANNUALLY", ["2026-01-01T00:00:00", "2027-01-01T00:00:00", "2028-01-01T00:00:00"], "at 00:00 on January 1"),
    ],
)  # fmt: skip
def test_examples(text: str, fires: list[str], explained: str | None) -> None:
    schedule = parse(text)
    assert syntax_of(text) is Syntax.CRON
    assert utc_fires(text) == fires
    assert isinstance(schedule.rules[0], CronRule)
    if explained is not None:
        assert schedule.explain() == explained
    assert parse(schedule.describe()).rules == schedule.rules  # "cron: ..." reads back
    assert schedule.cron() == [schedule.rules[0].expression]


def test_bare_and_prefixed_cron_are_the_same_rule() -> None:
    assert parse("*/15 9-17 * * 1-5").rules == parse("cron: */15 9-17 * * 1-5").rules
    assert parse("@daily").rules == parse("0 0 * * *").rules == parse("cron: 0 0 * * *").rules


def test_zone_suffix() -> None:
    schedule = parse("30 2 * * * in America/New_York")
    assert schedule.timezone == "America/New_York"
    assert utc_fires("@daily in Europe/Dublin", 1, datetime(2025, 7, 1, tzinfo=UTC)) == [
        "2025-07-01T23:00:00"
    ]


def test_dst_like_debian_cron() -> None:
    ny = datetime(2025, 3, 9, 5, 0, tzinfo=UTC)  # New York springs forward at 07:00Z
    # A fixed time in the gap runs once, when the gap ends.
    assert utc_fires("30 2 * * * in America/New_York", 2, ny) == [
        "2025-03-09T07:00:00",
        "2025-03-10T06:30:00",
    ]
    # An hourly job (hour field "*") follows real time: 02:30 does not exist that day.
    assert utc_fires("30 * * * * in America/New_York", 3, ny) == [
        "2025-03-09T05:30:00",
        "2025-03-09T06:30:00",
        "2025-03-09T07:30:00",
    ]
    fall = datetime(2025, 11, 2, 4, 0, tzinfo=UTC)  # New York falls back at 06:00Z
    assert utc_fires("30 1 * * * in America/New_York", 2, fall) == [
        "2025-11-02T05:30:00",
        "2025-11-03T06:30:00",
    ]
    assert utc_fires("30 * * * * in America/New_York", 3, fall) == [
        "2025-11-02T04:30:00",
        "2025-11-02T05:30:00",
        "2025-11-02T06:30:00",  # 01:30 again, in the repeated hour
    ]


@pytest.mark.parametrize(
    ("text", "position", "word"),
    [
        ("*/15 9-17 * *", 0, "5 fields"),
        ("0 9 * * 1-5 *", 0, "for seconds, write cron:"),
        ("61 * * * *", 0, "invalid cron"),
        ("0 25 * * *", 0, "invalid cron"),
        ("0 0 30 2 *", 0, "invalid cron"),
        ("0 0 * * 8", 0, "invalid cron"),
        ("@reboot", 0, "@reboot"),
        ("@daily 5", 0, "@daily 5"),
        ("  @every 5m", 2, "@every"),
        ("*/5 * * * * in Mars/Olympus", 15, "Mars/Olympus"),
    ],
)
def test_errors(text: str, position: int, word: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text)
    assert caught.value.position == position
    assert word in str(caught.value)
    assert caught.value.expected in str(caught.value)


# --- property tests ------------------------------------------------------------------------

MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


@st.composite
def field(
    draw: st.DrawFn, low: int, high: int, names: list[str] | None = None, stars: int = 1
) -> tuple[str, frozenset[int]]:
    """One cron field and the values it allows, built together."""

    def number(value: int) -> str:
        if names is not None and draw(st.booleans()) and value - low < len(names):
            return names[value - low]
        return str(value)

    kind = draw(st.sampled_from(["*"] * stars + ["*/n", "n", "a-b", "a-b/n", "list"]))
    if kind == "*":
        return "*", frozenset(range(low, high + 1))
    if kind == "*/n":
        step = draw(st.integers(1, high - low + 1))
        return f"*/{step}", frozenset(range(low, high + 1, step))
    items: list[tuple[str, frozenset[int]]] = []
    for _ in range(draw(st.integers(2, 3)) if kind == "list" else 1):
        a = draw(st.integers(low, high))
        if kind == "n" or (kind == "list" and draw(st.booleans())):
            items.append((number(a), frozenset({a})))
            continue
        b = draw(st.integers(a, high))
        step = draw(st.integers(1, 5)) if kind == "a-b/n" else 1
        text = f"{number(a)}-{number(b)}" + (f"/{step}" if kind == "a-b/n" else "")
        items.append((text, frozenset(range(a, b + 1, step))))
    return ",".join(t for t, _ in items), frozenset().union(*(v for _, v in items))


@st.composite
def expressions(draw: st.DrawFn) -> tuple[str, list[tuple[str, frozenset[int]]]]:
    fields = [
        draw(field(0, 59)),
        draw(field(0, 23)),
        draw(field(1, 31, stars=5)),  # many stars in the day fields, so that fires are near
        draw(field(1, 12, MONTH_NAMES, stars=8)),
        draw(field(0, 7, DAY_NAMES, stars=3)),
    ]
    return " ".join(text for text, _ in fields), fields


def cron_matches(
    fields: list[tuple[str, frozenset[int]]], day: date, hour: int, minute: int
) -> bool:
    """crontab(5): minute, hour and month must match; the days match as Vixie cron has it."""
    (_, minutes), (_, hours), (dom_text, doms), (_, months), (dow_text, dows) = fields
    if minute not in minutes or hour not in hours or day.month not in months:
        return False
    dom_ok = day.day in doms
    dow_ok = (day.weekday() + 1) % 7 in {d % 7 for d in dows}
    if dom_text.startswith("*") or dow_text.startswith("*"):
        return dom_ok and dow_ok
    return dom_ok or dow_ok


def brute(
    expression: str, fields: list[tuple[str, frozenset[int]]], zone: str, t: datetime
) -> list[float]:
    """Debian cron: a job with a fixed minute and hour keeps to the wall clock (a time skipped
    by DST runs when the gap ends, a repeated one runs once); any other follows real time."""
    tz, horizon = ZoneInfo(zone), timedelta(days=2)
    minute_text, hour_text = expression.split()[:2]
    if not minute_text.startswith("*") and not hour_text.startswith("*"):
        return wall_scan(
            lambda d, s: s % 60 == 0 and cron_matches(fields, d, s // 3600, s // 60 % 60),
            tz, t, horizon, MINUTE,
        )  # fmt: skip

    def fires(instant: datetime) -> bool:
        local = instant.astimezone(tz)
        return cron_matches(fields, local.date(), local.hour, local.minute)

    return instant_scan(fires, t, horizon, MINUTE)


def cron_schedule(expression: str, zone: str) -> object:
    try:
        return parse(f"{expression} in {zone}")
    except ScheduleError:
        assume(False)  # e.g. "0 0 31 2 *" never fires
        raise


@FAST
@given(
    expressions(), st.sampled_from(ZONES), anywhere | near_a_change(DST_ZONES, timedelta(hours=30))
)
def test_bare_cron_matches_minute_scan(
    case: tuple[str, list[tuple[str, frozenset[int]]]], zone: str, t: datetime
) -> None:
    expression, fields = case
    schedule = cron_schedule(expression, zone)
    ours = chained(schedule, t, timedelta(days=2))  # type: ignore[arg-type]
    assert ours == brute(expression, fields, zone, t), (expression, zone, t)


def has_one_value_range(expression: str) -> bool:
    def value(word: str) -> int:
        for names, first in ((MONTH_NAMES, 1), (DAY_NAMES, 0)):
            if word in names:
                return names.index(word) + first
        return int(word)

    for term in re.split(r"[ ,]", expression):
        match = re.fullmatch(r"(\w+)-(\w+)(?:/\d+)?", term)
        if match and value(match.group(1)) == value(match.group(2)):
            return True
    return False


@FAST
@given(expressions(), anywhere)
def test_bare_cron_agrees_with_croniter(
    case: tuple[str, list[tuple[str, frozenset[int]]]], t: datetime
) -> None:
    expression, _ = case
    dom, dow = expression.split()[2], expression.split()[4]
    # croniter reads "*/2" in a day field as a restriction ("or"), Vixie cron as a star ("and"),
    # and croniter 7.0 reads a range of one value ("5-5") as "*".
    assume(dom == "*" or dow == "*" or not (dom.startswith("*") or dow.startswith("*")))
    assume(not has_one_value_range(expression))
    schedule = cron_schedule(expression, "UTC")
    ours = schedule.next_n(t, 5)  # type: ignore[attr-defined]
    theirs = croniter(expression, t.replace(tzinfo=None))
    expected = [theirs.get_next(datetime) for _ in ours]
    assert [f.replace(tzinfo=None) for f in ours] == expected, (expression, t)


@FAST
@given(expressions())
def test_cron_explains_itself(case: tuple[str, list[tuple[str, frozenset[int]]]]) -> None:
    schedule = cron_schedule(case[0], "UTC")
    text = schedule.explain()  # type: ignore[attr-defined]
    assert text and text[0].islower()
