"""Crontab text → Odin jobs: read each line, translate its schedule, build its job and wrapper.

``odin import crontab`` reads the crontab, the host's zone and the clock, and writes what
``plan_import`` returns; everything here is pure (no files, no processes, no clock).

- A job line is five time fields (or an ``@`` macro) and a command. Its schedule becomes
  Odin's English only where English fires at exactly the same instants: each candidate is
  checked against the cron form with ``odin.schedule.parse(...).next_after`` from several
  starting points, including every daylight-saving change of the next two years. Otherwise the
  cron text is kept (Odin reads bare 5-field cron and the macros).
- ``NAME=value`` lines apply to the job lines after them: the job's ``env:``; ``MAILTO`` a
  ``notify:`` entry on failure; ``CRON_TZ`` (else ``TZ``) its ``timezone:``; ``SHELL`` the
  shell the wrapper runs (bash if it names bash, else ``/bin/sh``); ``HOME`` its ``workdir:``.
- The code is a small Python job that runs the command with the shell, as cron did (cron's
  ``%`` rule included), passes its output through and exits with its exit code.
- Comments and blank lines are skipped; lines that cannot be imported are listed with why.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo

from odin import config
from odin.errors import JobFileError, ScheduleError
from odin.jobs._text import show
from odin.jobs.fields import Problem, check_env_name
from odin.jobs.ids import new_job_id
from odin.jobs.language import Language
from odin.jobs.notify import AlertEvent, Notify, check_destination
from odin.jobs.spec import JobSpec, load_job_yaml
from odin.schedule import Schedule, parse
from odin.schedule.words import MONTH_NAMES, WEEKDAY_NAMES

MAX_CRONTAB_BYTES: Final = 1 << 20  # a crontab larger than this is refused, not read
VERIFY_FIRES: Final = 500  # fire times compared from each starting point
VERIFY_DAYS: Final = 7  # starting points: the given instant and each of the next six days
DST_SEARCH_DAYS: Final = 2 * 366  # daylight-saving changes looked for after the start
DST_LEAD: Final = timedelta(hours=2)  # a starting point this long before each change
MAX_LISTED: Final = 6  # most times or dates an English form lists before cron reads better
MAX_MINUTES_LISTED: Final = 4  # most minutes past the hour an English form lists
MAX_NAME_CHARS: Final = 40  # a job name derived from a command is cut to this
DEFAULT_SHELL: Final = "/bin/sh"
MACROS: Final = MappingProxyType(
    {
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    }
)
REBOOT: Final = "@reboot"
RESERVED_ENV: Final = frozenset({"USER", "LOGNAME"})  # Odin sets them to the job's owner

_JOB_LINE = re.compile(r"[ \t]*(\S+)[ \t]+(\S+)[ \t]+(\S+)[ \t]+(\S+)[ \t]+(\S+)[ \t]+(.*)", re.S)
_MACRO_LINE = re.compile(r"[ \t]*(@\S+)(?:[ \t]+(.*))?", re.S)
_ENV_LINE = re.compile(r"[ \t]*(\"[^\"]*\"|'[^']*'|[^\s=]+)[ \t]*=[ \t]*(.*)", re.S)
_TERM = re.compile(r"(?:(\*)|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:/([0-9]+))?", re.ASCII)
_COMMAND_BREAK = re.compile(r"&&|\|\||[;|&()]")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.S)
_NOT_NAME = re.compile(r"[^a-z0-9]+")

_LIMITS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_WORDS = (WEEKDAY_NAMES[6], *WEEKDAY_NAMES[:6])  # cron's day 0 is Sunday
_WEEKDAYS = frozenset(range(1, 6))
_WEEKEND = frozenset({0, 6})
_PREFIXES = frozenset(
    {"sudo", "nice", "ionice", "nohup", "exec", "env", "time", "timeout", "chronic", "setsid"}
)
_INTERPRETERS = frozenset(
    {"sh", "bash", "dash", "zsh", "python", "python3", "perl", "php", "ruby", "node", "nodejs"}
)
_BASH = "bash"
_SH_PATHS = frozenset({"/bin/sh", "/usr/bin/sh", "/bin/dash", "/usr/bin/dash"})

_WRAPPER = """\
# {name}: line {number} of a crontab, imported by odin import crontab:
#   {line}
# It runs the command with {shell} -c, as cron did, passing its output through, and exits
# with the command's exit code (128 + N if signal N ended it). Deploy it with its YAML file.
import os
import subprocess
import sys

