"""systemd calendar events (``OnCalendar=``): examples, errors, and property tests.

Generated events are checked against the definition minute by minute (second by second
when seconds matter), in zones with DST, and against ``systemd-analyze calendar`` where it
is installed: the same fires, except that Odin runs a wall time skipped by a
spring-forward gap when the gap ends, where systemd skips it; and the same texts accepted.
"""

from __future__ import annotations

import calendar
import os
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from odin.errors import ScheduleError
from odin.schedule import Schedule, Syntax, parse, syntax_of
from odin.schedule.oncalendar import SHORTHANDS, parse_event
from odin.schedule.systemd import OnCalendarRule
from schedule_oracle import (
    DST_ZONES,
    MINUTE,
    SECOND,
    ZONES,
    anywhere,
    chained,
    near_a_change,
    second_of_day,
    wall_scan,
)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # a Saturday
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not here")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def utc_fires(text: str, count: int = 3, start: datetime = START, tz: str = "UTC") -> list[str]:
    fires = parse(text, tz).next_n(start, count)
    return [f.astimezone(UTC).replace(tzinfo=None).isoformat() for f in fires]


@pytest.mark.parametrize(
    ("text", "fires", "canonical", "explained"),
    [
        ("Mon..Fri *-*-* 09:00", ["2025-03-03T09:00:00", "2025-03-04T09:00:00", "2025-03-05T09:00:00"], "Mon..Fri *-*-* 09:00:00", "at 09:00 on Monday through Friday"),
        ("*-*-01 00:00:00", ["2025-04-01T00:00:00", "2025-05-01T00:00:00", "2025-06-01T00:00:00"], "*-*-01 00:00:00", "at 00:00 on the 1st of every month"),
        ("weekly", ["2025-03-03T00:00:00", "2025-03-10T00:00:00", "2025-03-17T00:00:00"], "Mon *-*-* 00:00:00", "at 00:00 on Monday"),
        ("monthly", ["2025-04-01T00:00:00", "2025-05-01T00:00:00", "2025-06-01T00:00:00"], "*-*-01 00:00:00", "at 00:00 on the 1st of every month"),
        ("quarterly", ["2025-04-01T00:00:00", "2025-07-01T00:00:00", "2025-10-01T00:00:00"], "*-01/3-01 00:00:00", "at 00:00 on the 1st of January, April, July and October"),
        ("semiannually", ["2025-07-01T00:00:00", "2026-01-01T00:00:00", "2026-07-01T00:00:00"], "*-01,07-01 00:00:00", "at 00:00 on the 1st of January and July"),
        ("yearly", ["2026-01-01T00:00:00", "2027-01-01T00:00:00", "2028-01-01T00:00:00"], "*-01-01 00:00:00", "at 00:00 on the 1st of January"),
        ("annually", ["2026-01-01T00:00:00", "2027-01-01T00:00:00", "2028-01-01T00:00:00"], "*-01-01 00:00:00", "at 00:00 on the 1st of January"),
        ("minutely", ["2025-03-01T12:01:00", "2025-03-01T12:02:00", "2025-03-01T12:03:00"], "*-*-* *:*:00", "every minute"),
        ("*-*-* *:0/15", ["2025-03-01T12:15:00", "2025-03-01T12:30:00", "2025-03-01T12:45:00"], "*-*-* *:00/15:00", "every 15 minutes"),
        ("Mon..Fri 9..17:0/15", ["2025-03-03T09:00:00", "2025-03-03T09:15:00", "2025-03-03T09:30:00"], "Mon..Fri *-*-* 09..17:00/15:00", "every 15 minutes from 09:00 through 17:45 on Monday through Friday"),
        ("*:*:0/20", ["2025-03-01T12:00:20", "2025-03-01T12:00:40", "2025-03-01T12:01:00"], "*-*-* *:*:00/20", "every 20 seconds"),
        ("12:00:30", ["2025-03-01T12:00:30", "2025-03-02T12:00:30", "2025-03-03T12:00:30"], "*-*-* 12:00:30", "at 12:00:30 every day"),
        ("*-02~01", ["2026-02-28T00:00:00", "2027-02-28T00:00:00", "2028-02-29T00:00:00"], "*-02~01 00:00:00", "at 00:00 on the last day of February"),
        ("Fri *-*~07/1 17:00", ["2025-03-28T17:00:00", "2025-04-25T17:00:00", "2025-05-30T17:00:00"], "Fri *-*~01..07 17:00:00", "at 17:00 on a Friday that is one of the last 7 days of every month"),
        ("Mon *-*-1..7 10:00", ["2025-03-03T10:00:00", "2025-04-07T10:00:00", "2025-05-05T10:00:00"], "Mon *-*-01..07 10:00:00", "at 10:00 on a Monday that is the 1st through 7th of every month"),
        ("2025-12-25 08:00", ["2025-12-25T08:00:00"], "2025-12-25 08:00:00", "at 08:00 on the 25th of December in 2025"),
        ("Sat,Sun 10:00 UTC", ["2025-03-02T10:00:00", "2025-03-08T10:00:00", "2025-03-09T10:00:00"], "Sat,Sun *-*-* 10:00:00", "at 10:00 on Saturday and Sunday"),
        ("Mon-Wed 10:00 UTC", ["2025-03-03T10:00:00", "2025-03-04T10:00:00", "2025-03-05T10:00:00"], "Mon..Wed *-*-* 10:00:00", "at 10:00 on Monday through Wednesday"),
    ],
)  # fmt: skip
def test_examples(text: str, fires: list[str], canonical: str, explained: str) -> None:
    schedule = parse(text)
    assert syntax_of(text) is Syntax.SYSTEMD
    assert utc_fires(text) == fires
    assert schedule.describe() == canonical
    assert schedule.explain() == explained
    assert parse(canonical).rules == schedule.rules


