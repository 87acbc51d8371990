"""Cron text → ``CronRule``: ``cron: <5 or 6 fields>``, bare 5-field cron, and ``@daily``-style macros.

Cron is told from English by its first two fields alone: minute and hour are
made only of digits, ``*``, ``/``, ``,`` and ``-``, while English always has a
word (a keyword, a day, or a unit after a number) among its first two. A list
of numbers followed by ``of`` is App Engine's (``1, 15 of month 09:00``), never
cron's, which has no field ``of``. So a text is cron exactly when ``is_cron``
says so, and the syntaxes never overlap. The
fields are checked, evaluated and explained by cronsim, with Vixie cron's rule
for days: when both day fields are restricted, either one fires. ``H`` in a field
is Jenkins' hashed value (``odin.schedule.spread``): a ``HashedCronRule``, which
``placed`` makes concrete for one job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn
from zoneinfo import ZoneInfo

from cronsim import CronSim

from odin.errors import ScheduleError
from odin.schedule.parser import Token
from odin.schedule.rules import CRON_EXPLAIN_START, CronRule
from odin.schedule.spread import (
    HashTerm,
    has_hash,
    hash_field,
    hash_terms,
    month_choices,
    substitute,
)

CRON_PREFIX = "cron:"
CRON_PROBE_START = datetime(2000, 1, 1, tzinfo=UTC)
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
BARE_FIELDS = 5
MONTH_NAMES = (
    "",
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_TIME_FIELD = re.compile(r"[0-9*/,\-]+", re.ASCII)
_ONE_VALUE_RANGE = re.compile(r"([0-9A-Za-z]+)-([0-9A-Za-z]+)/[0-9]+", re.ASCII)
# App Engine's "1, 15 of month 09:00": cron has no field "of", so such a text is never cron.
_DAYS_OF = re.compile(r"\s*\d+(?:\s*,\s*\d+)*\s+of(?:\s|\Z)", re.ASCII | re.IGNORECASE)


def is_cron(text: str) -> bool:
    """Is this text cron (prefixed, a macro, or bare fields) rather than English or systemd?"""
    fields = text.split()
    if not fields:
        return False
    if fields[0].lower().startswith(CRON_PREFIX) or fields[0].startswith("@"):
        return True
    if _DAYS_OF.match(text):
        return False
    return len(fields) >= 2 and all(_time_field(f) for f in fields[:2])


def _time_field(field: str) -> bool:
    """A minute or hour field: numbers, ``*``, ``/``, ``,``, ``-``, and Jenkins' ``H`` items."""
    return bool(_TIME_FIELD.fullmatch(field)) or hash_field(field)


def parse_cron(text: str) -> tuple[CronRule, Token | None]:
    """The rule and the ``in ZONE`` token, if any; ScheduleError for anything else."""
    start = len(text) - len(text.lstrip())
    prefixed = text.lstrip().lower().startswith(CRON_PREFIX)
    if prefixed:
        start = text.lower().index(CRON_PREFIX) + len(CRON_PREFIX)
    fields = text[start:].split()
    zone = None
    if len(fields) >= 2 and fields[-2].lower() == "in":
        zone = Token(fields[-1], fields[-1].lower(), text.rindex(fields[-1]))
        fields = fields[:-2]
    if not prefixed and fields and fields[0].startswith("@"):
        return CronRule(_macro(text, start, fields)), zone
    sizes = (5, 6) if prefixed else (BARE_FIELDS,)
    if len(fields) not in sizes:
        counts = "5 or 6 fields" if prefixed else "5 fields (for seconds, write cron: and 6)"
        _cron_error(text, start, f"a cron expression has {counts}, not {len(fields)}", prefixed)
    if not prefixed and not all(_time_field(f) for f in fields[:2]):
        _cron_error(text, start, "cron's minute and hour are numbers, *, /, , and -", prefixed)
    if has_hash(fields):
        return _hashed(text, start, fields, prefixed), zone
    return CronRule(_checked(text, start, fields, prefixed)), zone


