"""``odin schedule``: explain a schedule and list its next fire times.

Works offline: it needs no engine. The host's zone and the clock are read
here, at the edge, and handed to the pure ``odin.schedule`` package. A schedule
whose instants depend on the job's id (a spread, cron's ``H``) is shown for the
job ``-i`` names, or for an example id, which it says.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from odin import config
from odin.cli.errors import exit_code_for
from odin.cli.output import output_option, print_error, print_json, print_table
from odin.cli.upcoming import echo_skipped, with_exceptions
from odin.errors import ScheduleError
from odin.jobs.ids import is_job_id
from odin.schedule import Schedule, parse
from odin.schedule.spread import EXAMPLE_JOB_ID

DEFAULT_COUNT = 5
ZONEINFO_MARKER = "zoneinfo/"


def host_timezone() -> str:
    """The host's IANA zone: $TZ, then /etc/timezone, then /etc/localtime's target."""
    from_env = os.environ.get("TZ", "").strip().lstrip(":")
    if from_env:
        return from_env
    try:
        from_file = Path("/etc/timezone").read_text(encoding="utf-8").strip()
    except OSError:
        from_file = ""
    if from_file:
        return from_file
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return "UTC"
    if ZONEINFO_MARKER in target:
        return target.split(ZONEINFO_MARKER, 1)[1]
    return "UTC"


def _start(value: str | None, schedule: Schedule) -> datetime:
    """``--from`` as an aware instant; a naive value is read in the schedule's zone."""
    if value is None:
        return datetime.now(UTC)
    try:
        start = datetime.fromisoformat(value)
    except ValueError as error:
        raise click.BadParameter(f"not an ISO-8601 date-time: {value!r}") from error
    return start if start.tzinfo is not None else start.replace(tzinfo=schedule.zone)


def explain(
    schedule: Schedule, start: datetime, count: int, job_id: str | None = None
) -> dict[str, Any]:
    """The JSON shape of ``odin schedule -o json``; ``job_id`` is None when the instants
    depend on no job, else the id they are shown for (``example_id``: not a real one's)."""
    shown = schedule
    if schedule.needs_job:
        shown = schedule.placed(job_id or EXAMPLE_JOB_ID)
    report: dict[str, Any] = {
        "schedule": schedule.text,
        "description": shown.explain(),
        "cron": shown.cron(),
        "timezone": schedule.timezone,
        "next": [fire.isoformat() for fire in shown.next_n(start, count)],
    }
    if schedule.needs_job:
        report["job_id"] = shown.job_id
        report["example_id"] = job_id is None
    return report


def _print_human(report: dict[str, Any]) -> None:
    cron = report["cron"]
    fields = {
        "Schedule": report["schedule"],
        "Description": report["description"],
        "Cron": "none" if cron is None else "; ".join(cron),
        "Timezone": report["timezone"],
    }
    if "job_id" in report:
        note = " (an example: each job has its own; give -i ID)" if report["example_id"] else ""
        fields["Job id"] = f"{report['job_id']}{note}"
    for label, value in fields.items():
        click.echo(f"{label + ':':<13}{value}")
    if not report["next"]:
        click.echo("\nNo upcoming runs.")
        return
    click.echo()
    print_table(["#", "NEXT RUN"], [[i, fire] for i, fire in enumerate(report["next"], 1)])


@click.command("schedule")
@click.argument("text")
@click.option("--tz", "tz", default=None, help="Time zone (default: this host's zone).")
@click.option("--from", "start", default=None, help="List runs after this ISO date-time.")
@click.option(
    "--count",
    "-n",
    type=click.IntRange(0, config.MAX_SCHEDULE_PREVIEW),
    default=DEFAULT_COUNT,
    show_default=True,
    help="How many next runs to list.",
)
@click.option(
    "-i",
    "--id",
    "job_id",
    default=None,
    metavar="ID",
    help="The job whose instants to show, for a spread or cron's H (default: an example id).",
)
@click.option(
    "--except",
    "excepts",
    multiple=True,
    metavar="RULE",
    help='Leave out the ticks of days like "on weekends" or "on public holidays in IE" '
    "(repeatable; docs/schedules.md).",
)
@output_option()
def schedule(
    text: str,
    tz: str | None,
    start: str | None,
    count: int,
    job_id: str | None,
    excepts: tuple[str, ...],
    fmt: str,
) -> None:
    """Explain TEXT (e.g. "every Monday at 09:30") and list its next runs.

    Several schedules are one TEXT, joined by ";" ("every hour; 0 9 * * 1-5").
    """
    if job_id is not None and not is_job_id(job_id):
        raise click.BadParameter(f"{job_id!r} is not a job id (12 lowercase hex digits)")
    try:
        parsed = parse(text, tz or host_timezone())
    except ScheduleError as error:
        if fmt != "json":
            raise
        print_error(str(error), fmt="json")
        sys.exit(exit_code_for(error))
    report = explain(parsed, _start(start, parsed), count, job_id)
    if excepts:
        report = with_exceptions(report, parsed, _start(start, parsed), count, excepts)
    if fmt == "json":
        print_json(report)
    else:
        _print_human(report)
        echo_skipped(report)
