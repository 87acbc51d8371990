"""A job's ``notify:`` entries: where its alerts go and on which events.

```yaml
notify:
  - to: https://hooks.example.org/odin   # a webhook, mailto:, or a service URL
    on: [failure, recovery]              # the default
    after: 3                             # failures in a row before one alert (default 1)
```

The entries are plain values shared by the job file, the replicated job and the
state machine, which decides from them which alerts a run's end makes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Self

from odin import config
from odin.jobs._text import show
from odin.jobs.fields import Problem


class AlertEvent(StrEnum):
    """What an alert is about."""

    FAILURE = "failure"  # a run ended failed, timed out or lost, with no retry left
    RECOVERY = "recovery"  # the first success after a streak that reached ``after``
    MISSED = "missed"  # a tick did not start within the job's grace after its instant
    OVERDUE = "overdue"  # a run is still going ``warn_after`` after it started
    LOST = "lost"  # a run's node died or was cut off while it ran
    TEST = "test"  # ``odin notify test``: never decided by the state machine


DEFAULT_EVENTS = (AlertEvent.FAILURE, AlertEvent.RECOVERY)
CHOSEN_EVENTS = tuple(event for event in AlertEvent if event is not AlertEvent.TEST)
MAX_AFTER = 1000


@dataclasses.dataclass(frozen=True)
class Notify:
    """One destination of a job's alerts, the events it wants, and its failure threshold."""

    to: str
    on: tuple[AlertEvent, ...] = DEFAULT_EVENTS
    after: int = 1

    def wants(self, event: AlertEvent) -> bool:
        return event in self.on

    def to_dict(self) -> dict[str, Any]:
        return {"to": self.to, "on": [str(event) for event in self.on], "after": self.after}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The entry ``data`` describes; raises ``ValueError`` or ``TypeError`` if malformed."""
        if not isinstance(data, Mapping) or not isinstance(data.get("to"), str):
            raise ValueError(f"not a notify entry: {data!r:.80}")
        return cls(
            to=str(data["to"]),
            on=tuple(AlertEvent(event) for event in data.get("on", DEFAULT_EVENTS)),
            after=int(data.get("after", 1)),
        )


def check_events(names: Iterable[str]) -> tuple[AlertEvent, ...]:
    """The events named, in their canonical order, each once; unknown names are refused."""
    chosen: set[AlertEvent] = set()
    for name in names:
        try:
            event = AlertEvent(name.strip().lower())
        except ValueError:
            event = None
        if event is None or event is AlertEvent.TEST:
            allowed = ", ".join(str(e) for e in CHOSEN_EVENTS)
            raise Problem(f"unknown event {show(name)}: expected some of {allowed}")
        chosen.add(event)
    if not chosen:
        raise Problem("names no event: leave it out for [failure, recovery]")
    return tuple(event for event in CHOSEN_EVENTS if event in chosen)


def check_after(value: int) -> int:
    if not 1 <= value <= MAX_AFTER:
        raise Problem(f"must be between 1 and {MAX_AFTER}, not {value}")
    return value


def check_destination(text: str | None) -> str:
    """The destination URL as written, if Odin can send to it."""
    from odin.notify.destinations import check_destination as check

    if text is None or not text.strip():
        raise Problem("is empty: write a URL such as https://hooks.example.org/odin")
    return check(text.strip()).url


def check_notify_list(entries: list[Notify]) -> tuple[Notify, ...]:
    if len(entries) > config.MAX_NOTIFY_PER_JOB:
        raise Problem(f"has {len(entries)} entries; at most {config.MAX_NOTIFY_PER_JOB}")
    seen: set[str] = set()
    for entry in entries:
        if entry.to in seen:
            raise Problem(f"names {show(entry.to)} twice: merge the two entries' on: lists")
        seen.add(entry.to)
    return tuple(entries)
