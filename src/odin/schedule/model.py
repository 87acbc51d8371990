"""The ``Schedule`` value: a union of rules in one time zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from odin.errors import InvalidInput
from odin.schedule.rules import Rule


@dataclass(frozen=True)
class Schedule:
    """What a schedule string means; immutable, comparable, and free of I/O.

    ``rules`` is empty for ``never``. Fire times are the union of the rules'
    fire times; ``next_after`` is strictly increasing in ``t`` and returns
    instants in ``timezone``.
    """

    text: str
    timezone: str
    rules: tuple[Rule, ...]
    zone: ZoneInfo = field(repr=False, compare=False)

    @property
    def is_never(self) -> bool:
        return not self.rules

    def next_after(self, t: datetime) -> datetime | None:
        """The first fire time strictly after the aware datetime ``t``, or None."""
        if t.tzinfo is None or t.utcoffset() is None:
            raise InvalidInput("next_after needs an aware datetime (with a time zone)")
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

    def describe(self) -> str:
        """Canonical text (English, ``cron: ...``, systemd's or App Engine's form) that parses back the same."""
        if self.is_never:
            return "never"
        return " and ".join(rule.describe() for rule in self.rules)

    def explain(self) -> str:
        """What the schedule does in plain English for people, even for cron, systemd or App Engine."""
        if self.is_never:
            return "never"
        return " and ".join(rule.explain() for rule in self.rules)

    def cron(self) -> list[str] | None:
        """Cron lines that fire at exactly these instants in ``timezone``, or None."""
        if self.is_never:
            return None
        lines: list[str] = []
        for rule in self.rules:
            rule_lines = rule.cron(self.zone)
            if rule_lines is None:
                return None
            lines += [line for line in rule_lines if line not in lines]
        return lines
