"""``odin calendar``: named calendars of exceptions that a user's jobs share.

A calendar file lists days (``except:`` items, docs/schedules.md); a job skips its ticks on
them with ``except: [calendar: NAME]``. ``regions`` works offline: it lists the country and
subdivision codes that ``on public holidays in ...`` takes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from odin.cli.client import quote_id
from odin.cli.common import client_for, local_time, port_option
from odin.cli.output import output_option, print_json, print_table


@click.group("calendar")
def calendar() -> None:
    """Manage named calendars of days your jobs skip (except: [calendar: NAME]).

    \b
      odin calendar add -f closed.yml     # add it, or change it (its jobs are planned again)
      odin calendar list                  # your calendars and the jobs that use them
      odin calendar describe closed       # its rules and the next days it excludes
      odin calendar remove closed         # refused while a job uses it
      odin calendar regions [COUNTRY]     # the codes of "on public holidays in ..."

    \b
    A calendar file (closed.yml), and a job that skips its days:
      calendar:                           job:
        name: closed                        ...
        description: the office is shut     except:
        except:                               - calendar: closed
          - on public holidays in IE
          - 2026-12-24 to 2027-01-02
    """


def _days(item: dict[str, Any]) -> str:
    first, last = item["first"], item["last"]
    return first if first == last else f"{first} to {last}"


@calendar.command("add")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(path_type=Path),
    help="The calendar's YAML file.",
)
@port_option
@output_option()
def add(path: Path, port: str | None, fmt: str) -> None:
    """Add a calendar from its file, or replace your calendar of that name.

    The jobs that name it are planned again at once.
    """
    from odin.cli.jobs_cmd import read_text
    from odin.jobs.calendars import load_calendar_yaml

    text = read_text(path, "the calendar file")
    load_calendar_yaml(text, source=str(path))  # checked here first: the same errors, offline
    body = {"yaml": text, "source": str(path)}
    result = client_for(port).request("POST", "/v1/calendars", body)
    if fmt == "json":
        print_json(result)
        return
    cal = result["calendar"]
    verb = "Updated" if result["updated"] else "Added"
    rules = len(cal["rules"])
    click.echo(f"{verb} calendar {cal['name']} ({rules} rule{'s' if rules != 1 else ''})")
    if cal["jobs"]:
        click.echo(f"Planned again: {', '.join(cal['jobs'])}")


@calendar.command("list")
@port_option
@output_option()
def list_calendars(port: str | None, fmt: str) -> None:
    """List your calendars (root sees every user's) and the jobs that name them."""
    found: list[dict[str, Any]] = client_for(port).request("GET", "/v1/calendars")
    if fmt == "json":
        print_json(found)
        return
    if not found:
        click.echo("No calendars yet. Add one with: odin calendar add -f FILE")
        return
    rows = [
        [
            cal["name"],
            cal["owner"],
            cal["description"],
            "; ".join(cal["rules"]),
            ", ".join(cal["jobs"]) or "-",
        ]
        for cal in found
    ]
    print_table(["NAME", "OWNER", "DESCRIPTION", "EXCEPT", "JOBS"], rows)


@calendar.command("describe")
@click.argument("name")
@port_option
@output_option()
def describe(name: str, port: str | None, fmt: str) -> None:
    """Show a calendar: its rules, the jobs that use it and the next days it excludes."""
    cal = client_for(port).request("GET", f"/v1/calendars/{quote_id(name)}")
    if fmt == "json":
        print_json(cal)
        return
    fields = [
        ("Name", cal["name"]),
        ("Owner", f"{cal['owner']} (uid {cal['owner_uid']})"),
        ("Description", cal["description"] or "-"),
        ("Jobs", ", ".join(cal["jobs"]) or "none"),
        ("Updated", f"{local_time(cal['updated_at'])} (version {cal['version']})"),
    ]
    for label, value in fields:
        click.echo(f"{label + ':':<13}{value}")
    click.echo("Except:")
    for rule in cal["rules"]:
        click.echo(f"  - {rule}")
    click.echo("Next excluded days:")
    for item in cal["excluded"]:
        click.echo(f"  {_days(item)}: {item['rule']}")
    if not cal["excluded"]:
        click.echo("  (none in the coming year)")


@calendar.command("remove")
@click.argument("name")
@port_option
@output_option()
def remove(name: str, port: str | None, fmt: str) -> None:
    """Remove a calendar; refused while a job names it (the message names the jobs)."""
    result = client_for(port).request("DELETE", f"/v1/calendars/{quote_id(name)}")
    if fmt == "json":
        print_json(result)
        return
    click.echo(f"Removed calendar {result['removed']}")


@calendar.command("regions")
@click.argument("country", required=False)
@output_option()
def regions(country: str | None, fmt: str) -> None:
    """List the country codes of "on public holidays in CODE", or COUNTRY's subdivisions
    ("on public holidays in US-CA"); from the holidays library, no engine needed."""
    from odin.schedule.exceptions import check_region, country_names, subdivision_names
    from odin.schedule.exceptions import regions as known

    names = country_names()
    if country is None:
        table = [
            {"code": code, "name": names.get(code, ""), "subdivisions": list(subs)}
            for code, subs in known().items()
        ]
        if fmt == "json":
            print_json(table)
            return
        rows = [[r["code"], r["name"], len(r["subdivisions"]) or "-"] for r in table]
        print_table(["CODE", "COUNTRY", "SUBDIVISIONS"], rows)
        return
    code, _ = check_region(country)
    subdivisions = list(known().get(code, ()))
    if fmt == "json":
        print_json({"code": code, "name": names.get(code, ""), "subdivisions": subdivisions})
        return
    if not subdivisions:
        click.echo(
            f'{code} ({names.get(code, "")}) has no subdivisions: "on public holidays in {code}"'
        )
        return
    called: dict[str, list[str]] = {}
    for alias, sub in subdivision_names(code).items():
        called.setdefault(sub, []).append(alias)
    click.echo(f"{code} ({names.get(code, '')}): on public holidays in {code}-SUBDIVISION")
    rows = [[sub, ", ".join(called.get(sub, []))] for sub in subdivisions]
    print_table(["SUBDIVISION", "NAME"], rows)
