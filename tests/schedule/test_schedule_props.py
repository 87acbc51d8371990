"""Property tests of the schedule language.

- The parser raises ScheduleError and nothing else, on any text.
- ``next_after`` equals an obviously-correct brute-force scan (minute by minute,
  or second by second for second intervals) over a horizon, in zones with DST.
- Whenever ``cron()`` claims an equivalent cron form, cronsim agrees with us.
- The fast day arithmetic equals a day-by-day scan; descriptions read back.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from odin.errors import ScheduleError
from odin.schedule import Schedule, parse
from odin.schedule.days import EveryNDays, MonthDays, Weekdays, YearDates
from odin.schedule.rules import CalendarRule, IntervalRule, Rule, Window
from odin.schedule.words import MONTH_NAMES, WEEKDAY_NAMES, ordinal

ZONES = ["UTC", "Europe/Dublin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
HORIZON = timedelta(days=2)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def _transitions(zone: str) -> list[datetime]:
    """UTC instants of the zone's offset changes in 2025-2026, to aim tests at."""
    tz = ZoneInfo(zone)
    found = []
    t = datetime(2025, 1, 1, tzinfo=UTC)
    previous = t.astimezone(tz).utcoffset()
    while t.year < 2027:
        t += timedelta(minutes=30)
        offset = t.astimezone(tz).utcoffset()
        if offset != previous:
            found.append(t)
            previous = offset
    return found


TRANSITIONS = [t for zone in ZONES for t in _transitions(zone)]

# --- strategies --------------------------------------------------------------------------

instants = st.one_of(
    st.datetimes(datetime(1990, 1, 1), datetime(2060, 1, 1)).map(lambda d: d.replace(tzinfo=UTC)),
    st.tuples(st.sampled_from(TRANSITIONS), st.integers(-3 * 3600, 3 * 3600)).map(
        lambda p: p[0] + timedelta(seconds=p[1])
    ),
)
clock = st.tuples(
    st.sampled_from([0, 1, 2, 3, 9, 12, 23]) | st.integers(0, 23),
    st.sampled_from([0, 15, 30, 59]) | st.integers(0, 59),
).map(lambda hm: f"{hm[0]:02d}:{hm[1]:02d}")
times = st.lists(clock, min_size=1, max_size=3).map(lambda ts: " at " + " and ".join(ts))
weekday_list = st.lists(st.sampled_from(WEEKDAY_NAMES), min_size=1, max_size=3, unique=True)
days = st.one_of(
    st.just("every day"),
    st.just("every weekday"),
    weekday_list.map(lambda ws: "every " + " and ".join(ws)),
    st.lists(st.integers(1, 31), min_size=1, max_size=3, unique=True).map(
        lambda ds: "every " + " and ".join(ordinal(d) for d in ds)
    ),
    st.just("every last day of the month"),
    st.tuples(st.integers(1, 12), st.integers(1, 28)).map(
        lambda md: f"every {MONTH_NAMES[md[0]]} {ordinal(md[1])}"
    ),
    st.just("every February 29th"),
    st.integers(2, 9).map(lambda n: f"every {n} days"),
)
calendar_rules = st.tuples(days, times).map("".join)
periods = st.sampled_from([60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 5400, 420])
windows = st.tuples(clock, clock).map(lambda w: f" between {w[0]} and {w[1]}")
interval_rules = st.tuples(periods, st.none() | windows).map(
    lambda p: f"every {p[0] // 60} minutes" + (p[1] or "")
)
second_rules = st.sampled_from([1, 2, 5, 7, 10, 15, 30, 45]).map(lambda n: f"every {n} seconds")
rules = st.one_of(calendar_rules, interval_rules)


def schedule_from(texts: list[str], zone: str) -> Schedule:
    try:
        return parse(" and ".join(texts) + f" in {zone}")
    except ScheduleError:
        assume(False)  # e.g. a window shorter than its interval
        raise


# --- brute force -------------------------------------------------------------------------


