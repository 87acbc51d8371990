"""Durations and job ids: the small values inside a job file."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odin import config
from odin.errors import InvalidInput
from odin.jobs.durations import format_duration, parse_duration
from odin.jobs.ids import is_job_id, new_job_id


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("90", 90.0),
        (90, 90.0),
        (2.5, 2.5),
        ("1.5h", 5400.0),
        ("0.1h", 360.0),
        (" 1h 30m ", 5400.0),
        ("1 hour 30 minutes", 5400.0),
        ("2 days 3 hours 4 mins 5 secs", 2 * 86400 + 3 * 3600 + 4 * 60 + 5.0),
        ("1D2H", 93600.0),
        ("0.25s", 0.25),
    ],
)
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "not a duration"),
        ("soon", "not a duration"),
        ("30m1h", "not a duration"),
        ("1h1h", "not a duration"),
        ("5mm", "not a duration"),
        ("-5m", "not a duration"),
        ("1e5s", "not a duration"),
        ("٣s", "not a duration"),
        ("0", "positive"),
        ("0s", "positive"),
        (0, "positive"),
        (-1.0, "positive"),
        (math.nan, "positive"),
        ("0.0001s", "too short"),
        ("367d", "too long"),
        (math.inf, "too long"),
        (10**400, "too long"),
        (True, "text or a number"),
    ],
)
def test_parse_duration_refuses(text: str | int | float, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_duration(text)
    assert fragment in str(caught.value)
    assert "30s, 5m, 1h" in str(caught.value) or "duration is" in str(caught.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5400, "1h30m"), (90, "1m30s"), (0, "0s"), (86400 + 1, "1d1s"), (0.25, "0.25s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(
    st.floats(min_value=config.MIN_DURATION_S, max_value=config.MAX_DURATION_S)
    | st.integers(1, int(config.MAX_DURATION_S)).map(float)
)
def test_format_then_parse_is_exact(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.text(max_size=30) | st.integers() | st.floats())
def test_parse_duration_only_raises_invalid_input(text: str | int | float) -> None:
    try:
        seconds = parse_duration(text)
    except InvalidInput:
        return
    assert config.MIN_DURATION_S <= seconds <= config.MAX_DURATION_S


def test_new_job_ids_are_valid_and_fresh() -> None:
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_job_id(job_id) for job_id in ids)


@pytest.mark.parametrize(
    "text", ["", "a37b187f593", "a37b187f5930a", "A37B187F5930", "g37b187f5930", " a37b187f5930"]
)
def test_is_job_id_refuses(text: str) -> None:
    assert not is_job_id(text)


def test_is_job_id_refuses_non_text() -> None:
    assert not is_job_id(0xA37B187F5930)
