"""Commands about a job's alerts: ``odin alerts`` (what was sent) and ``odin notify test``."""

from __future__ import annotations

import sys
from typing import Any

import click

from odin.cli.client import quote_id
from odin.cli.common import client_for, id_option, local_time, port_option
from odin.cli.errors import EXIT_FAILURE
from odin.cli.output import output_option, print_json, print_table, progress

ALERT_COLUMNS = ["WHEN", "JOB", "EVENT", "TO", "STATE", "ATTEMPTS", "OUTCOME", "RUN"]


def _outcome(alert: dict[str, Any]) -> str:
    """The last attempt's outcome, and when the next one is due while delivery goes on."""
    outcome = str(alert.get("outcome") or "") or "-"
    upcoming = alert.get("next_attempt_at")
    if upcoming and alert["state"] in ("pending", "retrying"):
        outcome = f"{outcome} (next try {local_time(upcoming)})"
    return outcome


def _row(alert: dict[str, Any]) -> list[Any]:
    return [
        local_time(alert["created_at"]),
        alert["job"],
        alert["event"],
        alert["to"],
        alert["state"],
        alert["attempts"],
        _outcome(alert),
        alert["run"] or "-",
    ]


@click.command("alerts")
@click.option(
    "-i",
    "--id",
    "job_id",
    default=None,
    metavar="ID",
    help="Only this job's alerts (see odin list).",
)
@click.option(
    "-n",
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="How many of the latest alerts to show.",
)
@port_option
@output_option()
def alerts(job_id: str | None, limit: int, port: str | None, fmt: str) -> None:
    """Show the alerts your jobs sent (root sees every user's), the newest last.

    Each row is one alert to one destination (its secrets masked): the event
    (failure, recovery, missed, overdue, lost), its delivery state (pending,
    retrying, sent, failed), how many attempts it took and what the last one got.
    Jobs send alerts to the destinations of their notify: list.

    \b
    Examples:
      odin alerts                        # the latest alerts of all your jobs
      odin alerts -i a37b187f5930 -n 5   # one job's last five alerts
      odin alerts -o json                # for scripts
    """
    query = {"job": job_id, "limit": limit}
    found: list[dict[str, Any]] = client_for(port).request("GET", "/v1/alerts", query=query)
    found.reverse()  # the engine sends the newest first; like odin log, the newest goes last
    if fmt == "json":
        print_json(found)
        return
    if not found:
        whose = f"job {job_id}" if job_id else "your jobs"
        click.echo(
            f"No alerts of {whose} yet. A job sends them to its notify: destinations; "
            "check those with: odin notify test -i ID"
        )
        return
    print_table(ALERT_COLUMNS, [_row(alert) for alert in found])


@click.group("notify")
def notify() -> None:
    """Check where a job's alerts go.

    \b
    A job lists its destinations in its YAML file, for example:
      notify:
        - to: https://hooks.example.org/odin
          on: [failure, recovery]
          after: 3
    then: odin notify test -i a37b187f5930
    """


@notify.command("test")
@id_option
@port_option
@output_option()
def test(job_id: str, port: str | None, fmt: str) -> None:
    """Send a test alert to each of a job's notify: destinations, now.

    Prints one line per destination: ok or failed, and what it answered. Exits
    with 1 if any destination failed. A webhook gets a JSON body with
    "event": "test" and "test": true, so a receiver can tell it from a real alert.

    \b
    Example: odin notify test -i a37b187f5930
    """
    path = f"/v1/jobs/{quote_id(job_id)}/notify/test"
    with progress("Sending a test alert to each destination...", fmt=fmt):
        sent: list[dict[str, Any]] = client_for(port).request("POST", path)
    failed = [entry for entry in sent if not entry["ok"]]
    if fmt == "json":
        print_json(sent)
    else:
        width = max((len(entry["to"]) for entry in sent), default=0)
        for entry in sent:
            verdict = "ok    " if entry["ok"] else "failed"
            click.echo(f"{verdict}  {entry['to']:<{width}}  {entry['outcome']}".rstrip())
    if failed:
        if fmt != "json":
            click.echo(f"{len(failed)} of {len(sent)} destinations failed.", err=True)
        sys.exit(EXIT_FAILURE)