def fires_at(rule: Rule, instant: datetime, zone: ZoneInfo) -> bool:
    """Does ``rule`` fire at ``instant``? Written from the definitions, not the code."""
    local = instant.astimezone(zone)
    if isinstance(rule, IntervalRule):
        whole = instant.timestamp() % rule.period == 0
        sod = local.hour * 3600 + local.minute * 60 + local.second
        return whole and (rule.window is None or _in_window(rule.window, sod))
    assert isinstance(rule, CalendarRule)
    if local.second or local.microsecond:
        return False
    if local.fold == 0 and _wall_matches(rule, local.replace(tzinfo=None)):
        return True  # fold 1 is a repeated wall time: only its first occurrence fires
    before = (instant - MINUTE).astimezone(zone).replace(tzinfo=None)
    wall = before + MINUTE  # wall times between before and now were skipped by a gap
    while wall < local.replace(tzinfo=None):
        if _wall_matches(rule, wall):
            return True
        wall += MINUTE
    return False


def _in_window(window: Window, second_of_day: int) -> bool:
    start, end = window.start * 60, window.end * 60
    if start <= end:
        return start <= second_of_day <= end
    return not end < second_of_day < start  # wraps midnight


def _wall_matches(rule: CalendarRule, wall: datetime) -> bool:
    return rule.days.matches(wall.date()) and wall.hour * 60 + wall.minute in rule.times


