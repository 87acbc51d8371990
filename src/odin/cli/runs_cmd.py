"""Commands that show runs: log (with --output and --follow) and stats (SDK records)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from odin.cli.client import EngineClient, quote_id
from odin.cli.common import client_for, id_option, local_time, port_option, seconds
from odin.cli.output import output_option, print_json, print_table

FOLLOW_POLL_S = 0.5
LOG_COLUMNS = [
    "TIME",
    "LEVEL",
    "MESSAGE",
    "FILE",
    "UID",
    "GID",
    "LANGUAGE",
    "NODE",
    "EXIT",
    "DURATION",
    "WAIT",
    "RUN",
]


def _level(run: dict[str, Any]) -> str:
    return "info" if run["status"] in ("succeeded", "running", "planned") else "warning"


def _message(run: dict[str, Any]) -> str:
    message = str(run["message"] or run["status"])
    if run["status"] in ("planned", "running"):
        message = run["status"]
    desc = run.get("result_desc")
    if desc and desc not in message:
        message = f"{message} [{desc}]"
    if run.get("moved_from"):  # planned on a node that failed: which, and why it moved
        message = f"{message} (first planned on {run['moved_from']}; {run.get('moved_why', '')})"
    return message


def _row(run: dict[str, Any], job: dict[str, Any]) -> list[Any]:
    when = run["started_iso"] or run["instant_iso"]
    exit_code = "" if run["exit_code"] is None else run["exit_code"]
    return [
        local_time(when),
        _level(run),
        _message(run),
        job["file"],
        job["owner_uid"],
        job["owner_gid"],
        job["language"],
        run["node"],
        exit_code,
        seconds(run["duration"]),
        seconds(run.get("lag")),  # from its instant to its start: time spent waiting its turn
        run["id"],
    ]


def _print_output(client: EngineClient, run: dict[str, Any]) -> None:
    out = client.request("GET", f"/v1/runs/{quote_id(run['id'])}/output")
    click.echo(
        f"--- output of {run['id']} ({out['bytes']} bytes"
        + (f", {out['dropped']} dropped" if out["dropped"] else "")
        + (", tail only: the run's node keeps the rest" if out["tail_only"] else "")
        + ")"
    )
    text = out["output"]
    click.echo(text, nl=not text.endswith("\n"))


@click.command("log")
@id_option
@click.option(
    "--output", "show_output", is_flag=True, help="Also print each run's captured output."
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new runs and live output.")
@click.option(
    "-n",
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="How many of the latest runs to show.",
)
@port_option
@output_option()
def log(
    job_id: str, show_output: bool, follow: bool, limit: int, port: str | None, fmt: str
) -> None:
    """Show a job's runs: time, level, message, file, uid/gid, language, node, exit code, duration."""
    client = client_for(port)
    job = client.request("GET", f"/v1/jobs/{quote_id(job_id)}")
    runs = client.request("GET", f"/v1/jobs/{quote_id(job_id)}/runs", query={"limit": limit})
    runs.reverse()
    if fmt == "json":
        if follow:
            _follow_json(client, job, runs)
        else:
            print_json(runs)
        return
    if not runs and not follow:
        click.echo(
            f"No runs of job {job['id']} yet (next: {local_time(job['next_run']) or 'none'})."
        )
        return
    if not follow:
        print_table(LOG_COLUMNS, [_row(r, job) for r in runs])
        if show_output:
            for run in runs:
                _print_output(client, run)
        return
    _follow(client, job, runs, show_output)


def _finished(run: dict[str, Any]) -> bool:
    return run["status"] not in ("planned", "running")


def _follow(
    client: EngineClient, job: dict[str, Any], runs: list[dict[str, Any]], show_output: bool
) -> None:
    """Print each finished run once; stream a running run's output while it runs."""
    seen: set[str] = set()
    for run in runs:
        if _finished(run):
            click.echo("  ".join(str(c) for c in _row(run, job)))
            seen.add(run["id"])
    try:
        while True:
            latest = client.request(
                "GET", f"/v1/jobs/{quote_id(job['id'])}/runs", query={"limit": 50}
            )
            for run in reversed(latest):
                if run["id"] in seen:
                    continue
                if run["status"] == "running":
                    click.echo(f"--- {run['id']} is running; live output:")
                    for chunk in client.stream(f"/v1/runs/{quote_id(run['id'])}/follow"):
                        sys.stdout.write(chunk.decode("utf-8", errors="replace"))
                        sys.stdout.flush()
                    run = client.request("GET", f"/v1/runs/{quote_id(run['id'])}")
                if _finished(run):
                    click.echo("  ".join(str(c) for c in _row(run, job)))
                    if show_output:
                        _print_output(client, run)
                    seen.add(run["id"])
            time.sleep(FOLLOW_POLL_S)
    except KeyboardInterrupt:
        return


def _follow_json(client: EngineClient, job: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    try:
        while True:
            for run in runs:
                if run["id"] not in seen and _finished(run):
                    click.echo(json.dumps(run))
                    seen.add(run["id"])
            time.sleep(FOLLOW_POLL_S)
            runs = list(
                reversed(
                    client.request(
                        "GET", f"/v1/jobs/{quote_id(job['id'])}/runs", query={"limit": 50}
                    )
                )
            )
    except KeyboardInterrupt:
        return


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@click.command("stats")
@id_option
@click.option("--run", "run_id", default=None, metavar="RUN", help="Only the records of this run.")
@port_option
@output_option()
def stats(job_id: str, run_id: str | None, port: str | None, fmt: str) -> None:
    """Show what a job's runs recorded with the SDK (watch, condition, result), by run."""
    rows = client_for(port).request(
        "GET", f"/v1/jobs/{quote_id(job_id)}/stats", query={"run": run_id}
    )
    if fmt == "json":
        print_json(rows)
        return
    if not rows:
        click.echo("No records yet: jobs make them with the SDK's watch, condition and result.")
        return
    table = [
        [r["run"], local_time(_iso(r["ts"])), r["type"], r["desc"], _value(r["value"])]
        for r in rows
    ]
    print_table(["RUN", "TIME", "TYPE", "DESCRIPTION", "VALUE"], table)


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()
