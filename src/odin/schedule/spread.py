"""Spread: each job's ticks at a fixed offset that its id chooses, like Jenkins' ``H``.

``every hour, spread over 10 minutes`` is ``every hour`` moved, for each job, by an offset
from 0 to 9 min 59 s that a hash of the job's id fixes (to the second): the same on every
node, across restarts and leader changes, different from job to job and uniform over many
jobs. In cron, ``H`` in a field (``H/15 * * * *``, ``H(0-29) 9 * * 1-5``) is a value of that
field fixed the same way. The parser knows no job: a schedule keeps its window
(``Schedule.spread_s``) or its ``H`` fields (``odin.schedule.cron.HashedCronRule``), and
``Schedule.placed(job_id)`` makes one job's own schedule. Pure: no clock, no randomness.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import NoReturn

from odin import config
from odin.errors import ScheduleError
from odin.schedule import words

EXAMPLE_JOB_ID = "000000000000"
"""The job id ``odin schedule`` shows a spread schedule's instants for when it is given none."""

SPREAD_EXPECTED = '", spread over" and a duration, like "spread over 10 minutes", at the end'
_SPREAD_WORD = re.compile(r"\bspread\b", re.IGNORECASE)
_CLAUSE = re.compile(
    r"(?P<sep>\s*,\s*|\s+)spread\s+over\s+(?P<amount>[^\s,]+)\s+(?P<unit>[^\s,]+)\s*\Z",
    re.IGNORECASE,
)
_AMOUNT = re.compile(r"\d{1,9}", re.ASCII)
_SIZES = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))

H_TERM = re.compile(r"H(?:\((\d{1,2})-(\d{1,2})\))?(?:/(\d{1,2}))?", re.ASCII)
"""One ``H`` item of a cron field: ``H``, ``H/15``, ``H(0-29)``, ``H(0-29)/10``."""

_FIVE_FIELDS = ((0, 59, "minute"), (0, 23, "hour"), (1, 28, "day of the month"), (1, 12, "month"))
_WEEKDAY_FIELD = (0, 6, "day of the week")
_SECOND_FIELD = (0, 59, "second")


def stable_hash(job_id: str, digit: int = 0) -> int:
    """A 64-bit number fixed by the job id (and which ``H`` of its schedule it is for)."""
    key = job_id if digit == 0 else f"{job_id}#{digit}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def offset_of(job_id: str, spread_s: int) -> int:
    """The job's offset inside a window of ``spread_s`` seconds: 0 to ``spread_s - 1``."""
    return stable_hash(job_id) % spread_s if spread_s > 0 else 0


def amount_text(seconds: int) -> str:
    """``10 minutes``, ``1 hour``, ``4 minutes 10 seconds``: a whole number of seconds in words."""
    if seconds == 0:
        return "0 seconds"
    parts: list[str] = []
    remaining = seconds
    for size, unit in _SIZES:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count} {unit}" + ("" if count == 1 else "s"))
    return " ".join(parts)


def window_text(seconds: int) -> str:
    """A spread's window as the schedule writes it, in its largest whole unit: ``90 seconds``,
    ``10 minutes``, ``1 hour`` (it reads back the same)."""
    for size, unit in _SIZES:
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    return f"{seconds} seconds"  # unreachable: the last size is 1


def split_spread(text: str) -> tuple[str, int]:
    """The schedule without its ``, spread over DURATION`` ending, and the window in seconds
    (0 when it has none); ScheduleError when ``spread`` is not such an ending."""
    word = _SPREAD_WORD.search(text)
    if word is None:
        return text, 0
    clause = _CLAUSE.search(text)
    if clause is None or clause.start("amount") < word.start():
        _fail(text, word.start(), f'unexpected "{word.group()}" at position {word.start()}')
    if not text[: clause.start()].strip():
        _fail(text, 0, "a schedule comes before its spread (position 0)")
    amount, unit = clause.group("amount").lower(), clause.group("unit").lower()
    if amount in ("a", "an"):
        count = 1
    elif _AMOUNT.fullmatch(amount):
        count = int(amount)
    else:
        at = clause.start("amount")
        _fail(text, at, f'"{clause.group("amount")[:20]}" is not a number (position {at})')
    size = words.UNITS.get(unit)
    if size is None:
        at = clause.start("unit")
        _fail(text, at, f'unexpected "{clause.group("unit")[:20]}" at position {at}')
    seconds = count * size
    if not 1 <= seconds <= config.MAX_SCHEDULE_PERIOD_S:
        at = clause.start("amount")
        limit = config.MAX_SCHEDULE_PERIOD_S // 86400
        _fail(text, at, f"a spread is 1 second to {limit} days (position {at})")
    return text[: clause.start()], seconds