def _checked(text: str, start: int, fields: list[str], prefixed: bool) -> str:
    """The expression of ``fields`` as cronsim reads it, once it is known to fire."""
    names = [()] * (len(fields) - 2) + [MONTH_NAMES, DAY_NAMES]
    expression = " ".join(_as_vixie(f, n) for f, n in zip(fields, names, strict=True))
    try:
        next(CronSim(expression, CRON_PROBE_START))
    except StopIteration:
        _cron_error(text, start, "this cron expression never fires", prefixed)
    except Exception as error:  # cronsim raises several types on bad fields
        _cron_error(text, start, f"invalid cron expression ({error})", prefixed)
    return expression


def _hashed(text: str, start: int, fields: list[str], prefixed: bool) -> HashedCronRule:
    """A rule with Jenkins' ``H`` items, checked for every value an ``H`` of the month takes."""
    try:
        terms = hash_terms(fields)
    except ValueError as error:
        _cron_error(text, start, f"invalid cron expression ({error})", prefixed)
    for choice in month_choices(terms):
        if not _fires(choice):
            _cron_error(text, start, "an H month may pick a month this never fires in", prefixed)
    expression = _checked(text, start, substitute(terms, None), prefixed)
    return HashedCronRule(expression, " ".join(fields), tuple(map(tuple, terms)))


def _fires(fields: list[str]) -> bool:
    names = [()] * (len(fields) - 2) + [MONTH_NAMES, DAY_NAMES]
    expression = " ".join(_as_vixie(f, n) for f, n in zip(fields, names, strict=True))
    try:
        next(CronSim(expression, CRON_PROBE_START))
    except Exception:  # StopIteration, or a field cronsim refuses
        return False
    return True


@dataclass(frozen=True)
class HashedCronRule(CronRule):
    """A cron expression with Jenkins' ``H`` items: ``expression`` is it for the job it was
    ``placed`` for, or with each ``H`` at its lowest value until it is placed."""

    template: str = ""  # the fields as written, with their H
    terms: tuple[tuple[HashTerm | str, ...], ...] = ()
    job_id: str | None = None

    def placed(self, job_id: str) -> HashedCronRule:
        """The rule of the job ``job_id``: each ``H`` at the value its id fixes."""
        fields = substitute([list(items) for items in self.terms], job_id)
        names = [()] * (len(fields) - 2) + [MONTH_NAMES, DAY_NAMES]
        expression = " ".join(_as_vixie(f, n) for f, n in zip(fields, names, strict=True))
        return HashedCronRule(expression, self.template, self.terms, job_id)

    def describe(self) -> str:
        return f"cron: {self.template}"

    def explain(self) -> str:
        if self.job_id is None:
            return f"cron {self.template}, each H a value fixed by the job's id"
        text: str = CronSim(self.expression, CRON_EXPLAIN_START).explain()
        return text[:1].lower() + text[1:]

    def cron(self, zone: ZoneInfo) -> list[str] | None:
        return None if self.job_id is None else [self.expression]


def _as_vixie(field: str, names: tuple[str, ...] = ()) -> str:
    """``9-9/2`` is 9 alone in Vixie cron, but cronsim steps on from 9: write it as ``9``."""

    def value(word: str) -> int:
        return names.index(word.lower()) if word.lower() in names else int(word)

    terms = []
    for term in field.split(","):
        match = _ONE_VALUE_RANGE.fullmatch(term)
        try:
            same = match is not None and value(match.group(1)) == value(match.group(2))
        except ValueError:  # not a number: cronsim will say what is wrong
            same = False
        terms.append(match.group(1) if match is not None and same else term)
    return ",".join(terms)


def _macro(text: str, start: int, fields: list[str]) -> str:
    expression = MACROS.get(fields[0].lower()) if len(fields) == 1 else None
    if expression is None:
        known = ", ".join(MACROS)
        raise ScheduleError(
            f'unknown cron macro "{" ".join(fields)[:40]}" (position {start}): expected one of {known}',
            text=text,
            position=start,
            expected=f"one of {known}",
        )
    return expression


def _cron_error(text: str, position: int, message: str, prefixed: bool) -> NoReturn:
    expected = '5 or 6 cron fields, like "*/5 * * * *"'
    if not prefixed:
        expected = '5 cron fields, like "*/15 9-17 * * 1-5"'
    raise ScheduleError(
        f"{message} (position {position}): expected {expected}",
        text=text,
        position=position,
        expected=expected,
    )