def test_zone_in_the_text() -> None:
    assert parse("Mon 09:00 Europe/Dublin").timezone == "Europe/Dublin"
    assert parse("weekly UTC", "Asia/Tokyo").timezone == "UTC"
    assert parse("Mon..Fri 09:00 in America/New_York").timezone == "America/New_York"
    assert utc_fires("*-*-* 09:00 America/New_York", 1, datetime(2025, 7, 1, tzinfo=UTC)) == [
        "2025-07-01T13:00:00"
    ]


def test_english_keeps_the_texts_it_reads() -> None:
    """``Sat,Sun 10:00``, ``daily`` and ``hourly`` read as English, with the same fires."""
    assert syntax_of("Sat,Sun 10:00") is Syntax.ENGLISH
    assert syntax_of("daily") is Syntax.ENGLISH
    assert syntax_of("hourly") is Syntax.ENGLISH
    for text in ("Sat,Sun 10:00", "daily", "Mon 09:30:15", "Sunday"):
        english, systemd = parse(text, "Europe/Dublin"), systemd_reading(text, "Europe/Dublin")
        assert english.next_n(START, 20) == systemd.next_n(START, 20)


def test_cron_form_only_when_cron_can_say_it() -> None:
    assert parse("Mon..Fri 09:00").cron() == ["0 9 * * 1-5"]
    assert parse("*-*~01 23:00").cron() == ["0 23 L * *"]
    assert parse("Mon *-*-1..7 10:00").cron() is None  # cron would take the Mondays or the days
    assert parse("2025-*-* 10:00").cron() is None
    assert parse("*:*:30").cron() is None


