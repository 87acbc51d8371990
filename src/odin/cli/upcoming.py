"""Exceptions in the CLI: ``odin describe``'s skipped ticks and ``odin schedule --except``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from odin.cli.common import local_time
from odin.errors import InvalidInput
from odin.schedule import Schedule


def upcoming_lines(job: dict[str, Any]) -> list[str]:
    """The next runs and the skipped ticks, in time order, one line each (an engine of an
    older version sends no ``skipped``: its runs alone)."""
    moved = {item["moved_to"] for item in job.get("skipped") or [] if item.get("moved_to")}
    entries: list[tuple[str, str]] = [
        (at, f"  {local_time(at)}" + ("  (excluded ticks moved here)" if at in moved else ""))
        for at in job["next_runs"]
    ]
    for item in job.get("skipped") or []:
        through = f" through {item['through']}" if item.get("through") else ""
        line = f"  {local_time(item['at'])}  skipped{through}: {item['rule']}"
        if item.get("moved_to"):
            line += f" (runs at {local_time(item['moved_to'])})"
        entries.append((item["at"], line))
    entries.sort(key=lambda entry: _instant(entry[0]))
    return [line for _, line in entries]


def _instant(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def echo_exceptions(job: dict[str, Any]) -> None:
    """The job's ``except:`` items and ``on_excluded``, when it has any."""
    items = job.get("exceptions") or []
    if not items:
        return
    click.echo(f"Except ({job.get('on_excluded', 'skip')}):")
    for item in items:
        click.echo(f"  - {item}")


def with_exceptions(
    report: dict[str, Any], schedule: Schedule, start: datetime, count: int, items: tuple[str, ...]
) -> dict[str, Any]:
    """``odin schedule --except``: its report with the next runs that the exceptions leave and
    the ticks they skip (offline: public holidays from the holidays library; no calendar)."""
    from odin.schedule.exceptions import CalendarRef, HolidayBook, parse_item, preview
    from odin.schedule.exceptions import resolve_items as resolve

    texts = []
    for item in items:
        rule = parse_item(item)
        if isinstance(rule, CalendarRef):
            raise InvalidInput(
                f'"{rule.describe()}" needs the engine: give its rules with --except instead'
            )
        texts.append(rule.describe())
    shown = schedule.placed(report["job_id"]) if "job_id" in report else schedule
    found = preview(shown, resolve(texts, {}, HolidayBook()), start, count)
    return {
        **report,
        "except": texts,
        "next": [u.at.isoformat() for u in found if u.skipped is None],
        "skipped": [
            {
                "at": u.at.isoformat(),
                "through": None if u.through is None else u.through.isoformat(),
                "rule": u.skipped,
            }
            for u in found
            if u.skipped is not None
        ],
    }


def echo_skipped(report: dict[str, Any]) -> None:
    """The ticks ``--except`` skips, after the table of next runs."""
    if not report.get("skipped"):
        return
    click.echo("\nSkipped:")
    for item in report["skipped"]:
        through = f" through {item['through']}" if item["through"] else ""
        click.echo(f"  {item['at']}{through}: {item['rule']}")