SHELL = {shell_literal}
COMMAND = {command}
# What cron gave the command on standard input: the text after the line's first unescaped %,
# each further % a newline (None: nothing, as cron gives a line without %).
STDIN = {stdin}
# The crontab's HOME=, which cron gives the command (None: your home, as Odin sets it).
HOME = {home}


def main() -> int:
    env = dict(os.environ)
    if HOME is not None:
        env["HOME"] = HOME
    done = subprocess.run(
        [SHELL, "-c", COMMAND],
        input=None if STDIN is None else os.fsencode(STDIN),
        stdin=subprocess.DEVNULL if STDIN is None else None,
        env=env,
        check=False,
    )
    return 128 - done.returncode if done.returncode < 0 else done.returncode


if __name__ == "__main__":
    sys.exit(main())
"""


class Skip(Enum):
    """Why a line of the crontab made no job."""

    MALFORMED = "malformed"  # not a cron line, a bad field, an unknown zone...
    UNSUPPORTED = "unsupported"  # valid cron that Odin cannot keep (@reboot, a bad MAILTO...)


class Form(Enum):
    """How a job's schedule is written."""

    ENGLISH = "english"  # Odin's English, checked to fire at the same instants
    CRON = "cron"  # the cron fields (or macro) as written


@dataclass(frozen=True)
class Environment:
    """The ``NAME=value`` lines seen so far, as they apply to the next job line."""

    env: tuple[tuple[str, str], ...] = ()
    mailto: str = ""  # empty: no notify entry (unset, or MAILTO="")
    cron_tz: str | None = None
    tz: str | None = None
    shell: str = DEFAULT_SHELL
    home: str | None = None

    @property
    def zone(self) -> str | None:
        """The zone cron reads the schedule in: CRON_TZ, else TZ, else None (the host's)."""
        return self.cron_tz or self.tz

    def with_variable(self, name: str, value: str) -> Environment:
        """A copy with ``name`` set to ``value`` (a later value wins)."""
        kept = tuple((key, old) for key, old in self.env if key != name)
        return dataclasses.replace(self, env=(*kept, (name, value)))


@dataclass(frozen=True)
class CronLine:
    """A job line of the crontab, with the environment its earlier lines set."""

    number: int
    text: str  # the line as written
    schedule: str  # the five time fields joined by spaces, or the @ macro as written
    command: str  # what the shell runs: the text before the first unescaped %, \\% made %
    stdin: str | None  # cron's standard input for the command (after the first %), or None
    environment: Environment


@dataclass(frozen=True)
class Skipped:
    """A line that made no job (or a setting that was not kept), and why."""

    number: int
    text: str
    kind: Skip
    reason: str


@dataclass(frozen=True)
class Remark:
    """A setting line that was kept with a caveat the user should know."""

    number: int
    text: str
    note: str


Finding = Skipped | Remark | None  # what a setting line tells the user


@dataclass(frozen=True)
class Crontab:
    """What a crontab's lines say, before any schedule is checked."""

    lines: tuple[CronLine, ...]
    skipped: tuple[Skipped, ...]
    remarks: tuple[Remark, ...]


@dataclass(frozen=True)
class Translation:
    """The schedule a job gets, how it is written, and why when it stays cron."""

    schedule: str
    form: Form
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportedJob:
    """One job to write: its spec, its YAML and code texts, and notes for the user."""

    line: CronLine
    translation: Translation
    spec: JobSpec
    yaml_name: str
    yaml_text: str
    code: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class ImportPlan:
    """Everything ``odin import crontab`` writes and reports."""

    jobs: tuple[ImportedJob, ...]
    skipped: tuple[Skipped, ...]
    remarks: tuple[Remark, ...]


