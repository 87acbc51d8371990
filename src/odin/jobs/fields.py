"""Checks of single job-file values, shared by the YAML loader and ``odin modify``.

Each ``check_*`` takes a plain Python value and returns the value to store, or
raises ``Problem`` with a detail that reads well after ``job.FIELD: ``. The
caller adds which field and line; nothing here knows about YAML.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from odin import config
from odin.errors import InvalidInput, ScheduleError
from odin.jobs._text import show
from odin.jobs.durations import parse_duration
from odin.jobs.ids import is_job_id
from odin.jobs.language import Language

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_LINE_BREAKS = {"Zl", "Zp"}
E = TypeVar("E", bound=StrEnum)
SCHEDULE_EXAMPLE = '"every day at 18:00"'
SCHEDULE_SEPARATOR = "; "  # between the entries of a list of schedules (odin.schedule.model)


class Problem(Exception):
    """A value is wrong; ``detail`` says how and what would be right."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Overlap(StrEnum):
    """What to do when a run is due while the previous one still runs."""

    SKIP = "skip"
    QUEUE = "queue"
    ALLOW = "allow"


class Catchup(StrEnum):
    """Which ticks missed while no engine could run them are run later."""

    NONE = "none"
    LATEST = "latest"
    ALL = "all"


class Delivery(StrEnum):
    """What happens to a run its node may have started before it failed (its fate unknown)."""

    AT_MOST_ONCE = "at-most-once"  # it waits for its node: never run twice
    AT_LEAST_ONCE = "at-least-once"  # another node runs it at once: never skipped


class OnExcluded(StrEnum):
    """What becomes of a tick that an exception (``except:``) excludes."""

    SKIP = "skip"  # it does not run
    NEXT = "next"  # it runs at the first instant after the excluded days, once (docs/schedules.md)


def check_id(text: str | None) -> str:
    value = (text or "").strip()
    if not is_job_id(value):
        raise Problem(f"{show(value)} is not a job id: expected 12 lowercase hex digits")
    return value


def check_name(text: str | None) -> str:
    value = (text or "").strip()
    if not value:
        raise Problem("is empty: give the job a short name, e.g. amzn_stocks")
    _check_length(value, config.MAX_NAME_CHARS)
    if any(_is_control(ch) for ch in value):
        raise Problem("must be one line without control characters")
    return value


def check_description(text: str | None) -> str:
    value = text or ""
    _check_length(value, config.MAX_DESCRIPTION_CHARS)
    if any(_is_control(ch) and ch not in "\n\t" for ch in value):
        raise Problem("must not contain control characters")
    return value


def check_language(text: str | None) -> Language:
    try:
        return Language.parse(text or "")
    except InvalidInput as error:
        raise Problem(error.message) from None


def check_file(text: str | None, language: Language) -> str:
    """The code file: a relative path whose extension fits the language."""
    value = (text or "").strip()
    if not value:
        raise Problem(f"is empty: name the code file, e.g. job{language.extension}")
    _check_path_text(value)
    if value.startswith("/"):
        raise Problem("must be relative to the folder of the YAML file")
    if not value.endswith(language.extensions):
        wanted = " or ".join(language.extensions)
        raise Problem(f"{show(value)} does not fit language {language}: expected a {wanted} file")
    return value


def check_schedule(text: str | None, timezone: str | None) -> str:
    """Non-empty English that ``odin.schedule`` accepts, in the job's zone; several schedules
    are one text, their entries joined by ``"; "`` (a list in the job file)."""
    value = (text or "").strip()
    if not value:
        raise Problem(
            f"is empty: say when the job runs, e.g. {SCHEDULE_EXAMPLE}, "
            'or "never" to run it only by hand or through links'
        )
    if SCHEDULE_SEPARATOR.strip() in value:
        value = SCHEDULE_SEPARATOR.join(part.strip() for part in value.split(";"))
    _check_length(value, config.MAX_SCHEDULE_CHARS)
    from odin.schedule import parse  # written alongside; imported late on purpose

    try:
        parse(value, default_tz=timezone or "UTC")
    except ScheduleError as error:
        raise Problem(error.message) from None
    return value


def check_timezone(text: str | None) -> str | None:
    value = (text or "").strip()
    if not value:
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise Problem(
            f"unknown time zone {show(value)}: use an IANA name such as Europe/Dublin"
        ) from None
    return value


def check_timeout(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return parse_duration(text)
    except InvalidInput as error:
        raise Problem(error.message) from None


def check_jitter(text: str | None) -> float | None:
    """``jitter: 30s``: the longest random delay of a scheduled run after its tick."""
    if text is None or not text.strip():
        return None
    try:
        return parse_duration(text)
    except InvalidInput as error:
        raise Problem(f"{error.message} (the longest delay after each tick)") from None


def check_retries(value: int) -> int:
    if not 0 <= value <= config.MAX_RETRIES:
        raise Problem(f"must be between 0 and {config.MAX_RETRIES}, not {value}")
    return value


def check_overlap(text: str | None) -> Overlap:
    return _choice(Overlap, text, Overlap.SKIP)


def check_catchup(text: str | None) -> Catchup:
    return _choice(Catchup, text, Catchup.LATEST)


def check_delivery(text: str | None) -> Delivery:
    return _choice(Delivery, text, Delivery.AT_MOST_ONCE)


def check_on_excluded(text: str | None) -> OnExcluded:
    return _choice(OnExcluded, text, OnExcluded.SKIP)


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    if len(env) > config.MAX_ENV_VARS:
        raise Problem(f"has {len(env)} variables: at most {config.MAX_ENV_VARS} are allowed")
    for name, value in env.items():
        try:
            check_env_name(name)
        except Problem as problem:
            raise Problem(f"{show(name)}: {problem.detail}") from None
        if "\x00" in value:
            raise Problem(f"the value of {name} contains a NUL character")
    return dict(env)


def check_env_name(name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise Problem("is not a variable name: use letters, digits and _, not a digit first")
    if name.startswith("ODIN_"):
        raise Problem("names starting with ODIN_ are reserved for Odin")
    return name


def check_workdir(text: str | None) -> str | None:
    value = (text or "").strip()
    if not value:
        return None
    _check_path_text(value)
    if not value.startswith("/"):
        raise Problem(f"{show(value)} must be an absolute path (starting with /)")
    return value


def check_nodes(names: list[str]) -> tuple[str, ...]:
    for name in names:
        if not name or len(name) > config.MAX_NAME_CHARS or not name.isprintable() or " " in name:
            raise Problem(f"{show(name)} is not a node name")
    if len(set(names)) != len(names):
        raise Problem("lists a node twice")
    return tuple(names)


def _choice(enum: type[E], text: str | None, default: E) -> E:
    value = (text or "").strip().lower()
    if not value:
        return default
    try:
        return enum(value)
    except ValueError:
        accepted = " | ".join(member.value for member in enum)
        raise Problem(f"{show(value)} is not one of {accepted}") from None


def _check_length(value: str, limit: int) -> None:
    if len(value) > limit:
        raise Problem(f"is {len(value)} characters long: at most {limit} are allowed")


def _check_path_text(value: str) -> None:
    _check_length(value, config.MAX_PATH_CHARS)
    if any(_is_control(ch) for ch in value):
        raise Problem("must not contain control characters")


def _is_control(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category == "Cc" or category in _LINE_BREAKS
