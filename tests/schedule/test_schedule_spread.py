"""Spread, cron's H and lists of schedules (issue #26): pure, no clock."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from job_values import a_job
from odin.cluster.model import Job
from odin.engine.planner import Planner, next_tick
from odin.errors import ScheduleError
from odin.jobs.fields import SCHEDULE_SEPARATOR
from odin.schedule import parse, syntax_of
from odin.schedule.model import LIST_SEPARATOR
from odin.schedule.spread import amount_text, offset_of, stable_hash

T = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)  # a Tuesday
IDS = [f"{random.Random(seed).getrandbits(48):012x}" for seed in range(20)]


def job(job_id: str = "aaaaaaaaaaaa", **changes: object) -> Job:
    return a_job(job_id, **{"schedule": "every hour", **changes})


def seconds_past_hour(moment: datetime) -> int:
    return moment.minute * 60 + moment.second


def chi_square_p(observed: list[int], expected: float) -> float:
    """The p-value of Pearson's chi-square for equal bins; an even number of degrees of freedom
    (an odd number of bins) has a closed form: P = e^-y * sum(y^i / i!, i < k/2), y = x/2."""
    freedom = len(observed) - 1
    assert freedom % 2 == 0
    statistic = sum((count - expected) ** 2 / expected for count in observed)
    half = statistic / 2
    term, total = 1.0, 1.0
    for i in range(1, freedom // 2):
        term *= half / i
        total += term
    return math.exp(-half) * total


# -- spread ---------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", IDS)
def test_an_hourly_spread_fixes_one_offset_under_ten_minutes_for_each_job(job_id: str) -> None:
    placed = parse("every hour, spread over 10 minutes").placed(job_id)
    fires = placed.next_n(T, 6)
    offsets = {seconds_past_hour(fire) for fire in fires}
    assert offsets == {placed.offset_s} and 0 <= placed.offset_s < 600
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(fires))
    assert fires[0] - T < timedelta(hours=1)


def test_a_daily_spread_stays_in_its_window_every_day_across_dst() -> None:
    schedule = parse("every day at 09:00, spread over 30 minutes", "Europe/Dublin")
    start = datetime(2026, 3, 25, tzinfo=UTC)  # Dublin springs forward on March 29th
    for job_id in IDS:
        fires = schedule.placed(job_id).next_n(start, 8)
        local = [fire.astimezone(schedule.zone) for fire in fires]
        assert len({moment.date() for moment in local}) == 8  # one a day
        assert all(moment.hour == 9 and moment.minute < 30 for moment in local)
        assert len({(m.minute, m.second) for m in local}) == 1  # the same offset every day


def test_the_offset_depends_on_the_id_alone_and_is_the_same_in_every_process() -> None:
    assert stable_hash("a37b187f5930") == 14124572968068993270  # a change moves every job
    assert offset_of("a37b187f5930", 3600) == 3270
    first = [offset_of(job_id, 3600) for job_id in IDS]
    assert first == [offset_of(job_id, 3600) for job_id in IDS]
    assert len(set(first)) > len(IDS) // 2  # jobs differ


def test_the_offsets_of_1000_hourly_jobs_are_uniform_and_survive_a_leader_change() -> None:
    """1,000 random ids, ``every hour, spread over 60 minutes``: the offsets fill the hour
    evenly (chi-square over 45 bins of 80 s, p > 0.01), and a fresh planner, as a new leader
    builds, plans each job at the same instants."""
    rng = random.Random(26)
    ids = [f"{rng.getrandbits(48):012x}" for _ in range(1000)]
    jobs = [job(job_id, schedule="every hour, spread over 60 minutes") for job_id in ids]
    now = T.timestamp()
    ticks = [next_tick(j, now) for j in jobs]
    assert all(t is not None and now < t <= now + 3600 for t in ticks)
    offsets = [int(t - now) % 3600 for t in ticks if t is not None]
    bins = [0] * 45
    for offset in offsets:
        bins[offset // 80] += 1
    p = chi_square_p(bins, len(offsets) / 45)
    assert p > 0.01, (p, bins)

    planners = [Planner(), Planner()]
    handed = []
    for planner in planners:  # the old leader, then a new one from the same ledger
        planner.reset(jobs, {j.id: now for j in jobs}, now)
        handed.append(sorted((d.job_id, d.instant) for d in planner.due(now + 2 * 3600)))
    assert handed[0] == handed[1] and len(handed[0]) == 2000


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("every hour, spread over 10 minutes", "every hour, spread over 10 minutes"),
        ("every hour spread over an hour", "every hour, spread over 1 hour"),
        ("EVERY DAY AT 09:00, Spread Over 30 Mins", "every day at 09:00, spread over 30 minutes"),
        ("*/15 * * * *, spread over 5 minutes", "cron: */15 * * * *, spread over 5 minutes"),
        ("Mon..Fri 09:00, spread over 90 seconds", None),
    ],
)
def test_a_spread_reads_in_any_syntax_and_describes_itself(
    text: str, canonical: str | None
) -> None:
    schedule = parse(text)
    assert schedule.spread_s > 0 and schedule.needs_job
    described = schedule.describe()
    if canonical is not None:
        assert described == canonical
    assert parse(described) == parse(described)
    assert parse(described).spread_s == schedule.spread_s
    assert schedule.cron() is None  # no cron line says "each job its own offset"
    assert "each job at its own fixed offset" in schedule.explain()
    assert "later" in schedule.placed(IDS[0]).explain()


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("every hour, spread over", "spread"),
        ("spread over 10 minutes", "spread"),
        ("every hour, spread over ten minutes", "ten"),
        ("every hour, spread over 10 parsecs", "parsecs"),
        ("every hour, spread over 0 minutes", "0"),
        ("every hour, spread over 400 days", "400"),
        ("every hour, spread over 10 minutes at 09:00", "spread"),
    ],
)
def test_a_wrong_spread_is_refused_at_its_word(text: str, word: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text)
    assert caught.value.position == text.index(word) or caught.value.position == 0
    assert "spread" in str(caught.value)


def test_amounts_read_back() -> None:
    assert amount_text(600) == "10 minutes"
    assert amount_text(3600) == "1 hour"
    assert amount_text(250) == "4 minutes 10 seconds"
    assert amount_text(86400 + 1) == "1 day 1 second"


# -- cron's H -----------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", IDS[:8])
def test_h_is_a_minute_fixed_by_the_job(job_id: str) -> None:
    placed = parse("H * * * *").placed(job_id)
    fires = placed.next_n(T, 5)
    assert len({fire.minute for fire in fires}) == 1 and all(f.second == 0 for f in fires)
    assert placed.cron() == [f"{fires[0].minute} * * * *"]


@pytest.mark.parametrize("job_id", IDS[:8])
def test_h_every_15_minutes_keeps_the_step_from_a_fixed_start(job_id: str) -> None:
    fires = parse("H/15 * * * *").placed(job_id).next_n(T, 8)
    assert len({fire.minute % 15 for fire in fires}) == 1
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(fires))


@pytest.mark.parametrize("job_id", IDS[:8])
def test_h_in_a_range_on_weekdays(job_id: str) -> None:
    fires = parse("H(0-29) 9 * * 1-5").placed(job_id).next_n(T, 10)
    assert all(f.hour == 9 and f.minute < 30 and f.weekday() < 5 for f in fires)
    assert len({f.minute for f in fires}) == 1


def test_h_in_two_fields_is_one_daily_time_and_other_jobs_get_other_times() -> None:
    times = set()
    for job_id in IDS:
        fires = parse("H H * * *").placed(job_id).next_n(T, 3)
        assert len({(f.hour, f.minute) for f in fires}) == 1
        times.add((fires[0].hour, fires[0].minute))
    assert len(times) > len(IDS) // 2


def test_h_before_it_is_placed_describes_itself_with_its_h() -> None:
    schedule = parse("H(0-29) 9 * * 1-5")
    assert schedule.describe() == "cron: H(0-29) 9 * * 1-5"
    assert syntax_of("H(0-29) 9 * * 1-5").value == "cron"
    assert schedule.cron() is None and "job's id" in schedule.explain()
    assert parse("0 9 * * THU").needs_job is False  # an H inside a name is no H


@pytest.mark.parametrize(
    "text",
    [
        "H(0-99) * * * *",  # past the field
        "H(30-10) * * * *",  # backwards
        "0 0 31 H *",  # an H month may be February
        "0 0 H(29-31) * *",  # H days stop at the 28th
        "H/0 * * * *",
    ],
)
def test_a_wrong_h_is_refused(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse(text)


# -- several schedules --------------------------------------------------------------------

POOL = [
    "every 2 hours",
    "every 15 minutes",
    "0 9 * * *",
    "every day at 09:00 in Asia/Tokyo",
    "*/20 * * * *",
    "every hour, spread over 10 minutes",
    "H/30 * * * *",
    "every Monday at 09:00",
    "Mon..Fri *-*-* 09:00",
    "every 2 hours synchronized",
]


@settings(max_examples=60, deadline=None)
@given(
    entries=st.lists(st.sampled_from(POOL), min_size=2, max_size=4),
    job_id=st.sampled_from(IDS),
    hours=st.integers(0, 24 * 14),
)
def test_a_list_fires_at_the_union_of_its_entries_once_each(
    entries: list[str], job_id: str, hours: int
) -> None:
    start = T + timedelta(hours=hours, minutes=7)
    end = start + timedelta(days=2)
    union = parse(f"{LIST_SEPARATOR} ".join(entries)).placed(job_id)
    oracle: set[datetime] = set()
    for entry in entries:  # each alone, by brute force: every fire up to the end
        alone = parse(entry).placed(job_id)
        moment = alone.next_after(start)
        while moment is not None and moment <= end:
            oracle.add(moment)
            moment = alone.next_after(moment)
    fires: list[datetime] = []
    moment = union.next_after(start)
    while moment is not None and moment <= end:
        fires.append(moment)
        moment = union.next_after(moment)
    assert fires == sorted(oracle)  # strictly increasing: a tick two entries give is one


def test_a_list_describes_and_explains_each_entry_and_keeps_other_zones() -> None:
    text = "every hour; 0 9 * * 1-5; every day at 09:15 in Asia/Tokyo"
    schedule = parse(text, "UTC")
    assert schedule.describe() == (
        "every hour; cron: 0 9 * * 1-5; every day at 09:15 in Asia/Tokyo"
    )
    assert parse(schedule.describe(), "UTC").next_n(T, 20) == schedule.next_n(T, 20)
    assert schedule.explain().endswith("in Asia/Tokyo")
    assert schedule.cron() is None  # one entry is in another zone
    assert parse("every hour; 0 9 * * 1-5").cron() == ["0 * * * *", "0 9 * * 1-5"]
    assert SCHEDULE_SEPARATOR.strip() == LIST_SEPARATOR


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("every hour; every Satruday at 10:00", "schedule 2 of 2"),
        ("every hour;", "schedule 2 of 2"),
        ("never; every hour", "schedule 1 of 2"),
        ("every hour; ; @daily", "schedule 2 of 3"),
    ],
)
def test_a_wrong_entry_of_a_list_is_named(text: str, entry: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text)
    assert str(caught.value).startswith(entry)


def test_a_tick_two_entries_give_is_planned_once() -> None:
    planner = Planner()
    start = T.timestamp()
    planner.update(job(schedule="every hour; 0 * * * *; every 30 minutes"), start)
    due = planner.due(start + 3 * 3600)
    instants = [d.instant for d in due]
    assert instants == [start + 1800 * k for k in range(1, 7)]


WORDS = [
    "every", "hour", ",", "spread", "over", "10", "an", "minutes", ";", "H", "*", "H/15",
    "H(0-29)", "9", "in", "Europe/Dublin", "never", "day", "at", "09:00", "1-5", "cron:",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12), st.sampled_from(IDS))
def test_any_text_of_these_words_parses_and_reads_back_or_is_a_schedule_error(
    words: list[str], job_id: str
) -> None:
    text = " ".join(words)
    try:
        schedule = parse(text, "UTC")
    except ScheduleError:
        return
    again = parse(schedule.describe(), "UTC")
    assert again.placed(job_id).next_n(T, 5) == schedule.placed(job_id).next_n(T, 5)
