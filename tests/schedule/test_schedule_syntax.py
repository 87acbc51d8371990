"""The three syntaxes never claim the same text with different meanings.

- A valid cron text is never valid English nor a systemd calendar event, and the reverse.
- A systemd calendar event is never cron; where English also reads one (``Sat,Sun 10:00``,
  ``daily``), English wins and the fires are the same (test_schedule_systemd.py).
- Whatever the text, ``parse`` raises ScheduleError and nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odin.errors import ScheduleError
from odin.schedule import Syntax, parse, syntax_of
from odin.schedule.cron import MACROS, is_cron, parse_cron
from odin.schedule.oncalendar import parse_event
from odin.schedule.parser import Parser
from test_schedule_cron import expressions
from test_schedule_forms_props import new_forms
from test_schedule_props import rules, second_rules
from test_schedule_systemd import Event, events

MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

cron_texts = (
    expressions().map(lambda case: case[0])
    | st.sampled_from(sorted(MACROS)).map(lambda m: m.upper() if len(m) % 2 else m)
    | expressions().map(lambda case: "cron: " + case[0])
)
english_texts = st.lists(rules | second_rules | new_forms, min_size=1, max_size=3).map(
    " and ".join
) | st.just("never")


def reads(read: object, text: str) -> bool:
    try:
        read(text)  # type: ignore[operator]
    except ScheduleError:
        return False
    return True


@MANY
@given(cron_texts)
def test_cron_is_neither_english_nor_systemd(text: str) -> None:
    try:
        parse(text)
    except ScheduleError:
        return  # e.g. "0 0 31 2 *" never fires: not valid cron either
    assert is_cron(text) and syntax_of(text) is Syntax.CRON
    assert not reads(lambda t: Parser(t).schedule(), text)
    assert not reads(parse_event, text)


@MANY
@given(english_texts)
def test_english_is_not_cron(text: str) -> None:
    if not reads(lambda t: Parser(t).schedule(), text):
        return  # e.g. a window shorter than its interval
    assert not is_cron(text)
    assert not reads(parse_cron, text)
    assert syntax_of(text) is Syntax.ENGLISH


@MANY
@given(events)
def test_systemd_is_not_cron(event: Event) -> None:
    if not reads(parse_event, event.text):
        return  # e.g. Feb 30th: never fires
    assert not is_cron(event.text)
    assert not reads(parse_cron, event.text)
    assert syntax_of(event.text) in (Syntax.SYSTEMD, Syntax.ENGLISH)


@pytest.mark.parametrize(
    ("text", "syntax"),
    [
        ("every 10 minutes on weekdays", Syntax.ENGLISH),
        ("5 minutes", Syntax.ENGLISH),
        ("every 2 hours at :15", Syntax.ENGLISH),
        ("Sat,Sun 10:00", Syntax.ENGLISH),
        ("daily", Syntax.ENGLISH),
        ("hourly", Syntax.ENGLISH),
        ("*/15 9-17 * * 1-5", Syntax.CRON),
        ("0 9 * * MON-FRI in Europe/Dublin", Syntax.CRON),
        ("@weekly", Syntax.CRON),
        ("cron: 30 0 12 * * *", Syntax.CRON),
        ("Mon..Fri *-*-* 09:00", Syntax.SYSTEMD),
        ("weekly", Syntax.SYSTEMD),
        ("*-*-* *:0/15", Syntax.SYSTEMD),
        ("10:00", Syntax.SYSTEMD),
        ("Mon,Tue *-*-* 10:00,12", Syntax.SYSTEMD),
    ],
)
def test_examples(text: str, syntax: Syntax) -> None:
    assert syntax_of(text) is syntax


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("every Satruday at 10:00", 'did you mean "Saturday"'),  # English's error
        ("*/15 9-17 * *", "5 fields"),  # cron's
        ("Mon..Fry 10:00", '"Fry"'),  # systemd's
        ("weekly at 10:00", '"weekly"'),  # neither: English's, which names the word
    ],
)
def test_the_error_comes_from_the_syntax_the_text_looks_like(text: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse(text)


VOCABULARY = str.split(
    "every on at and in the of month day hourly daily weekly monthly quarterly minutely "
    "between from to last first second third fifth monday Mon..Fri Sat,Sun Mon-Wed fri "
    "january :30 :15:45 09:00 09:00:30 9am noon 25:00 *-*-* *-*-01 *-02~01 *:0/15 9..17:00 "
    "*/15 9-17 * 1-5 @daily @reboot cron: UTC Europe/Dublin in 1st 31st 0 60 99999999999 , ~ .."
)


@settings(max_examples=600, deadline=None)
@given(
    st.lists(st.sampled_from(VOCABULARY), max_size=10).map(" ".join)
    | st.text(alphabet="0123456789*-~:/., MonTueSat@", max_size=30),
    st.sampled_from(["UTC", "America/New_York", "Not/AZone"]),
)
def test_only_schedule_error_escapes(text: str, default_tz: str) -> None:
    try:
        schedule = parse(text, default_tz)
    except ScheduleError as error:
        assert 0 <= error.position <= len(text)
        assert error.expected
        return
    schedule.describe()
    schedule.explain()
    schedule.cron()
    schedule.next_n(datetime(2025, 1, 1, tzinfo=UTC), 2)
