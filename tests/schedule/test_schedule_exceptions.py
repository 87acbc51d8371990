"""Exceptions to a schedule (``except:``): the rules, the walk, and ``on_excluded: next``,
checked on examples and against a brute-force oracle across DST changes in Europe/Dublin."""

from __future__ import annotations

import calendar as cal
import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odin.errors import ScheduleError
from odin.schedule import exceptions as ex
from odin.schedule import parse
from odin.schedule.exceptions import (
    CalendarRef,
    DateSpan,
    HolidayBook,
    OnDays,
    PublicHolidays,
    next_run,
    parse_item,
    preview,
    resolve_items,
    upcoming,
)
from schedule_oracle import near_a_change

DUBLIN = ZoneInfo("Europe/Dublin")
BOOK = HolidayBook()  # one for the module: building a year of holidays once is the point


def at(text: str) -> datetime:
    """A wall time in Dublin, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=DUBLIN)


def rules(*texts: str, calendars: dict[str, list[str]] | None = None) -> ex.Exclusions:
    return resolve_items(texts, calendars or {}, BOOK)


# -- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("on public holidays in IE", "on public holidays in IE"),
        ("public holidays in us-ca", "on public holidays in US-CA"),
        ("on public holidays in GB-SCT", "on public holidays in GB-SCT"),
        ("on public holidays in GB-Scotland", "on public holidays in GB-SCT"),
        ("on public holidays in UK", "on public holidays in GB"),
        ("2026-12-24", "2026-12-24"),
        ("2026-12-24 to 2027-01-02", "2026-12-24 to 2027-01-02"),
        ("from 2026-12-24 until 2026-12-24", "2026-12-24"),
        ("on weekends", "on weekends"),
        ("on weekdays", "on weekdays"),
        ("on Mondays", "on Monday"),
        ("on Mon, Fri", "on Monday and Friday"),
        ("the last Friday of each month", "on the last Friday of the month"),
        ("the first Monday of each month", "on the first Monday of the month"),
        ("on the 1st and 15th", "on the 1st and 15th"),
        ("on January 4th", "on January 4th"),
        ("calendar: closed", "calendar: closed"),
        ("Calendar:  team-2.b", "calendar: team-2.b"),
    ],
)
def test_each_form_reads_and_its_canonical_text_reads_back_the_same(
    text: str, canonical: str
) -> None:
    item = parse_item(text)
    assert item.describe() == canonical
    assert parse_item(canonical) == item


def test_the_items_are_their_rules() -> None:
    assert parse_item("on public holidays in US-CA") == PublicHolidays("US", "CA")
    assert parse_item("2026-12-24 to 2027-01-02") == DateSpan(date(2026, 12, 24), date(2027, 1, 2))
    assert isinstance(parse_item("on weekends"), OnDays)
    assert parse_item("calendar: closed") == CalendarRef("closed")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("on public holidays in XX", ['unknown country code "XX"', "odin calendar regions"]),
        ("on public holidays in US-ZZ", ['US has no subdivision "ZZ"', "CA", "regions US"]),
        ("on public holidays in IE-D", ["IE has no subdivisions"]),
        ("on public holidays in 12", ['"12" is not a country code']),
        ("2026-12-24 to 2026-12-01", ["the range ends (2026-12-01) before it starts"]),
        ("2026-02-30", ["2026-02-30 is not a date"]),
        ("2026-12-24 - 2027-01-02", ["is not a date or a range of dates"]),
        ("on Fridys", ['unexpected "Fridys"', 'did you mean "fridays"']),
        ("on every day", ["excludes every day"]),
        ("closed", ['cannot read "closed"', "calendar: NAME"]),
        ("calendar: a b", ['"a b" is not a calendar name']),
        ("", ["the exception is empty"]),
        ("on the second Tuesday", ["could mean every other week"]),
    ],
)
def test_a_wrong_exception_says_what_is_wrong_and_what_would_do(
    text: str, words: list[str]
) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_item(text)
    for word in words:
        assert word in caught.value.message


def test_the_regions_are_the_holidays_librarys_own() -> None:
    known = ex.regions()
    assert known == {
        code: tuple(subs)
        for code, subs in holidays.list_supported_countries(include_aliases=False).items()
    }
    assert "SCT" in known["GB"] and known["IE"] == ()


def test_a_holiday_book_builds_each_country_and_year_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[tuple[str, str | None, int]] = []
    real = ex._build_year

    def counting(country: str, subdivision: str | None, year: int) -> dict[date, str]:
        built.append((country, subdivision, year))
        return dict(real(country, subdivision, year))

    monkeypatch.setattr(ex, "_build_year", counting)
    book = HolidayBook()
    for day in range(1, 32):
        book.holiday("IE", None, date(2026, 12, day))
    assert book.holiday("IE", None, date(2026, 12, 25)) == "Christmas Day"
    assert book.holiday("GB", "SCT", date(2026, 11, 30)) == "Saint Andrew's Day"
    assert book.holiday("GB", None, date(2026, 11, 30)) is None
    assert built == [("IE", None, 2026), ("GB", "SCT", 2026), ("GB", None, 2026)]


# -- the walk: examples ----------------------------------------------------------------------


def test_a_holiday_skips_its_tick_and_names_the_rule() -> None:
    daily = parse("every day at 09:00", "Europe/Dublin")
    found = preview(daily, rules("on public holidays in IE"), at("2026-12-24T12:00"), 3)
    assert [(u.at, u.skipped) for u in found] == [
        (at("2026-12-25T09:00"), "public holiday in IE (Christmas Day)"),
        (at("2026-12-26T09:00"), "public holiday in IE (Saint Stephen's Day)"),
        (at("2026-12-27T09:00"), None),
        (at("2026-12-28T09:00"), None),
        (at("2026-12-29T09:00"), None),
    ]


def test_a_range_and_a_calendar_skip_in_one_step_and_name_the_calendar() -> None:
    every_minute = parse("every minute", "Europe/Dublin")
    closed = {"closed": ["2026-12-24 to 2027-01-02"]}
    found = preview(
        every_minute, rules("calendar: closed", calendars=closed), at("2026-12-23T23:58"), 2
    )
    assert found == [
        ex.Upcoming(at("2026-12-23T23:59")),
        ex.Upcoming(
            at("2026-12-24T00:00"),
            skipped="calendar closed: 2026-12-24 to 2027-01-02",
            through=date(2027, 1, 2),
        ),
        ex.Upcoming(at("2027-01-03T00:00")),
    ]


def test_skips_in_a_row_for_one_reason_are_one_entry() -> None:
    daily = parse("every day at 09:00", "Europe/Dublin")
    found = preview(daily, rules("on weekends"), at("2026-12-11T12:00"), 1)
    assert found == [
        ex.Upcoming(at("2026-12-12T09:00"), skipped="on weekends", through=date(2026, 12, 13)),
        ex.Upcoming(at("2026-12-14T09:00")),
    ]


def test_next_moves_the_excluded_ticks_to_the_first_instant_after_the_excluded_days() -> None:
    daily = parse("every day at 09:00", "Europe/Dublin")
    found = preview(daily, rules("on public holidays in IE"), at("2026-12-24T12:00"), 3, True)
    assert [(u.at, u.skipped is None, u.moved) for u in found] == [
        (at("2026-12-25T09:00"), False, False),  # Christmas Day
        (at("2026-12-26T09:00"), False, False),  # Saint Stephen's Day: the same period
        (at("2026-12-27T00:00"), True, True),  # both moved here, once
        (at("2026-12-27T09:00"), True, False),  # and the day's own tick
        (at("2026-12-28T09:00"), True, False),
    ]


def test_a_moved_run_and_a_tick_at_the_same_instant_are_one_run() -> None:
    midnight = parse("every day at 00:00", "Europe/Dublin")
    found = preview(midnight, rules("2026-12-25"), at("2026-12-24T12:00"), 2, True)
    assert [(u.at, u.skipped is None, u.moved) for u in found] == [
        (at("2026-12-25T00:00"), False, False),
        (at("2026-12-26T00:00"), True, True),
        (at("2026-12-27T00:00"), True, False),
    ]


def test_all_the_ticks_of_an_excluded_day_move_as_one_run() -> None:
    hourly = parse("every hour", "Europe/Dublin")
    excluded = rules("2026-12-25")
    walk = upcoming(hourly, excluded, at("2026-12-24T22:30"), True)
    runs = list(itertools.islice((u.at for u in walk if not u.skipped), 4))
    assert runs == [
        at("2026-12-24T23:00"),
        at("2026-12-26T00:00"),  # the 24 ticks of Christmas Day, and 00:00 itself
        at("2026-12-26T01:00"),
        at("2026-12-26T02:00"),
    ]


def test_a_weekly_job_moved_off_its_day_runs_the_next_morning() -> None:
    monday = parse("every Monday at 09:00", "Europe/Dublin")
    excluded = rules("2026-12-28")
    assert next_run(monday, excluded, at("2026-12-27T12:00"), True) == at("2026-12-29T00:00")
    assert next_run(monday, excluded, at("2026-12-27T12:00")) == at("2027-01-04T09:00")


def test_a_moved_run_after_a_spring_forward_gap_at_midnight_is_the_gaps_end() -> None:
    # Chile springs forward at 00:00 (to 01:00) on the first Sunday of September.
    santiago = parse("every day at 09:00", "America/Santiago")
    excluded = rules("2026-09-05")
    start = datetime(2026, 9, 4, 12, tzinfo=ZoneInfo("America/Santiago"))
    moved = next_run(santiago, excluded, start, True)
    assert moved is not None
    assert moved.astimezone(ZoneInfo("America/Santiago")).replace(tzinfo=None) == datetime(
        2026, 9, 6, 1, 0
    )


def test_a_job_excluded_for_longer_than_the_horizon_has_no_next_run() -> None:
    yearly = parse("every January 1st at 09:00", "Europe/Dublin")
    assert next_run(yearly, rules("on public holidays in IE"), at("2026-06-01T00:00")) is None
    assert next_run(yearly, rules("on public holidays in IE"), at("2026-06-01T00:00"), True) == (
        at("2027-01-02T00:00")
    )


def test_an_unknown_calendar_and_an_unreadable_rule_exclude_nothing() -> None:
    assert not rules("calendar: nowhere")
    assert not resolve_items(["on public holidays in XX"], {}, BOOK)


# -- the walk against a brute-force oracle ----------------------------------------------------

SCHEDULES = [
    "every hour",
    "every 20 minutes",
    "every day at 01:30",  # inside the spring-forward gap of Europe/Dublin
    "every day at 00:00 and 09:00",
    "every Monday and Friday at 09:00",
    "*/45 1-3 * * *",
]

RULE_TEXTS = [
    "on public holidays in IE",
    "on public holidays in GB-NIR",
    "on weekends",
    "on Tuesdays",
    "the last Sunday of each month",  # the day of each DST change in Europe
    "2026-03-29",
    "2026-10-24 to 2026-10-26",
    "2025-12-20 to 2026-01-04",
]


def _excluded_by_oracle(day: date, texts: list[str]) -> bool:
    """The definitions of docs/schedules.md, written without the code under test."""
    for text in texts:
        if text.startswith("on public holidays in "):
            region = text.removeprefix("on public holidays in ")
            country, _, sub = region.partition("-")
            if day in holidays.country_holidays(country, subdiv=sub or None, years=day.year):
                return True
        elif text in ("on weekends", "on Tuesdays"):
            if day.weekday() in ((5, 6) if text == "on weekends" else (1,)):
                return True
        elif text == "the last Sunday of each month":
            last = max(d for d in range(1, 32) if _is(day.year, day.month, d, 6))
            if day.day == last:
                return True
        elif text[0].isdigit():
            first, _, last_text = text.partition(" to ")
            if date.fromisoformat(first) <= day <= date.fromisoformat(last_text or first):
                return True
    return False


def _is(year: int, month: int, day: int, weekday: int) -> bool:
    return day <= cal.monthrange(year, month)[1] and date(year, month, day).weekday() == weekday


def _first_instant_of(day: date) -> datetime:
    """The earliest minute whose wall date in Dublin is ``day``, found minute by minute."""
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=3)
    while moment.astimezone(DUBLIN).date() != day:
        moment += timedelta(minutes=1)
    return moment


def _oracle_next(text: str, texts: list[str], after: datetime, move: bool) -> datetime | None:
    schedule = parse(text, "Europe/Dublin")
    tick = schedule.next_after(after)
    while tick is not None:
        day = tick.astimezone(DUBLIN).date()
        if not _excluded_by_oracle(day, texts):
            return tick
        if move:
            allowed = day + timedelta(days=1)
            while _excluded_by_oracle(allowed, texts):
                allowed += timedelta(days=1)
            return _first_instant_of(allowed)
        tick = schedule.next_after(tick)
    return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.sampled_from(SCHEDULES),
    texts=st.lists(st.sampled_from(RULE_TEXTS), min_size=1, max_size=3, unique=True),
    after=near_a_change(["Europe/Dublin"], timedelta(days=3)),
    move=st.booleans(),
)
def test_the_next_run_is_the_oracles_across_dst(
    text: str, texts: list[str], after: datetime, move: bool
) -> None:
    schedule = parse(text, "Europe/Dublin")
    found = next_run(schedule, rules(*texts), after, move)
    assert found == _oracle_next(text, texts, after, move)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.sampled_from(SCHEDULES),
    texts=st.lists(st.sampled_from(RULE_TEXTS), min_size=1, max_size=3, unique=True),
    after=near_a_change(["Europe/Dublin"], timedelta(days=2)),
)
def test_every_tick_is_a_run_or_inside_a_skip_that_names_its_rule(
    text: str, texts: list[str], after: datetime
) -> None:
    schedule = parse(text, "Europe/Dublin")
    excluded = rules(*texts)
    walked: list[ex.Upcoming] = []
    horizon = after + timedelta(days=4)
    for item in upcoming(schedule, excluded, after):
        if item.at > horizon:
            break
        walked.append(item)
    # As timestamps: two wall times of one zone compare (and hash) without their fold.
    runs = {u.at.timestamp() for u in walked if u.skipped is None}
    skips = [u for u in walked if u.skipped is not None]
    tick = schedule.next_after(after)
    end = (walked[-1].at if walked else after).timestamp()
    while tick is not None and tick.timestamp() <= end:
        day = tick.astimezone(DUBLIN).date()
        if _excluded_by_oracle(day, texts):
            assert tick.timestamp() not in runs
            covering = [
                s
                for s in skips
                if s.at.timestamp() <= tick.timestamp()
                and day <= (s.through or s.at.astimezone(DUBLIN).date())
            ]
            assert covering, (tick, skips)
            assert excluded.check(day) is not None
        else:
            assert tick.timestamp() in runs
        tick = schedule.next_after(tick)
    for skip in skips:
        found = excluded.check(skip.at.astimezone(DUBLIN).date())
        assert found is not None and skip.skipped == found.reason