@pytest.mark.parametrize(
    ("text", "position", "word"),
    [
        ("Mon..Fry 10:00", 5, '"Fry"'),
        ("Fri..Mon 10:00", 8, "forwards"),
        ("*-*-32", 4, '"32" is out of range'),
        ("*-13-01", 2, '"13" is out of range'),
        ("*-*-* 24:00", 6, '"24" is out of range'),
        ("*-*-* 9..17/0:00", 12, "a step of at least 1"),
        ("*-*-* *:*:10.5", 10, "whole seconds"),
        ("*-02-30", 0, "never fires"),
        ("*-*~29", 4, '"29" is out of range'),
        ("2200-01-01", 0, '"2200" is out of range'),
        ("*/15", 1, "-"),
        ("Mon 10:00 Mars/Olympus", 10, "Mars/Olympus"),
        ("weekly in Nowhere/Land", 10, "Nowhere/Land"),
    ],
)
def test_errors(text: str, position: int, word: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text)
    error = caught.value
    assert (error.position, word in str(error)) == (position, True), str(error)
    assert error.expected in str(error)


def test_dst_runs_a_skipped_time_when_the_gap_ends() -> None:
    # New York springs forward 2025-03-09 02:00 EST -> 03:00 EDT; systemd would skip 02:30.
    assert utc_fires("*-*-* 02:30 America/New_York", 2, datetime(2025, 3, 8, 12, tzinfo=UTC)) == [
        "2025-03-09T07:00:00",
        "2025-03-10T06:30:00",
    ]
    # Dublin falls back 2025-10-26 02:00 IST -> 01:00 GMT: the repeated 01:xx run once each.
    assert utc_fires("*-*-* 01:0/30 Europe/Dublin", 3, datetime(2025, 10, 25, 23, tzinfo=UTC)) == [
        "2025-10-26T00:00:00",
        "2025-10-26T00:30:00",
        "2025-10-27T01:00:00",
    ]


