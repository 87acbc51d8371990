"""Schedules: next fire time for 100,000 mixed schedules.

Each schedule is parsed once; the figure is the time for 100k ``next_after``
calls over a mix of forms and zones (goal: under 2 s). Per-form figures show
the cost of one call next to plain cronsim computing the same cron form. A
schedule whose instants depend on the job (a spread, cron's ``H``) is placed
for one job id first, as the planner does once per job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cronsim import CronSim

from bench.common import Figure
from odin.schedule import Schedule, parse
from odin.schedule.spread import EXAMPLE_JOB_ID

FULL_CALLS = 100_000
QUICK_CALLS = 10_000
PER_FORM_CALLS = 2_000
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

MIX = [
    "every minute",
    "every hour",
    "every 10 seconds",
    "every 15 minutes",
    "everyday at 21:15",
    "every day at 02:30 in America/New_York",
    "every Wednesday at 14:00",
    "every Monday and Friday at 10:00 in Europe/Dublin",
    "every weekday at 9am and 5pm",
    "every 23rd at 13:05",
    "every last day of the month at 18:00",
    "every January 4th at 13:15",
    "every Monday at 09:30 and every Friday at 17:00",
    "every 15 minutes between 09:00 and 17:00 in Europe/Dublin",
    "every 3 days at 10:00",
    "cron: */5 * * * *",
    # Issue #26: a spread and a list of schedules (cron's H is cron: per form, below).
    "every hour, spread over 10 minutes",
    "every 15 minutes; every day at 09:15 in Asia/Tokyo",
]
PER_FORM = [
    "every 15 minutes",
    "everyday at 21:15",
    "every Monday and Friday at 10:00 in Europe/Dublin",
    "every 23rd at 13:05",
    "every January 4th at 13:15",
    # Second edition: the new English forms, bare cron and systemd calendar events.
    "every 10 minutes on weekdays",
    "every 2 hours at :15",
    "every day at 09:00:30",
    "every first Monday at 09:00",
    "*/15 9-17 * * 1-5",
    "Mon..Fri *-*-* 09:00 Europe/Dublin",
    "*-*-* *:0/15",
    # App Engine cron.yaml's forms (issue #26).
    "every monday 09:00",
    "1st,3rd monday of sep,oct,nov 17:00",
    "1,8,15,22 of month 09:00",
    "first sunday of quarter 00:00 in America/New_York",
    "every 2 hours synchronized",
    # Third edition (issue #26): a spread, cron's H, several schedules.
    "every day at 09:00, spread over 30 minutes",
    "H(0-29) 9 * * 1-5",
    "every hour; 0 9 * * 1-5",
    "every 15 minutes; every day at 09:15 in Asia/Tokyo; H H * * *",
]


def _instants(count: int) -> list[datetime]:
    """Start instants spread over two years, so that no cache or branch is always warm."""
    step = timedelta(seconds=631)  # ~2 years over 100k calls, never on a round minute
    return [START + step * i for i in range(count)]


def _seconds(calls: Callable[[], None]) -> float:
    began = time.perf_counter()
    calls()
    return time.perf_counter() - began


def placed(text: str) -> Schedule:
    """The schedule as the planner holds it for one job (placed when it depends on the id)."""
    schedule = parse(text)
    return schedule.placed(EXAMPLE_JOB_ID) if schedule.needs_job else schedule


def mixed(count: int) -> float:
    schedules = [placed(text) for text in MIX]
    instants = _instants(count)

    def run() -> None:
        for i, t in enumerate(instants):
            schedules[i % len(schedules)].next_after(t)

    return _seconds(run)


def per_call_us(schedule: Schedule, count: int) -> float:
    instants = _instants(count)

    def run() -> None:
        for t in instants:
            schedule.next_after(t)

    return _seconds(run) / count * 1e6


def cronsim_per_call_us(schedule: Schedule, count: int) -> float:
    """Plain cronsim on the same schedule's cron lines (the earliest line wins)."""
    lines = schedule.cron() or []
    zone = schedule.zone
    instants = _instants(count)

    def run() -> None:
        for t in instants:
            local = t.astimezone(zone)
            min(next(CronSim(line, local)) for line in lines)

    return _seconds(run) / count * 1e6


def run(quick: bool) -> list[Figure]:
    calls = QUICK_CALLS if quick else FULL_CALLS
    elapsed = mixed(calls)
    scale = FULL_CALLS / calls
    figures = [
        Figure(
            f"{FULL_CALLS:,} next_after, {len(MIX)} mixed forms",
            elapsed * scale,
            "s",
            goal="< 2 s",
            note=f"measured on {calls:,} calls" + (", scaled" if quick else ""),
        )
    ]
    per_form = PER_FORM_CALLS // (5 if quick else 1)
    for text in PER_FORM:
        schedule = placed(text)
        ours = per_call_us(schedule, per_form)
        note = "no cron form"
        if schedule.cron() is not None:
            note = f"cronsim: {cronsim_per_call_us(schedule, per_form):.1f} µs"
        figures.append(Figure(f'next_after "{text}"', ours, "µs", note=note))
    return figures


if __name__ == "__main__":
    for figure in run(quick=False):
        print(figure.row())
