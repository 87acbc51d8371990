"""Durations written by people: ``30s``, ``5m``, ``1h30m``, ``2d``, ``90``.

A duration is a sum of numbers with units, largest unit first, each unit at
most once; a bare number means seconds. The result is a positive, finite
number of seconds between ``config.MIN_DURATION_S`` and ``MAX_DURATION_S``, and
``format_duration`` writes it back so that ``parse_duration`` returns the same
float.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from odin import config
from odin.errors import InvalidInput
from odin.jobs._text import show

_UNITS: dict[str, int] = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_UNIT_WORDS: dict[str, str] = {
    **{word: "d" for word in ("d", "day", "days")},
    **{word: "h" for word in ("h", "hr", "hrs", "hour", "hours")},
    **{word: "m" for word in ("m", "min", "mins", "minute", "minutes")},
    **{word: "s" for word in ("s", "sec", "secs", "second", "seconds")},
}
_PART = re.compile(r"\s*([0-9]{1,12}(?:\.[0-9]{1,20})?)\s*([a-z]+)", re.ASCII)
_BARE = re.compile(r"\s*([0-9]{1,12}(?:\.[0-9]{1,20})?)\s*", re.ASCII)
_HINT = "such as 30s, 5m, 1h, 1h30m or 2d (a bare number means seconds)"


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text``; raises ``InvalidInput`` saying what was expected."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise InvalidInput(f"a duration must be text or a number, {_HINT}")
    seconds = _number_seconds(text) if not isinstance(text, str) else _text_seconds(text)
    return _checked(seconds, text)


def format_duration(seconds: float) -> str:
    """``5400`` → ``1h30m``; fractions keep full precision (``0.25s``)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInput(f"cannot write {seconds!r} as a duration")
    if seconds != int(seconds):
        return format(Decimal(repr(float(seconds))), "f") + "s"
    remaining = int(seconds)
    parts: list[str] = []
    for unit, size in _UNITS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _number_seconds(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _text_seconds(text: str) -> float:
    """Sum the parts of ``text`` exactly (in decimal), then round once to a float."""
    lowered = text.strip().lower()
    bare = _BARE.fullmatch(lowered)
    if bare:
        return float(Decimal(bare.group(1)))
    total = Decimal(0)
    seen: list[str] = []
    position = 0
    for match in _PART.finditer(lowered):
        unit = _UNIT_WORDS.get(match.group(2))
        if match.start() != position or unit is None or not _in_order(seen, unit):
            raise _not_a_duration(text)
        seen.append(unit)
        total += Decimal(match.group(1)) * _UNITS[unit]
        position = match.end()
    if not seen or position != len(lowered):
        raise _not_a_duration(text)
    return float(total)


def _in_order(seen: list[str], unit: str) -> bool:
    """Units must come largest first, each once: ``1h30m`` but not ``30m1h``."""
    order = list(_UNITS)
    return not seen or order.index(unit) > order.index(seen[-1])


def _checked(seconds: float, original: str | int | float) -> float:
    if math.isnan(seconds) or seconds <= 0:
        raise InvalidInput(f"{show(original)} is not a positive duration: write one {_HINT}")
    if seconds < config.MIN_DURATION_S:
        raise InvalidInput(f"{show(original)} is too short: the shortest duration is 0.001s")
    if seconds > config.MAX_DURATION_S:
        limit = format_duration(config.MAX_DURATION_S)
        raise InvalidInput(f"{show(original)} is too long: the longest duration is {limit}")
    return seconds


def _not_a_duration(text: str) -> InvalidInput:
    return InvalidInput(f"{show(text)} is not a duration: write one {_HINT}")