# --- generated events ----------------------------------------------------------------------

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
LONG_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@st.composite
def component(
    draw: st.DrawFn, low: int, high: int, *, from_end: bool = False, width: int = 2, stars: int = 1
) -> tuple[str, frozenset[int] | None]:
    """One number component, valid for systemd, and the values it allows (None for *)."""
    kinds = ["*"] * stars + ["n", "a..b", "n/s", "a..b/s", "list"]
    kind = draw(st.sampled_from(kinds))
    if kind == "*":
        return "*", None
    items: list[tuple[str, set[int]]] = []
    for _ in range(draw(st.integers(2, 3)) if kind == "list" else 1):
        sub = draw(st.sampled_from(["n", "a..b", "n/s", "a..b/s"])) if kind == "list" else kind
        pad = width if draw(st.booleans()) else 1

        def num(v: int, pad: int = pad) -> str:
            return f"{v:0{pad}d}"

        if sub == "n":
            v = draw(st.integers(low, high))
            items.append((num(v), {v}))
        elif sub == "a..b":
            a = draw(st.integers(low, high - 1))
            b = draw(st.integers(a + 1, high))
            items.append((f"{num(a)}..{num(b)}", set(range(a, b + 1))))
        elif sub == "n/s":
            step = draw(st.integers(1, max(1, (high - low) // 2)))
            if from_end:
                start = draw(st.integers(low + step, high))
                items.append((f"{num(start)}/{step}", set(range(start, low - 1, -step))))
            else:
                start = draw(st.integers(low, high - step))
                items.append((f"{num(start)}/{step}", set(range(start, high + 1, step))))
        else:
            step = draw(st.integers(1, max(1, (high - low) // 2)))
            a = draw(st.integers(low, high - step))
            b = draw(st.integers(a + step, high))
            items.append((f"{num(a)}..{num(b)}/{step}", set(range(a, b + 1, step))))
    return ",".join(t for t, _ in items), frozenset().union(*(v for _, v in items))


@st.composite
def weekday_spec(draw: st.DrawFn) -> tuple[str, frozenset[int] | None]:
    if draw(st.integers(0, 2)) == 0:
        return "", None
    items, chosen = [], set()
    for _ in range(draw(st.integers(1, 3))):
        names = draw(st.sampled_from([WEEKDAYS, LONG_WEEKDAYS]))
        first = draw(st.integers(0, 6))
        if draw(st.booleans()) and first < 6:
            last = draw(st.integers(first + 1, 6))
            items.append(f"{names[first]}..{names[last]}")
            chosen.update(range(first, last + 1))
        else:
            items.append(names[first])
            chosen.add(first)
    text = ",".join(items)
    text = text.lower() if draw(st.booleans()) else text
    return text, None if len(chosen) == 7 else frozenset(chosen)


class Event:
    """A generated event: its text and, for the oracle, the values of each field."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.weekdays_text, self.weekdays = draw(weekday_spec())
        self.from_end = draw(st.integers(0, 4)) == 0
        year_text, self.years = draw(
            st.sampled_from([("*", None), ("2025..2030", frozenset(range(2025, 2031)))])
            | st.sampled_from([("26", frozenset({2026})), ("2025,2027", frozenset({2025, 2027}))])
        )
        month_text, self.months = draw(component(1, 12, stars=6))
        day_top = 28 if self.from_end else 31
        day_text, self.days = draw(component(1, day_top, from_end=self.from_end, stars=4))
        self.day_text = day_text
        hour_text, self.hours = draw(component(0, 23, stars=2))
        minute_text, self.minutes = draw(component(0, 59, stars=1))
        with_seconds = draw(st.integers(0, 3)) == 0
        second_text, self.seconds = (
            draw(component(0, 59, stars=1)) if with_seconds else ("00", frozenset({0}))
        )
        separator = "~" if self.from_end else "-"
        date_forms = [f"{year_text}-{month_text}{separator}{day_text}"]
        if year_text == "*":
            date_forms.append(f"{month_text}{separator}{day_text}")
        if (year_text, month_text, day_text) == ("*", "*", "*"):
            date_forms.append("")
        date_text = draw(st.sampled_from(date_forms))
        time_text = f"{hour_text}:{minute_text}" + (f":{second_text}" if with_seconds else "")
        if not with_seconds and draw(st.booleans()):
            time_text += ":00"
        self.text = " ".join(p for p in (self.weekdays_text, date_text, time_text) if p)
        self.seconds_matter = with_seconds

    def scheduled(self, day: date, second: int) -> bool:
        """systemd.time(7): every field must allow the date and the time of day."""
        hour, minute, sec = second // 3600, second // 60 % 60, second % 60
        if self.hours is not None and hour not in self.hours:
            return False
        if self.minutes is not None and minute not in self.minutes:
            return False
        if self.seconds is not None and sec not in self.seconds:
            return False
        if self.years is not None and day.year not in self.years:
            return False
        if self.months is not None and day.month not in self.months:
            return False
        if self.weekdays is not None and day.weekday() not in self.weekdays:
            return False
        if self.days is None:
            return True
        counted = calendar.monthrange(day.year, day.month)[1] + 1 - day.day
        return (counted if self.from_end else day.day) in self.days


events = st.composite(lambda draw: Event(draw))()


def systemd_reading(text: str, zone: str) -> Schedule:
    """The text read as a systemd calendar event, even where English would read it first."""
    rule, _ = parse_event(text)
    return Schedule(text=text, timezone=zone, rules=(rule,), zone=ZoneInfo(zone))


def event_schedule(event: Event, zone: str) -> Schedule:
    try:
        return systemd_reading(event.text, zone)
    except ScheduleError as error:
        assume("never fires" not in str(error))  # e.g. Feb 30th, or a weekday it never has
        raise


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.sampled_from(ZONES), anywhere | near_a_change(DST_ZONES, timedelta(hours=30)))
def test_events_match_minute_scan(event: Event, zone: str, t: datetime) -> None:
    assume(not event.seconds_matter)
    schedule = event_schedule(event, zone)
    horizon = timedelta(days=3)
    expected = wall_scan(event.scheduled, schedule.zone, t, horizon, MINUTE)
    assert chained(schedule, t, horizon) == expected, (event.text, zone, t)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.sampled_from(DST_ZONES), near_a_change(DST_ZONES, timedelta(hours=3)))
def test_events_with_seconds_match_second_scan(event: Event, zone: str, t: datetime) -> None:
    assume(event.seconds_matter)
    schedule = event_schedule(event, zone)
    horizon = timedelta(hours=3)
    expected = wall_scan(event.scheduled, schedule.zone, t, horizon, SECOND)
    assert chained(schedule, t, horizon) == expected, (event.text, zone, t)


@FAST
@given(events)
def test_normalized_form_reads_back(event: Event) -> None:
    schedule = event_schedule(event, "UTC")
    rule = schedule.rules[0]
    assert isinstance(rule, OnCalendarRule)
    again, _ = parse_event(rule.describe())
    assert again == rule
    assert schedule.explain()


overlap = st.tuples(
    st.lists(st.sampled_from(WEEKDAYS + LONG_WEEKDAYS), min_size=1, max_size=3),
    st.none()
    | st.tuples(st.integers(0, 23), st.integers(0, 59), st.none() | st.integers(0, 59)).map(
        lambda t: f"{t[0]}:{t[1]:02d}" + ("" if t[2] is None else f":{t[2]:02d}")
    ),
).map(lambda p: ",".join(p[0]) + ("" if p[1] is None else f" {p[1]}")) | st.just("daily")


@FAST
@given(overlap, st.sampled_from(ZONES), anywhere | near_a_change(DST_ZONES, timedelta(hours=30)))
def test_english_reading_of_a_systemd_text_means_the_same(
    text: str, zone: str, t: datetime
) -> None:
    """Where English also reads an event (weekdays and one time), the fires are the same."""
    assert syntax_of(text) is Syntax.ENGLISH
    assert parse(text, zone).next_n(t, 10) == systemd_reading(text, zone).next_n(t, 10)


# --- systemd-analyze ----------------------------------------------------------------------

_ELAPSE = re.compile(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")
_IN_UTC = re.compile(r"\(in UTC\): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


def refused_by_systemd_only(text: str) -> bool:
    """systemd 252 lowers the limit of a "~" day by 3 for each item of its list (a bug in
    chain_valid), so it refuses "*-*~1,26"; Odin takes any "~" day from 1 to 28."""
    return "~" in text and "," in text.split("~")[1].split(" ")[0]


def systemd_next(text: str, zone: str, t: datetime, count: int) -> list[float] | None:
    """Fire times after ``t`` by ``systemd-analyze calendar``, read in ``zone`` (None if refused)."""
    assert SYSTEMD_ANALYZE is not None
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "calendar", f"--iterations={count}", f"--base-time=@{int(t.timestamp())}", text],
        capture_output=True, text=True, timeout=30, env={**os.environ, "TZ": zone, "LC_ALL": "C"},
    )  # fmt: skip
    if done.returncode != 0 and refused_by_systemd_only(text):
        return None
    assert done.returncode == 0, done.stderr
    found = _IN_UTC.findall(done.stdout) or _ELAPSE.findall(done.stdout)
    return [datetime.fromisoformat(f).replace(tzinfo=UTC).timestamp() for f in found]


def systemd_skips_new_year(event: Event, t: datetime, zone: str) -> bool:
    """systemd steps a day like "1/4" past the end of December into January, then keeps the
    day it landed on (2nd) rather than starting January from the 1st (tm_within_bounds
    resets the month but not the day when the year changes): it would miss January 1st."""
    return "/" in event.day_text and t.astimezone(ZoneInfo(zone)).month == 12


def in_the_repeat(t: datetime, zone: str) -> bool:
    """``t`` lies in the second pass of an hour that fall-back repeats. Counted from there,
    systemd fires the repeated wall times a second time (it adds to the base's wall time under
    the base's offset); walked from before, it fires each once, as Odin always does."""
    return t.astimezone(ZoneInfo(zone)).fold == 1


def gap_only(event: Event, fire: datetime) -> bool:
    """Odin fires here only because a scheduled wall time was skipped by a DST gap."""
    wall = fire.replace(tzinfo=None)
    return fire.fold == 0 and not event.scheduled(wall.date(), second_of_day(wall))


@pytest.mark.slow
@needs_systemd
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events,
    st.sampled_from(["UTC", *DST_ZONES]),
    st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1)).map(lambda d: d.replace(tzinfo=UTC))
    | near_a_change(DST_ZONES, timedelta(hours=30)),
)
def test_events_agree_with_systemd_analyze(event: Event, zone: str, t: datetime) -> None:
    assume(not systemd_skips_new_year(event, t, zone))
    assume(not in_the_repeat(t, zone))
    schedule = event_schedule(event, zone)
    ours = [f for f in schedule.next_n(t, 12) if not gap_only(event, f)][:8]
    theirs = systemd_next(event.text, zone, t, 8)
    assume(theirs is not None)
    assert theirs is not None
    # systemd gives up after 1000 steps of its search, so it may list fewer fires.
    size = min(len(ours), len(theirs))
    assert [f.timestamp() for f in ours][:size] == theirs[:size], (event.text, zone, t)


@pytest.mark.slow
@needs_systemd
@pytest.mark.parametrize("word", sorted(SHORTHANDS))
def test_shorthands_agree_with_systemd_analyze(word: str) -> None:
    t = datetime(2025, 3, 1, 12, 0, 30, tzinfo=UTC)
    ours = [f.timestamp() for f in systemd_reading(word, "UTC").next_n(t, 6)]
    assert ours == systemd_next(word, "UTC", t, 6)


def mutated(text: str, where: int, what: str, how: int) -> str:
    """``text`` with one character deleted, replaced or inserted: near misses of all kinds."""
    where = where % (len(text) + 1)
    if how == 0:
        return text[:where] + text[where + 1 :]
    if how == 1:
        return text[:where] + what + text[where + 1 :]
    return text[:where] + what + text[where:]


@pytest.mark.slow
@needs_systemd
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            events,
            st.integers(0, 40),
            st.sampled_from("0123456789*-~:/.,. MonSa"),
            st.integers(0, 2),
        ),
        min_size=10,
        max_size=10,
    )
)
def test_accepts_what_systemd_accepts(cases: list[tuple[Event, int, str, int]]) -> None:
    texts = []
    for event, where, what, how in cases:
        text = mutated(event.text, where, what, how)
        if text == text.strip() and "  " not in text and text:
            texts.append(text)
    assume(texts)
    assert SYSTEMD_ANALYZE is not None
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "calendar", "--base-time=@946684800", "--", *texts],
        capture_output=True, text=True, timeout=60, env={**os.environ, "TZ": "UTC", "LC_ALL": "C"},
    )  # fmt: skip
    refused = set(re.findall(r"Failed to parse calendar specification '(.*)'", done.stderr))
    never = {m for m in re.findall(r"Original form: (.*)\n.*\n\s*Next elapse: never", done.stdout)}
    normalized = dict(re.findall(r"Original form: (.*)\nNormalized form: (.*)", done.stdout))
    for text in texts:
        try:
            parse_event(text)
            ours = True
        except ScheduleError as error:
            ours = False
            if "never fires" in str(error) or "whole seconds" in str(error):
                continue  # Odin refuses these on purpose; systemd takes them
        if text in never or "." in normalized.get(text, "").split(" ")[-1]:
            continue
        if ours and text in refused and refused_by_systemd_only(text):
            continue
        assert ours == (text not in refused), (text, done.stderr)


def test_counted_from_inside_a_repeated_hour_the_repeat_does_not_fire_again() -> None:
    """Odin's rule: a wall time fires once, at its first occurrence, wherever it is counted from
    (systemd, counted from inside the repeat, fires it again: ``in_the_repeat``)."""
    schedule = systemd_reading("*-*-* *:*:*", "Europe/Dublin")
    inside = datetime(2025, 10, 26, 1, 0, tzinfo=UTC)  # 01:00 GMT, the second 01:00 of the night
    assert in_the_repeat(inside, "Europe/Dublin")
    assert (
        schedule.next_n(inside, 1)[0].timestamp()
        == datetime(2025, 10, 26, 2, 0, tzinfo=UTC).timestamp()
    )
