"""The ``Schedule`` value: a union of rules in one time zone, or of several schedules."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from odin.errors import InvalidInput
from odin.schedule.cron import HashedCronRule
from odin.schedule.rules import Rule
from odin.schedule.spread import amount_text, offset_of, window_text

LIST_SEPARATOR = ";"
"""Between the entries of a list of schedules written as one text (``every hour; @daily``)."""


@dataclass(frozen=True)
class Schedule:
    """What a schedule string means; immutable, comparable, and free of I/O.

    ``rules`` is empty for ``never``. Fire times are the union of the rules'
    fire times; ``next_after`` is strictly increasing in ``t`` and returns
    instants in ``timezone``. A list of schedules has ``parts`` (and no rules): its
    fire times are theirs, an instant two of them give once.

    ``spread_s`` (``, spread over 10 minutes``) and cron's ``H`` depend on a job's id:
    ``placed(job_id)`` is that job's schedule, whose ticks move by ``offset_s``; until
    placed, a schedule fires as for an offset of 0 (each ``H`` at its lowest value).
    """

    text: str
    timezone: str
    rules: tuple[Rule, ...]
    zone: ZoneInfo = field(repr=False, compare=False)
    spread_s: int = 0
    offset_s: int = 0
    job_id: str | None = None  # the job it was placed for
    parts: tuple[Schedule, ...] = ()

    @property
    def is_never(self) -> bool:
        return not self.rules and not self.parts

    @property
    def needs_job(self) -> bool:
        """Whether its instants depend on the job's id (a spread, or cron's ``H``)."""
        if self.parts:
            return any(part.needs_job for part in self.parts)
        return self.spread_s > 0 or any(isinstance(r, HashedCronRule) for r in self.rules)

    def placed(self, job_id: str) -> Schedule:
        """The schedule of the job ``job_id``: its spread's offset and each ``H`` fixed by it."""
        if self.parts:
            parts = tuple(part.placed(job_id) for part in self.parts)
            return dataclasses.replace(self, parts=parts, job_id=job_id)
        rules = tuple(r.placed(job_id) if isinstance(r, HashedCronRule) else r for r in self.rules)
        offset = offset_of(job_id, self.spread_s)
        return dataclasses.replace(self, rules=rules, offset_s=offset, job_id=job_id)

    def next_after(self, t: datetime) -> datetime | None:
        """The first fire time strictly after the aware datetime ``t``, or None."""
        if t.tzinfo is None or t.utcoffset() is None:
            raise InvalidInput("next_after needs an aware datetime (with a time zone)")
        if self.parts:
            return self._next_of_parts(t)
        if self.offset_s:
            moved = timedelta(seconds=self.offset_s)
            fire = self._next_of_rules((t.astimezone(UTC) - moved).astimezone(self.zone))
            return None if fire is None else (fire.astimezone(UTC) + moved).astimezone(self.zone)
        return self._next_of_rules(t)

    def _next_of_parts(self, t: datetime) -> datetime | None:
        best: datetime | None = None
        for part in self.parts:
            fire = part.next_after(t)
            if fire is not None and (best is None or fire < best):
                best = fire
        return None if best is None else best.astimezone(self.zone)

    def _next_of_rules(self, t: datetime) -> datetime | None:
        t_ts = t.timestamp()
        best: datetime | None = None
        best_ts = 0.0
        for rule in self.rules:
            try:
                fire = rule.next_after(t, t_ts, self.zone)
            except OverflowError:  # past the end of the calendar (year 9999)
                continue
            if fire is not None and (best is None or fire.timestamp() < best_ts):
                best, best_ts = fire, fire.timestamp()
        return best

    def next_n(self, t: datetime, n: int) -> list[datetime]:
        """Up to ``n`` fire times after ``t``, in order (fewer if the schedule ends)."""
        fires: list[datetime] = []
        current: datetime | None = t
        while current is not None and len(fires) < n:
            current = self.next_after(current)
            if current is not None:
                fires.append(current)
        return fires

    def describe(self, zone: str | None = None) -> str:
        """Canonical text (English, ``cron: ...``, systemd's or App Engine's form) that parses
        back the same (``in zone`` added when given: a list's entries in other zones)."""
        if self.parts:
            return f"{LIST_SEPARATOR} ".join(
                part.describe(None if part.timezone == self.timezone else part.timezone)
                for part in self.parts
            )
        if self.is_never:
            return "never"
        text = " and ".join(rule.describe() for rule in self.rules)
        if zone is not None:
            text = f"{text} in {zone}"
        return f"{text}, spread over {window_text(self.spread_s)}" if self.spread_s else text

    def explain(self) -> str:
        """What the schedule does in plain English for people, even for cron, systemd or App Engine."""
        if self.parts:
            return f"{LIST_SEPARATOR} ".join(
                part.explain() + ("" if part.timezone == self.timezone else f" in {part.timezone}")
                for part in self.parts
            )
        if self.is_never:
            return "never"
        text = " and ".join(rule.explain() for rule in self.rules)
        if not self.spread_s:
            return text
        window = window_text(self.spread_s)
        if self.job_id is None:
            return f"{text}, spread over {window} (each job at its own fixed offset)"
        return f"{text}, spread over {window} (this job {amount_text(self.offset_s)} later)"

    def cron(self) -> list[str] | None:
        """Cron lines that fire at exactly these instants in ``timezone``, or None."""
        if self.parts:
            return self._cron_of_parts()
        if self.is_never or self.spread_s:
            return None
        lines: list[str] = []
        for rule in self.rules:
            rule_lines = rule.cron(self.zone)
            if rule_lines is None:
                return None
            lines += [line for line in rule_lines if line not in lines]
        return lines

    def _cron_of_parts(self) -> list[str] | None:
        """The parts' cron lines together, when each has some and all share one zone."""
        lines: list[str] = []
        for part in self.parts:
            found = part.cron()
            if found is None or part.timezone != self.timezone:
                return None
            lines += [line for line in found if line not in lines]
        return lines