# -- reading the lines ------------------------------------------------------------------


def parse_crontab(text: str) -> Crontab:
    """Split a crontab into job lines (with their environment), skipped lines and remarks."""
    environment = Environment()
    lines: list[CronLine] = []
    skipped: list[Skipped] = []
    remarks: list[Remark] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        stripped = line.strip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        assignment = _ENV_LINE.fullmatch(line)
        if assignment is not None:
            name, value = _unquote(assignment.group(1)), _env_value(assignment.group(2))
            environment, problem = _assign(environment, name, value)
            if isinstance(problem, Skipped | Remark):
                problem = dataclasses.replace(problem, number=number, text=line)
            if isinstance(problem, Skipped):
                skipped.append(problem)
            elif isinstance(problem, Remark):
                remarks.append(problem)
            continue
        found = _job_line(number, line, environment)
        if isinstance(found, Skipped):
            skipped.append(found)
        else:
            lines.append(found)
    return Crontab(tuple(lines), tuple(skipped), tuple(remarks))


def split_percent(command: str) -> tuple[str, str | None]:
    """Cron's ``%`` rule: the command before the first unescaped ``%``, and its standard input.

    As in Vixie cron: ``\\%`` is a literal ``%`` (the backslash dropped) in the command; in the
    input each further unescaped ``%`` is a newline and ``\\%`` is ``%``.
    """
    out: list[str] = []
    escaped = False
    for index, ch in enumerate(command):
        if escaped:
            escaped = False
            if ch == "%":
                out[-1] = "%"
                continue
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            return "".join(out), _stdin(command[index + 1 :])
        out.append(ch)
    return "".join(out), None