def brute_fires(schedule: Schedule, t: datetime, step: timedelta) -> list[float]:
    """Every fire in (t, t + HORIZON], found by testing each ``step`` (as timestamps)."""
    instant = datetime.fromtimestamp(t.timestamp() // 60 * 60, UTC)
    end = t + HORIZON
    found = []
    while instant <= end:
        if instant > t and any(fires_at(r, instant, schedule.zone) for r in schedule.rules):
            found.append(instant.timestamp())
        instant += step
    return found


def our_fires(schedule: Schedule, t: datetime) -> list[float]:
    """Every fire in (t, t + HORIZON] by chaining ``next_after``."""
    found = []
    current = schedule.next_after(t)
    while current is not None and current <= t + HORIZON:
        assert str(current.tzinfo) == schedule.timezone
        found.append(current.timestamp())
        current = schedule.next_after(current)
    return found


def check_against_brute_force(schedule: Schedule, t: datetime, step: timedelta) -> None:
    assert our_fires(schedule, t) == brute_fires(schedule, t, step)


@FAST
@given(st.lists(rules, min_size=1, max_size=2), st.sampled_from(ZONES), instants)
def test_next_after_matches_minute_scan(texts: list[str], zone: str, t: datetime) -> None:
    check_against_brute_force(schedule_from(texts, zone), t, MINUTE)


@st.composite
def near_a_transition(draw: st.DrawFn) -> tuple[str, str, datetime]:
    """A daily rule whose wall time is close to a DST change, and a start just before it."""
    zone = draw(st.sampled_from(["Europe/Dublin", "America/New_York", "Australia/Lord_Howe"]))
    change = draw(st.sampled_from(_transitions(zone)))
    just_before = (change - MINUTE).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    wall = just_before + timedelta(minutes=draw(st.integers(-90, 90)))  # may be in the gap
    other = draw(clock)
    text = f"every day at {wall.hour:02d}:{wall.minute:02d} and {other}"
    start = change - timedelta(minutes=draw(st.integers(0, 30 * 60)))
    return text, zone, start


@settings(max_examples=40, deadline=None)
@given(near_a_transition())
def test_dst_matches_minute_scan(case: tuple[str, str, datetime]) -> None:
    text, zone, t = case
    check_against_brute_force(parse(f"{text} in {zone}"), t, MINUTE)


@settings(max_examples=40, deadline=None)
@given(second_rules, st.sampled_from(ZONES), instants)
def test_seconds_match_second_scan(text: str, zone: str, t: datetime) -> None:
    schedule = parse(f"{text} in {zone}")
    ours = schedule.next_after(t)
    assert ours is not None
    instant = t.replace(microsecond=0)
    while not (instant > t and fires_at(schedule.rules[0], instant, schedule.zone)):
        instant += SECOND
    assert ours.timestamp() == instant.timestamp()


def cronsim_next(lines: list[str], t: datetime, zone: ZoneInfo) -> datetime | None:
    best = None
    for line in lines:
        steps = CronSim(line, t.astimezone(zone))
        for _ in range(4):
            fire = next(steps)
            if fire.timestamp() > t.timestamp():
                break
        if best is None or fire.timestamp() < best.timestamp():
            best = fire
    return best


@FAST
@given(st.lists(rules | second_rules, min_size=1, max_size=2), st.sampled_from(ZONES), instants)
def test_cron_form_agrees_with_cronsim(texts: list[str], zone: str, t: datetime) -> None:
    schedule = schedule_from(texts, zone)
    lines = schedule.cron()
    assume(lines is not None)
    assert lines is not None
    current: datetime | None = t
    for _ in range(5):
        assert current is not None
        expected = cronsim_next(lines, current, schedule.zone)
        ours = schedule.next_after(current)
        assert ours is not None and expected is not None
        assert ours.timestamp() == expected.timestamp(), (lines, current, ours, expected)
        current = ours


@FAST
@given(st.lists(rules | second_rules, min_size=1, max_size=3), st.sampled_from(ZONES), instants)
def test_next_is_strictly_increasing_and_describe_reads_back(
    texts: list[str], zone: str, t: datetime
) -> None:
    schedule = schedule_from(texts, zone)
    fires = schedule.next_n(t, 4)
    stamps = [t.timestamp()] + [f.timestamp() for f in fires]
    assert stamps == sorted(set(stamps))
    assert parse(schedule.describe(), zone).rules == schedule.rules


day_specs = st.one_of(
    st.frozensets(st.integers(0, 6), min_size=1).map(Weekdays),
    st.tuples(st.frozensets(st.integers(1, 31)), st.booleans())
    .filter(lambda p: bool(p[0]) or p[1])
    .map(lambda p: MonthDays(p[0], p[1])),
    st.frozensets(
        st.sampled_from([(2, 29), (1, 1), (12, 31), (4, 30), (7, 4), (3, 21)]), min_size=1
    ).map(YearDates),
    st.integers(1, 400).map(EveryNDays),
)


@settings(max_examples=300, deadline=None)
@given(day_specs, st.dates(date(1900, 1, 1), date(2200, 1, 1)))
def test_next_date_matches_day_scan(spec: object, start: date) -> None:
    assert isinstance(spec, Weekdays | MonthDays | YearDates | EveryNDays)
    expected = start
    while not spec.matches(expected):
        expected += timedelta(days=1)
    assert spec.next_date(start) == expected


# --- the parser never raises anything but ScheduleError -----------------------------------

VOCABULARY = str.split(
    "every each on at and in the of month day days daily everyday hourly between from to "
    "until last never noon midnight am pm other cron: second seconds minute minutes hour "
    "hours monday fri weekday weekends january feb july 1st 22nd 31st 30th 29th 0 1 7 60 "
    "99999999999 09:00 9am 6:30 12pm 25:00 24:00 , Europe/Dublin UTC Nowhere * */5 L 1-5"
)

garbage = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.lists(st.sampled_from(VOCABULARY), max_size=14).map(" ".join),
    st.lists(st.sampled_from(VOCABULARY), max_size=8).map(lambda ws: "cron: " + " ".join(ws)),
    st.integers(900, 5000).map(lambda n: "every day at 09:00 and " * (n // 23)),
    st.text(alphabet="0123456789:,ndrsth ", max_size=40),
)


@settings(max_examples=600, deadline=None)
@given(garbage, st.sampled_from(["UTC", "Europe/Dublin", "Not/AZone", ""]))
def test_only_schedule_error_escapes(text: str, default_tz: str) -> None:
    try:
        schedule = parse(text, default_tz)
    except ScheduleError as error:
        assert 0 <= error.position <= len(text)
        assert error.expected
        return
    # Whatever parses can be used without surprises.
    schedule.describe()
    schedule.cron()
    schedule.next_n(datetime(2025, 1, 1, tzinfo=UTC), 2)