def _fail(text: str, position: int, message: str) -> NoReturn:
    raise ScheduleError(
        f"{message}: expected {SPREAD_EXPECTED}",
        text=text,
        position=position,
        expected=SPREAD_EXPECTED,
    )


# -- cron's H -------------------------------------------------------------------------


def has_hash(fields: list[str]) -> bool:
    """Whether any item of the cron ``fields`` is an ``H`` item."""
    return any(H_TERM.fullmatch(item) for field in fields for item in field.split(","))


def hash_field(field: str) -> bool:
    """Whether a cron field is made of ``H`` items and numbers only (for telling cron apart)."""
    items = field.split(",")
    return any(H_TERM.fullmatch(i) for i in items) and all(
        H_TERM.fullmatch(i) or re.fullmatch(r"[0-9*/\-]+", i) for i in items
    )


@dataclass(frozen=True)
class HashTerm:
    """One ``H`` item: ``low`` to ``high``, stepping by ``step`` (0: a single value)."""

    low: int
    high: int
    step: int

    def value(self, number: int) -> str:
        """The cron item this ``H`` stands for, given the job's hash ``number``."""
        if self.step:
            first = self.low + number % min(self.step, self.high - self.low + 1)
            return str(first) if first == self.high else f"{first}-{self.high}/{self.step}"
        return str(self.low + number % (self.high - self.low + 1))


def field_limits(count: int) -> list[tuple[int, int, str]]:
    """The ``H`` range of each field of a cron expression of ``count`` fields."""
    five = [*_FIVE_FIELDS, _WEEKDAY_FIELD]
    return [_SECOND_FIELD, *five] if count == 6 else five


def hash_terms(fields: list[str]) -> list[list[HashTerm | str]]:
    """Each field's items, its ``H`` items read (ValueError with the reason when one is wrong)."""
    read: list[list[HashTerm | str]] = []
    for field, (low, high, name) in zip(fields, field_limits(len(fields)), strict=True):
        items: list[HashTerm | str] = []
        for item in field.split(","):
            match = H_TERM.fullmatch(item)
            if match is None:
                items.append(item)
                continue
            first, last, step = match.groups()
            start = low if first is None else int(first)
            end = high if last is None else int(last)
            if not low <= start <= end <= high:
                raise ValueError(f"{item} in the {name}: H picks from {low} to {high}")
            if step is not None and int(step) < 1:
                raise ValueError(f"{item} in the {name}: the step is at least 1")
            items.append(HashTerm(start, end, 0 if step is None else int(step)))
        read.append(items)
    return read


def substitute(terms: list[list[HashTerm | str]], job_id: str | None) -> list[str]:
    """The fields with each ``H`` replaced by the job's value (the lowest one for no job)."""
    fields: list[str] = []
    digit = 0
    for items in terms:
        written: list[str] = []
        for item in items:
            if isinstance(item, HashTerm):
                number = 0 if job_id is None else stable_hash(job_id, digit)
                written.append(item.value(number))
                digit += 1
            else:
                written.append(item)
        fields.append(",".join(written))
    return fields


def month_choices(terms: list[list[HashTerm | str]]) -> list[list[str]]:
    """Every value an ``H`` in the month field may take, as fields (to check each fires)."""
    month = len(terms) - 2
    hashed = [item for item in terms[month] if isinstance(item, HashTerm)]
    if not hashed:
        return []
    others = substitute(terms, None)
    choices: list[list[str]] = []
    for number in range(12):
        fields = list(others)
        fields[month] = ",".join(
            item.value(number) if isinstance(item, HashTerm) else item for item in terms[month]
        )
        choices.append(fields)
    return choices