def _stdin(rest: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in rest:
        if escaped:
            if ch != "%":
                out.append("\\")
        elif ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            out.append(ch)
    return "".join(out)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _env_value(text: str) -> str:
    """A value as cron reads it: trailing blanks dropped, then one pair of quotes."""
    return _unquote(text.rstrip(" \t"))


def _assign(environment: Environment, name: str, value: str) -> tuple[Environment, Finding]:
    """The environment after ``NAME=value``, and what to tell the user about it, if anything."""
    if _has_surrogates(name) or _has_surrogates(value):
        return environment, _skipped(Skip.UNSUPPORTED, "not UTF-8 text: the setting is not kept")
    if name == "MAILTO":
        return _mailto(environment, value)
    if name == "CRON_TZ":
        return dataclasses.replace(environment, cron_tz=value.lstrip(":") or None), None
    if name in RESERVED_ENV:
        note = f"{name} is not kept: Odin sets it to the job's owner, as cron does"
        return environment, Remark(0, "", note)
    try:
        check_env_name(name)
    except Problem as problem:
        reason = f"{show(name)} {problem.detail}: the setting is not kept"
        return environment, _skipped(Skip.UNSUPPORTED, reason)
    if name == "HOME":
        if not value.startswith("/"):
            reason = "HOME must be an absolute path: the setting is not kept"
            return environment, _skipped(Skip.UNSUPPORTED, reason)
        return dataclasses.replace(environment, home=value), None
    updated = environment.with_variable(name, value)
    if name == "TZ":
        updated = dataclasses.replace(updated, tz=value.lstrip(":") or None)
    if name == "SHELL":
        shell, caveat = _shell(value)
        updated = dataclasses.replace(updated, shell=shell)
        return updated, None if caveat is None else Remark(0, "", caveat)
    return updated, None


def _mailto(environment: Environment, value: str) -> tuple[Environment, Finding]:
    addresses = ",".join(part.strip() for part in value.split(",") if part.strip())
    if not addresses:
        return dataclasses.replace(environment, mailto=""), None
    try:
        destination = check_destination(f"mailto:{addresses}")
    except Problem as problem:
        reason = f"MAILTO: {problem.detail}; the jobs after it get no notify: entry"
        return dataclasses.replace(environment, mailto=""), _skipped(Skip.UNSUPPORTED, reason)
    note = f"the jobs after it alert {destination} when they fail (cron mailed any output)"
    return dataclasses.replace(environment, mailto=destination), Remark(0, "", note)


def _shell(value: str) -> tuple[str, str | None]:
    """The shell the wrapper runs for ``SHELL=value``: bash when it names bash, else /bin/sh."""
    if value.startswith("/") and value.rsplit("/", 1)[-1] == _BASH:
        return value, f"the jobs after it run their commands with {value}"
    if value in _SH_PATHS:
        return DEFAULT_SHELL, None
    return DEFAULT_SHELL, f"{show(value)} is not used: the jobs after it run with {DEFAULT_SHELL}"


def _skipped(kind: Skip, reason: str) -> Skipped:
    return Skipped(0, "", kind, reason)


def _job_line(number: int, line: str, environment: Environment) -> CronLine | Skipped:
    macro = _MACRO_LINE.fullmatch(line)
    if macro is not None:
        word, command = macro.group(1), (macro.group(2) or "")
        if word.lower() == REBOOT:
            reason = "@reboot is not supported: Odin has no schedule for a boot"
            return Skipped(number, line, Skip.UNSUPPORTED, reason)
        if word.lower() not in MACROS:
            known = ", ".join(MACROS)
            reason = f"unknown cron macro {word[:20]!r}: expected {known} or {REBOOT}"
            return Skipped(number, line, Skip.MALFORMED, reason)
        schedule = word
    else:
        fields = _JOB_LINE.fullmatch(line)
        if fields is None:
            reason = "not a cron line: expected five time fields and a command, or NAME=value"
            if len(line.split()) == len(_LIMITS):
                reason = "there is no command after the schedule"
            return Skipped(number, line, Skip.MALFORMED, reason)
        schedule, command = " ".join(fields.groups()[:5]), fields.group(6)
    command, stdin = split_percent(command)
    if not command.strip(" \t"):
        return Skipped(number, line, Skip.MALFORMED, "there is no command after the schedule")
    return CronLine(number, line, schedule, command, stdin, environment)


def _has_surrogates(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


# -- schedules ----------------------------------------------------------------------------


def translate(schedule: str, zone: str, start: datetime) -> Translation:
    """Odin's English for a cron schedule where it fires at exactly the same instants, else cron.

    Raises ``ScheduleError`` if Odin does not read the cron text (or the zone) at all.
    """
    cron = parse(schedule, zone)
    expression = MACROS.get(schedule.lower(), schedule)
    fields = expression.split()
    candidates = english_candidates(fields)
    anchors = verification_starts(cron.zone, start)
    for candidate in candidates:
        try:
            english = parse(candidate, zone)
        except ScheduleError:
            continue
        if same_fire_times(english, cron, anchors):
            return Translation(candidate, Form.ENGLISH)
    return Translation(schedule, Form.CRON, _why_cron(fields, candidates, zone))


def _why_cron(fields: Sequence[str], candidates: Sequence[str], zone: str) -> tuple[str, ...]:
    if len(fields) == 5 and not fields[2].startswith("*") and not fields[4].startswith("*"):
        return ("stays cron: cron runs it on a day that matches the day of month OR the weekday",)
    if candidates:
        return (f'stays cron: "{candidates[0]}" would not fire at the same times in {zone}',)
    minutes = _values(fields[0], 0) if fields else None
    step = None if minutes is None else _grid(minutes, 60)
    if step is not None and 60 % step:
        return (
            f'stays cron: {fields[0]} starts again at :00 each hour; "every {step} minutes" '
            "is a fixed grid",
        )
    return ("stays cron: Odin's English has no form that says the same",)


def same_fire_times(first: Schedule, second: Schedule, starts: Iterable[datetime]) -> bool:
    """Whether both schedules give the same next ``VERIFY_FIRES`` instants from every start.

    A start inside a stretch already compared is skipped: both already agree there.
    """
    compared: list[tuple[float, float]] = []
    for start in starts:
        at = start.timestamp()
        if any(low <= at < high for low, high in compared):
            continue
        one: datetime | None = start
        two: datetime | None = start
        for _ in range(VERIFY_FIRES):
            assert one is not None and two is not None
            one, two = first.next_after(one), second.next_after(two)
            if one is None or two is None:
                if one is not two:
                    return False
                break
            if one.timestamp() != two.timestamp():
                return False
        compared.append((at, float("inf") if one is None else one.timestamp()))
    return True


def verification_starts(zone: ZoneInfo, start: datetime) -> list[datetime]:
    """Where checks begin: ``start``, the next six days, and just before each DST change."""
    days = [start + timedelta(days=k) for k in range(VERIFY_DAYS)]
    return days + [change - DST_LEAD for change in offset_changes(zone, start)]


def offset_changes(zone: ZoneInfo, start: datetime) -> list[datetime]:
    """The instants at which ``zone``'s UTC offset changes in the two years after ``start``."""
    changes: list[datetime] = []
    before = start.astimezone(UTC)
    for _ in range(DST_SEARCH_DAYS):
        after = before + timedelta(days=1)
        if before.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            changes.append(_bisect(zone, before, after))
        before = after
    return changes


def _bisect(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The first whole second in (low, high] with ``high``'s offset (offsets change on seconds)."""
    offset = low.astimezone(zone).utcoffset()
    below, above = int(low.timestamp()), int(high.timestamp())
    while above - below > 1:
        middle = (below + above) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            below = middle
        else:
            above = middle
    return datetime.fromtimestamp(above, UTC)


def english_candidates(fields: Sequence[str]) -> list[str]:
    """English texts meant to say what five cron fields say, best first (each to be checked)."""
    if len(fields) != 5:
        return []
    values = [_values(field, index) for index, field in enumerate(fields)]
    minutes, hours, doms, months, dows = values
    if minutes is None or hours is None or doms is None or months is None or dows is None:
        return []
    if not fields[2].startswith("*") and not fields[4].startswith("*"):
        return []  # Vixie cron's rule: a day matching either field fires
    days = _day_phrases(doms, months, frozenset(0 if day == 7 else day for day in dows))
    if days is None:
        return []
    every, on = days
    times = sorted((hour, minute) for hour in hours for minute in minutes)
    points = []
    if len(times) <= MAX_LISTED:
        points = [f"{every} at {_join([f'{hour:02d}:{minute:02d}' for hour, minute in times])}"]
    intervals = [f"{form} {on}" if on else form for form in _interval_forms(minutes, hours)]
    return points + intervals if len(times) <= 3 else intervals + points


def _values(field: str, index: int) -> frozenset[int] | None:
    """The values a plain cron field matches, or None for what English is not tried on."""
    low, high = _LIMITS[index]
    names = _MONTHS if index == 3 else _DAYS if index == 4 else ()
    found: set[int] = set()
    begin: int | None
    end: int | None
    for term in field.split(","):
        match = _TERM.fullmatch(term)
        if match is None:
            return None
        star, first, last, step_text = match.groups()
        if star:
            begin, end = low, high if index != 4 else 6
        else:
            begin = _number(first, names, index)
            end = begin if last is None else _number(last, names, index)
            if step_text is not None and last is None:
                return None  # N/STEP: read differently by different crons
        step = 1 if step_text is None else int(step_text)
        if begin is None or end is None or step == 0 or not low <= begin <= end <= high:
            return None
        found.update(range(begin, end + 1, step))
    return frozenset(found)


def _number(word: str, names: Sequence[str], index: int) -> int | None:
    if word.isdigit():
        return int(word)
    if word.lower() in names:
        return names.index(word.lower()) + (1 if index == 3 else 0)
    return None


def _day_phrases(
    doms: frozenset[int], months: frozenset[int], dows: frozenset[int]
) -> tuple[str, str] | None:
    """("every DAYS", "on DAYS") for the days the fields allow, or None if English cannot say."""
    all_doms, all_months = doms == frozenset(range(1, 32)), months == frozenset(range(1, 13))
    all_dows = dows == frozenset(range(7))
    if all_months and all_doms:
        return ("every day", "") if all_dows else _weekday_phrases(dows)
    if not all_dows or all_doms:
        return None
    if all_months:
        if len(doms) > MAX_LISTED:
            return None
        listed = _join([_ordinal(day) for day in sorted(doms)])
        return f"every {listed}", f"on the {listed}"
    dates = [f"{MONTH_NAMES[m]} {_ordinal(d)}" for m in sorted(months) for d in sorted(doms)]
    if len(dates) > MAX_LISTED:
        return None
    return f"every {_join(dates)}", f"on {_join(dates)}"


def _weekday_phrases(dows: frozenset[int]) -> tuple[str, str]:
    if dows == _WEEKDAYS:
        return "every weekday", "on weekdays"
    if dows == _WEEKEND:
        return "every weekend", "on weekends"
    listed = _join([_DAY_WORDS[day] for day in sorted(dows, key=lambda day: (day - 1) % 7)])
    return f"every {listed}", f"on {listed}"


def _interval_forms(minutes: frozenset[int], hours: frozenset[int]) -> list[str]:
    """Interval forms (with a daily window where the hours are a range) for these fields."""
    all_hours = hours == frozenset(range(24))
    span = _span(hours) if not all_hours else None
    forms: list[str] = []
    if minutes == frozenset(range(60)):
        if all_hours:
            forms.append("every minute")
        elif span is not None:
            forms.append(f"every minute between {span[0]:02d}:00 and {span[1]:02d}:59")
        return forms
    step = _grid(minutes, 60)
    if step is not None and 60 % step == 0:
        rule = f"every {step} minutes"
        if all_hours:
            forms.append(rule)
        elif span is not None:
            forms.append(f"{rule} between {span[0]:02d}:00 and {span[1]:02d}:{60 - step:02d}")
        return forms
    if len(minutes) > MAX_MINUTES_LISTED:
        return forms
    at = "at " + _join([f":{minute:02d}" for minute in sorted(minutes)])
    on_the_hour = minutes == frozenset({0})
    hour_step = _grid(hours, 24)
    if all_hours:
        forms += ["every hour"] if on_the_hour else []
        forms.append(f"every hour {at}")
    elif hour_step is not None:
        forms += [f"every {hour_step} hours"] if on_the_hour and 24 % hour_step == 0 else []
        forms.append(f"every {hour_step} hours {at}")
    elif span is not None:
        first, last = min(minutes), max(minutes)
        if on_the_hour:
            forms.append(f"every hour between {span[0]:02d}:00 and {span[1]:02d}:00")
        forms.append(
            f"every hour {at} between {span[0]:02d}:{first:02d} and {span[1]:02d}:{last:02d}"
        )
    return forms


def _grid(values: frozenset[int], size: int) -> int | None:
    """N when ``values`` is 0, N, 2N... below ``size`` (at least two of them), else None."""
    ordered = sorted(values)
    if len(ordered) < 2 or ordered[0] != 0:
        return None
    step = ordered[1]
    return step if values == frozenset(range(0, size, step)) else None


def _span(values: frozenset[int]) -> tuple[int, int] | None:
    low, high = min(values), max(values)
    return (low, high) if values == frozenset(range(low, high + 1)) else None


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# -- jobs -------------------------------------------------------------------------------


def plan_import(
    text: str,
    *,
    host_zone: str,
    start: datetime,
    new_id: Callable[[], str] = new_job_id,
) -> ImportPlan:
    """The jobs a crontab becomes, with the lines skipped and the remarks on its settings.

    A job's zone is the crontab's CRON_TZ (else TZ) or ``host_zone``, the zone cron used, and
    is written into the job so that it fires at the same times on an engine in another zone.
    """
    crontab = parse_crontab(text)
    jobs: list[ImportedJob] = []
    skipped = list(crontab.skipped)
    names: set[str] = set()
    for line in crontab.lines:
        zone = line.environment.zone or host_zone
        try:
            translation = translate(line.schedule, zone, start)
        except ScheduleError as error:
            reason = _zone_problem(line.environment, zone) or error.message
            skipped.append(Skipped(line.number, line.text, Skip.MALFORMED, reason))
            continue
        name = unique_name(job_name(line.command), names)
        try:
            job = build_job(line, translation, name, zone, new_id())
        except JobFileError as error:
            skipped.append(Skipped(line.number, line.text, Skip.UNSUPPORTED, error.message))
            continue
        names.add(name)
        jobs.append(job)
    skipped.sort(key=lambda item: item.number)
    return ImportPlan(tuple(jobs), tuple(skipped), crontab.remarks)


def _zone_problem(environment: Environment, zone: str) -> str | None:
    """What is wrong with the zone a line's schedule is read in, if anything."""
    try:
        parse("never", zone)
    except ScheduleError as error:
        source = "CRON_TZ" if environment.cron_tz else "TZ" if environment.tz else "the host's zone"
        return f"{source}: {error.message}"
    return None


def build_job(
    line: CronLine, translation: Translation, name: str, zone: str, job_id: str
) -> ImportedJob:
    """The job file and wrapper of one cron line; ``JobFileError`` if Odin would refuse it."""
    environment = line.environment
    code_name = name + Language.PYTHON.extension
    notify: tuple[Notify, ...] = ()
    if environment.mailto:
        notify = (Notify(to=environment.mailto, on=(AlertEvent.FAILURE,)),)
    spec = JobSpec(
        id=job_id,
        name=name,
        language=Language.PYTHON,
        file=code_name,
        schedule=translation.schedule,
        description=_description(line.text),
        timezone=zone,
        env=dict(environment.env),
        workdir=environment.home,
        notify=notify,
    )
    yaml_name = name + ".yml"
    header = (
        f"# Imported by odin import crontab from line {line.number} of the crontab:\n"
        f"#   {_printable(line.text)}\n"
        f"# Check it, then deploy it with:  odin deploy -f {yaml_name}\n"
    )
    yaml_text = header + spec.to_yaml()
    checked = load_job_yaml(yaml_text, source=yaml_name)
    notes = list(translation.notes)
    if line.stdin is not None:
        notes.append("the text after % is the command's input, as in cron")
    return ImportedJob(
        line=line,
        translation=translation,
        spec=checked,
        yaml_name=yaml_name,
        yaml_text=yaml_text,
        code=wrapper_code(line, name),
        notes=tuple(notes),
    )


def wrapper_code(line: CronLine, name: str) -> str:
    """The Python job that runs the line's command as cron did (the command as a literal)."""
    shell = line.environment.shell
    return _WRAPPER.format(
        name=_printable(name),
        number=line.number,
        line=_printable(line.text),
        shell=_printable(shell),
        shell_literal=repr(shell),
        command=repr(line.command),
        stdin=repr(line.stdin),
        home=repr(line.environment.home),
    )


def job_name(command: str) -> str:
    """A short job name from a command: the program it runs (or the script it hands one)."""
    for segment in _COMMAND_BREAK.split(command):
        words = [word.strip("'\"") for word in segment.split()]
        words = [word for word in words if word and not _ASSIGNMENT.fullmatch(word)]
        while words and (words[0] in _PREFIXES or words[0][:1] in "-0123456789"):
            words.pop(0)
        if not words or words[0] in ("cd", "test", "[", "true", ":"):
            continue
        program = words[0].rsplit("/", 1)[-1]
        if program in _INTERPRETERS:
            scripts = [word for word in words[1:] if not word.startswith("-")]
            program = scripts[0].rsplit("/", 1)[-1] if scripts else program
        stem = program.split(".", 1)[0] if not program.startswith(".") else program
        name = _NOT_NAME.sub("_", stem.lower()).strip("_")[:MAX_NAME_CHARS].strip("_")
        if name:
            return name
    return "job"


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``... the first not in ``taken``."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}_{number}"
    return candidate


def _description(text: str) -> str:
    """The original line, as a description Odin accepts (one line, no control characters)."""
    cleaned = "".join(ch if ch == "\t" or _printable_char(ch) else "?" for ch in text)
    limit = config.MAX_DESCRIPTION_CHARS
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def _printable(text: str) -> str:
    """``text`` safe inside a one-line comment."""
    return "".join(ch if _printable_char(ch) else "?" for ch in text)


def _printable_char(ch: str) -> bool:
    return ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF
