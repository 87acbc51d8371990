"""Checks of ``except:`` items, shared by job files and calendar files (``odin.jobs.calendars``).

Each item is stored as the canonical text of its rule (``odin.schedule.exceptions``), so
that a job's exceptions compare, replicate and print as plain strings: ``"on weekends"``,
``"2026-12-24 to 2027-01-02"``, ``"on public holidays in US-CA"``, ``"calendar: closed"``.
"""

from __future__ import annotations

from collections.abc import Iterable

from odin.errors import ScheduleError
from odin.jobs.fields import Problem

MAX_EXCEPT_ITEMS = 100
"""Items in one ``except:`` list (a job's or a calendar's) at most."""


def check_except_item(text: str | None) -> str:
    """One exception rule, as its canonical text; ``Problem`` says what is wrong."""
    from odin.schedule.exceptions import read_item  # the schedule language: loaded when used

    try:
        return read_item((text or "").strip()).describe()
    except ScheduleError as error:
        raise Problem(error.message) from None


def check_calendar_ref(name: str | None) -> str:
    """A ``calendar: NAME`` item, as its canonical text."""
    from odin.schedule.exceptions import CalendarRef, check_calendar_name

    try:
        return CalendarRef(check_calendar_name(name or "")).describe()
    except ScheduleError as error:
        raise Problem(error.message) from None


def check_except_list(items: Iterable[str]) -> tuple[str, ...]:
    """The items of an ``except:`` list, each once, within ``MAX_EXCEPT_ITEMS``."""
    found = tuple(dict.fromkeys(items))
    if len(found) > MAX_EXCEPT_ITEMS:
        raise Problem(f"has {len(found)} items: at most {MAX_EXCEPT_ITEMS} are allowed")
    return found


def is_calendar_item(text: str) -> bool:
    """Whether a stored item names a calendar."""
    return text.startswith("calendar:")
