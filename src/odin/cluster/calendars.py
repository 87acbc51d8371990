"""Named calendars as the replicated state holds them: each owner's, by name.

A calendar is a list of exception rules (``odin.schedule.exceptions``) that its owner's jobs
name in their ``except:`` (``- calendar: closed``); alice's ``closed`` and bob's ``closed``
are two calendars. The ``CalendarTable`` is the state machine's part for ``PutCalendar`` and
``RemoveCalendar``: deterministic like the rest of ``apply`` (every time comes in the
command), refusing before it changes anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Self

from odin.cluster.model import Job
from odin.errors import Conflict, LimitExceeded, NotFound
from odin.jobs.excepts import check_calendar_ref
from odin.schedule.exceptions import calendar_refs

MAX_CALENDARS_PER_USER = 1000

CalendarRules = Mapping[int, Mapping[str, tuple[str, ...]]]
"""Owner uid → calendar name → its rules' texts: what planning a job's ticks needs."""


@dataclasses.dataclass(frozen=True)
class Calendar:
    """One named calendar of one owner: its rules as canonical texts (``odin.jobs.excepts``)."""

    owner_uid: int
    owner: str
    name: str
    description: str
    rules: tuple[str, ...]
    created_at: float = 0.0
    updated_at: float = 0.0
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["rules"] = list(self.rules)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        kept["rules"] = tuple(str(rule) for rule in data.get("rules", ()))
        return cls(**kept)

    def same_as(self, other: Calendar) -> bool:
        """Whether ``other`` says the same, whatever its times and version."""
        return (
            dataclasses.replace(
                self,
                created_at=other.created_at,
                updated_at=other.updated_at,
                version=other.version,
            )
            == other
        )


@dataclasses.dataclass(frozen=True)
class CalendarChanged:
    """A calendar was added or changed: the jobs that name it are planned again."""

    calendar: Calendar
    jobs: tuple[Job, ...]


def users_of(jobs: Iterable[Job], owner_uid: int, name: str) -> list[Job]:
    """The jobs of ``owner_uid`` whose ``except:`` names calendar ``name``."""
    item = check_calendar_ref(name)
    return [job for job in jobs if job.owner_uid == owner_uid and item in job.exceptions]


def named_by(job: Job) -> list[str]:
    """The calendars a job's ``except:`` names."""
    return calendar_refs(job.exceptions)


class CalendarTable:
    """Every owner's calendars, by owner uid and name."""

    def __init__(self) -> None:
        self._of: dict[int, dict[str, Calendar]] = {}

    def __len__(self) -> int:
        return sum(len(named) for named in self._of.values())

    def get(self, owner_uid: int, name: str) -> Calendar | None:
        return self._of.get(owner_uid, {}).get(name)

    def of(self, owner_uid: int) -> list[Calendar]:
        """An owner's calendars, by name."""
        return sorted(self._of.get(owner_uid, {}).values(), key=lambda cal: cal.name)

    def all(self) -> list[Calendar]:
        """Every calendar, by owner and name."""
        return [cal for uid in sorted(self._of) for cal in self.of(uid)]

    def names_of(self, owner_uid: int) -> frozenset[str]:
        return frozenset(self._of.get(owner_uid, {}))

    def rules(self) -> dict[int, dict[str, tuple[str, ...]]]:
        """Every calendar's rules, by owner and name (a copy, for the planner)."""
        return {uid: {n: cal.rules for n, cal in named.items()} for uid, named in self._of.items()}

    def rules_of(self, owner_uid: int) -> dict[str, tuple[str, ...]]:
        """One owner's calendars' rules, by name (a copy)."""
        return {name: cal.rules for name, cal in self._of.get(owner_uid, {}).items()}

    def put(self, calendar: Calendar) -> Calendar | None:
        """Add or replace a calendar (its creation time kept, its version counted); None when
        it is already as given (a replayed command). Refused past the per-owner limit."""
        old = self.get(calendar.owner_uid, calendar.name)
        if old is not None and calendar.same_as(old):
            return None
        if old is None and len(self._of.get(calendar.owner_uid, {})) >= MAX_CALENDARS_PER_USER:
            raise LimitExceeded(
                f"{calendar.owner} has {MAX_CALENDARS_PER_USER} calendars, the most a user may "
                "have: remove one first (odin calendar remove NAME)"
            )
        if old is not None:
            calendar = dataclasses.replace(
                calendar, created_at=old.created_at, version=old.version + 1
            )
        self._of.setdefault(calendar.owner_uid, {})[calendar.name] = calendar
        return calendar

    def remove(self, owner_uid: int, name: str, jobs: Iterable[Job]) -> Calendar:
        """Remove a calendar that none of its owner's ``jobs`` names."""
        calendar = self.get(owner_uid, name)
        if calendar is None:
            raise NotFound(f"no calendar named {name}")
        using = users_of(jobs, owner_uid, name)
        if using:
            shown = ", ".join(f"{job.id} ({job.name})" for job in using[:10])
            more = f" and {len(using) - 10} more" if len(using) > 10 else ""
            raise Conflict(
                f"calendar {name} is used by job(s) {shown}{more}: take calendar: {name} out "
                "of their except: and deploy them again, or remove them, first"
            )
        del self._of[owner_uid][name]
        if not self._of[owner_uid]:
            del self._of[owner_uid]
        return calendar

    def check_names(self, job: Job) -> None:
        """Refuse a job whose ``except:`` names a calendar its owner does not have."""
        missing = [name for name in named_by(job) if self.get(job.owner_uid, name) is None]
        if missing:
            raise NotFound(
                f"job {job.id}: no calendar named {missing[0]} (add it with: odin calendar add "
                "-f FILE; see odin calendar list)"
            )

    def snapshot(self) -> list[Calendar]:
        return self.all()

    def restore(self, items: Iterable[Mapping[str, Any]]) -> None:
        self._of = {}
        for item in items:
            calendar = Calendar.from_dict(item)
            self._of.setdefault(calendar.owner_uid, {})[calendar.name] = calendar
