"""Property tests of the English forms of the second edition, against brute-force scans.

Day filters on intervals, minutes past the hour, times with seconds and the nth weekday
of a month: each is checked minute by minute (second by second where seconds matter) over
a horizon, from instants anywhere and from instants near the DST changes of Europe/Dublin
and America/New_York; whatever cron form is claimed must agree with cronsim; and the
canonical description must read back to the same rules.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from odin.errors import ScheduleError
from odin.schedule import Schedule, parse
from odin.schedule.clock import ClockRule, HourlyRule
from odin.schedule.days import DaySpec, NthWeekdays
from odin.schedule.rules import CalendarRule, IntervalRule, Rule, Window
from odin.schedule.words import WEEKDAY_NAMES
from schedule_oracle import (
    DST_ZONES,
    MINUTE,
    SECOND,
    ZONES,
    anywhere,
    chained,
    instant_scan,
    near_a_change,
    nth_weekday_matches,
    transitions,
    wall_scan,
)

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ONE_DAY = timedelta(days=1)

# --- strategies --------------------------------------------------------------------------

clock = st.tuples(
    st.sampled_from([0, 1, 2, 3, 9, 12, 17, 22, 23]) | st.integers(0, 23),
    st.sampled_from([0, 15, 30, 59]) | st.integers(0, 59),
).map(lambda hm: f"{hm[0]:02d}:{hm[1]:02d}")
window = st.tuples(clock, clock).filter(lambda w: w[0] != w[1])
windows = st.none() | window.map(lambda w: f" between {w[0]} and {w[1]}")
nths = st.sampled_from(["first", "2nd", "third", "4th", "fifth", "last"])
nth_days = st.lists(
    st.tuples(nths, st.sampled_from(WEEKDAY_NAMES)), min_size=1, max_size=2, unique=True
).map(lambda items: " and ".join(f"{n} {w}" for n, w in items) + " of the month")
filters = st.sampled_from(
    [
        "weekdays",
        "weekends",
        "Monday, Wednesday and Friday",
        "Sunday",
        "the 1st and 15th",
        "the last day of the month",
        "the 1st, 2nd and last day of the month",
        "January 1st and March 30th",
    ]
) | nth_days.map(lambda text: "the " + text)
days_filter = st.none() | filters.map(lambda f: " on " + f)
minute_periods = st.sampled_from([60, 300, 600, 900, 1800, 3600, 7200, 5400, 420])


def interval_text(parts: tuple[int, str | None, str | None, bool]) -> str:
    period, window_text, days_text, days_first = parts
    head = f"every {period // 60} minutes"
    tail = [window_text or "", days_text or ""]
    return head + "".join(reversed(tail) if days_first else tail)


interval_rules = st.tuples(minute_periods, windows, days_filter, st.booleans()).map(interval_text)
# DST changes fall on Sundays: filters that keep Sundays put fires next to them.
sunday_filter = st.sampled_from(
    ["", " on weekends", " on Sunday", " on the last Sunday of the month", " on Saturday"]
)
second_interval_rules = st.tuples(st.sampled_from([1, 5, 10, 30, 45]), sunday_filter).map(
    lambda p: f"every {p[0]} seconds{p[1]}"
)


def past_hour_text(parts: tuple[int, list[tuple[int, int]], str | None, str | None]) -> str:
    step, chosen, window_text, days_text = parts
    spelt = [f":{m:02d}" + (f":{s:02d}" if s else "") for m, s in chosen]
    return f"every {step} hours at " + " and ".join(spelt) + (window_text or "") + (days_text or "")


steps = st.sampled_from([1, 1, 2, 3, 5, 6, 12])
offsets = st.tuples(st.integers(0, 59), st.sampled_from([0, 0, 0, 30]) | st.integers(0, 59))
minute_offsets = st.tuples(st.integers(0, 59), st.just(0))
past_hour_rules = st.tuples(
    steps, st.lists(offsets, min_size=1, max_size=3, unique=True), windows, days_filter
).map(past_hour_text)
past_hour_rules_near_a_change = st.tuples(
    steps, st.lists(offsets, min_size=1, max_size=3, unique=True), st.none(), sunday_filter
).map(past_hour_text)
past_hour_minute_rules = st.tuples(
    steps, st.lists(minute_offsets, min_size=1, max_size=3, unique=True), windows, days_filter
).map(past_hour_text)
seconds_clock = st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)).map(
    lambda t: f"{t[0]:02d}:{t[1]:02d}:{t[2]:02d}"
)
second_times = st.lists(seconds_clock | clock, min_size=1, max_size=3).filter(
    lambda ts: any(len(t) == 8 and not t.endswith(":00") for t in ts)
)
second_day = st.sampled_from(["every day", "every weekday", "every Sunday", "every 15th"])
second_time_rules = st.tuples(second_day, second_times).map(
    lambda p: f"{p[0]} at " + " and ".join(p[1])
)
nth_rules = st.tuples(nth_days, st.lists(clock, min_size=1, max_size=2)).map(
    lambda p: f"every {p[0]} at " + " and ".join(p[1])
)


def schedule_of(text: str, zone: str) -> Schedule:
    try:
        return parse(f"{text} in {zone}")
    except ScheduleError:
        assume(False)  # e.g. a window shorter than the interval, or that holds no time
        raise


# --- the definitions, for the scans ------------------------------------------------------


def day_ok(spec: DaySpec | None, d: date) -> bool:
    if spec is None:
        return True
    if isinstance(spec, NthWeekdays):
        return nth_weekday_matches(spec.items, d)
    return spec.matches(d)


def window_day(window: Window | None, d: date, second: int) -> date | None:
    """The day whose window holds (d, second): a window that wraps belongs to its opening day."""
    if window is None:
        return d
    start, end = window.start * 60, window.end * 60
    if start <= end:
        return d if start <= second <= end else None
    if second >= start:
        return d
    return d - ONE_DAY if second <= end else None


def scheduled_wall(rule: Rule, d: date, second: int) -> bool:
    if isinstance(rule, HourlyRule):
        hour, offset = divmod(second, 3600)
        if hour % rule.step or offset not in rule.offsets:
            return False
        opened = window_day(rule.window, d, second)
        return opened is not None and day_ok(rule.days, opened)
    if isinstance(rule, ClockRule):
        return second in rule.times and day_ok(rule.days, d)
    assert isinstance(rule, CalendarRule)
    return second % 60 == 0 and second // 60 in rule.times and day_ok(rule.days, d)


def interval_fires(rule: IntervalRule, zone: ZoneInfo, instant: datetime) -> bool:
    if instant.timestamp() % rule.period:
        return False
    local = instant.astimezone(zone)
    second = local.hour * 3600 + local.minute * 60 + local.second
    opened = window_day(rule.window, local.date(), second)
    return opened is not None and day_ok(rule.days, opened)


def brute(schedule: Schedule, t: datetime, horizon: timedelta, step: timedelta) -> list[float]:
    found: set[float] = set()
    for rule in schedule.rules:
        if isinstance(rule, IntervalRule):
            found.update(
                instant_scan(
                    lambda i, r=rule: interval_fires(r, schedule.zone, i), t, horizon, step
                )
            )
        else:
            found.update(
                wall_scan(
                    lambda d, s, r=rule: scheduled_wall(r, d, s), schedule.zone, t, horizon, step
                )
            )
    return sorted(found)


def check(schedule: Schedule, t: datetime, horizon: timedelta, step: timedelta) -> None:
    assert chained(schedule, t, horizon) == brute(schedule, t, horizon, step), schedule.text


starts = anywhere | near_a_change(DST_ZONES, timedelta(hours=30))
near = near_a_change(DST_ZONES, timedelta(hours=3))

# --- minute by minute --------------------------------------------------------------------


@FAST
@given(st.lists(interval_rules, min_size=1, max_size=2), st.sampled_from(ZONES), starts)
def test_intervals_with_days_match_minute_scan(texts: list[str], zone: str, t: datetime) -> None:
    check(schedule_of(" and ".join(texts), zone), t, timedelta(days=2), MINUTE)


@FAST
@given(past_hour_minute_rules, st.sampled_from(ZONES), starts)
def test_minutes_past_the_hour_match_minute_scan(text: str, zone: str, t: datetime) -> None:
    check(schedule_of(text, zone), t, timedelta(days=2), MINUTE)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nth_rules, st.sampled_from(ZONES), starts)
def test_nth_weekdays_match_minute_scan(text: str, zone: str, t: datetime) -> None:
    check(schedule_of(text, zone), t, timedelta(days=40), MINUTE)


# --- second by second, where seconds matter ----------------------------------------------


@FAST
@given(past_hour_rules_near_a_change, st.sampled_from(DST_ZONES), near)
def test_minutes_and_seconds_past_the_hour_match_second_scan(
    text: str, zone: str, t: datetime
) -> None:
    check(schedule_of(text, zone), t, timedelta(hours=3), SECOND)


@FAST
@given(second_interval_rules, st.sampled_from(DST_ZONES), near)
def test_second_intervals_with_days_match_second_scan(text: str, zone: str, t: datetime) -> None:
    check(schedule_of(text, zone), t, timedelta(hours=2), SECOND)


@st.composite
def seconds_near_a_change(draw: st.DrawFn) -> tuple[str, str, datetime]:
    """Times with seconds close to a DST change (maybe in its gap), and a start before it."""
    zone = draw(st.sampled_from(DST_ZONES))
    change = draw(st.sampled_from(transitions(zone)))
    just_before = (change - SECOND).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    texts = []
    for _ in range(draw(st.integers(1, 3))):
        wall = just_before + timedelta(seconds=draw(st.integers(-5400, 5400)))
        texts.append(f"{wall.hour:02d}:{wall.minute:02d}:{wall.second:02d}")
    day = draw(second_day)
    start = change - timedelta(seconds=draw(st.integers(0, 2 * 3600)))
    return f"{day} at " + " and ".join(texts), zone, start


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seconds_near_a_change())
def test_times_with_seconds_match_second_scan_across_dst(case: tuple[str, str, datetime]) -> None:
    text, zone, t = case
    check(schedule_of(text, zone), t, timedelta(hours=3), SECOND)


@st.composite
def times_with_seconds(draw: st.DrawFn) -> tuple[str, str, datetime]:
    """A rule with seconds in any zone, and a start up to 3 hours before one of its times."""
    zone = draw(st.sampled_from(ZONES))
    day = draw(st.dates(date(1990, 1, 1), date(2060, 1, 1)))
    times = draw(second_times)
    hour, minute, *rest = (int(part) for part in draw(st.sampled_from(times)).split(":"))
    wall = datetime(day.year, day.month, day.day, hour, minute, rest[0] if rest else 0)
    start = wall.replace(tzinfo=ZoneInfo(zone)) - timedelta(seconds=draw(st.integers(0, 3 * 3600)))
    return f"{draw(second_day)} at " + " and ".join(times), zone, start


@FAST
@given(times_with_seconds())
def test_times_with_seconds_match_second_scan(case: tuple[str, str, datetime]) -> None:
    text, zone, t = case
    check(schedule_of(text, zone), t, timedelta(hours=3), SECOND)


# --- cron forms, readback ----------------------------------------------------------------


def cronsim_next(lines: list[str], t: datetime, zone: ZoneInfo) -> datetime:
    best = None
    for line in lines:
        steps = CronSim(line, t.astimezone(zone))
        for _ in range(4):
            fire = next(steps)
            if fire.timestamp() > t.timestamp():
                break
        if best is None or fire.timestamp() < best.timestamp():
            best = fire
    assert best is not None
    return best


new_forms = interval_rules | past_hour_rules | nth_rules | second_time_rules | second_interval_rules


@FAST
@given(st.lists(new_forms, min_size=1, max_size=2), st.sampled_from(ZONES), starts)
def test_cron_form_agrees_with_cronsim(texts: list[str], zone: str, t: datetime) -> None:
    schedule = schedule_of(" and ".join(texts), zone)
    lines = schedule.cron()
    assume(lines is not None)
    assert lines is not None
    current = t
    for _ in range(5):
        ours = schedule.next_after(current)
        assert ours is not None
        expected = cronsim_next(lines, current, schedule.zone)
        assert ours.timestamp() == expected.timestamp(), (lines, current, ours, expected)
        current = ours


@FAST
@given(st.lists(new_forms, min_size=1, max_size=3), st.sampled_from(ZONES), starts)
def test_increasing_and_the_description_reads_back(
    texts: list[str], zone: str, t: datetime
) -> None:
    schedule = schedule_of(" and ".join(texts), zone)
    stamps = [t.timestamp()] + [f.timestamp() for f in schedule.next_n(t, 4)]
    assert stamps == sorted(set(stamps))
    assert parse(schedule.describe(), zone).rules == schedule.rules
    assert schedule.explain() == schedule.describe()


@settings(max_examples=300, deadline=None)
@given(
    st.frozensets(st.tuples(st.sampled_from([1, 2, 3, 4, 5, -1]), st.integers(0, 6)), min_size=1),
    st.dates(date(1900, 1, 1), date(2200, 1, 1)),
)
def test_nth_weekday_next_date_matches_day_scan(
    items: frozenset[tuple[int, int]], start: date
) -> None:
    expected = start
    while not nth_weekday_matches(items, expected):
        expected += ONE_DAY
    assert NthWeekdays(items).next_date(start) == expected
    assert NthWeekdays(items).matches(expected)
