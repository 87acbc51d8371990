"""``odin import crontab``: turn a crontab into Odin job files, one YAML and wrapper a line.

Works offline and deploys nothing. The crontab (a file, standard input, or ``crontab -l``),
the host's zone and the clock are read here and handed to the pure ``odin.jobs.crontab``;
the files are written into a folder reached without following other users' symlinks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from odin.cli.errors import EXIT_FAILURE
from odin.cli.output import output_option, print_json, print_table
from odin.errors import InvalidInput, LimitExceeded, NotFound

DEFAULT_DIRECTORY = Path("crontab-jobs")
STDIN_NAME = "-"
CRONTAB_TIMEOUT_S = 30  # how long `crontab -l` may take
CRONTAB_PROGRAM = "crontab"
NO_ENTRY = "-"

if TYPE_CHECKING:
    from odin.jobs.crontab import ImportPlan


@click.group("import")
def import_group() -> None:
    """Turn another scheduler's jobs into Odin job files (nothing is deployed).

    \b
    Examples:
      odin import crontab                      # your crontab (crontab -l) into ./crontab-jobs
      odin import crontab backup.cron -d jobs  # a crontab file into ./jobs
      crontab -l -u bob | odin import crontab -   # standard input
    """


@import_group.command("crontab")
@click.argument("source", required=False, metavar="[FILE]")
@click.option(
    "-d",
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_DIRECTORY,
    show_default=True,
    help="Where to write the jobs (created). A symlink on the way is followed only if "
    "you or root own it.",
)
@click.option("--force", is_flag=True, help="Overwrite job files that exist.")
@output_option()
def crontab(source: str | None, directory: Path, force: bool, fmt: str) -> None:
    """Write one job (NAME.yml and NAME.py) for each line of a crontab; deploy nothing.

    FILE is a crontab file, - for standard input, or, when left out, your own crontab
    (crontab -l). Each schedule becomes Odin's English where English fires at exactly the
    same times (checked), else stays cron; NAME=value lines become env:, MAILTO a notify:
    entry on failure, CRON_TZ or TZ the timezone:. Each job's code runs the line's command
    with /bin/sh (bash if SHELL names it) and keeps its output and exit code.

    \b
    Exit codes: 0 every line was imported; 1 some lines were skipped (listed, with why;
    the others were written); 3 no crontab; 5 a job file exists (nothing written; --force).
    """
    from odin.cli.schedule_cmd import host_timezone
    from odin.jobs.crontab import plan_import

    text = _read_crontab(source)
    plan = plan_import(text, host_zone=host_timezone(), start=datetime.now(UTC))
    targets: list[tuple[Path, str]] = []
    for job in plan.jobs:
        targets += [
            (directory / job.yaml_name, job.yaml_text),
            (directory / job.spec.file, job.code),
        ]
    if targets:
        from odin.cli.jobs_cmd import _write_all as write_all

        _make_directories(directory)
        write_all(directory, targets, force)
    at_once, each = _deploy_commands(directory, [job.yaml_name for job in plan.jobs])
    if fmt == "json":
        print_json(_report(plan, directory, [at_once, *each] if at_once else each))
    else:
        _print_human(plan, directory, at_once, each)
    if plan.skipped:
        raise click.exceptions.Exit(EXIT_FAILURE)


def _read_crontab(source: str | None) -> str:
    """The crontab's text (undecodable bytes kept as surrogates, as file names are)."""
    from odin.jobs.crontab import MAX_CRONTAB_BYTES

    if source is None:
        data = _own_crontab()
    elif source == STDIN_NAME:
        data = _read_limited(sys.stdin.buffer, "standard input")
    else:
        try:
            with open(source, "rb") as stream:
                data = _read_limited(stream, source)
        except FileNotFoundError:
            raise InvalidInput(f"the crontab {source} does not exist") from None
        except IsADirectoryError:
            raise InvalidInput(f"the crontab {source} is a directory") from None
        except PermissionError:
            raise InvalidInput(f"the crontab {source} is not readable by you") from None
    if len(data) > MAX_CRONTAB_BYTES:
        raise LimitExceeded(f"the crontab is larger than {MAX_CRONTAB_BYTES} bytes")
    return data.decode("utf-8", errors="surrogateescape")


def _read_limited(stream: BinaryIO, name: str) -> bytes:
    from odin.jobs.crontab import MAX_CRONTAB_BYTES

    try:
        return stream.read(MAX_CRONTAB_BYTES + 1)
    except OSError as error:
        raise InvalidInput(f"cannot read {name}: {error.strerror or error}") from None


def _own_crontab() -> bytes:
    """``crontab -l``'s output; NotFound when there is no crontab command or no crontab."""
    from odin.jobs.crontab import MAX_CRONTAB_BYTES

    hint = "give the crontab as a file (odin import crontab FILE) or - for standard input"
    try:
        done = subprocess.run(
            [CRONTAB_PROGRAM, "-l"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=CRONTAB_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise NotFound(f"the crontab command is not installed here: {hint}") from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InvalidInput(f"cannot run crontab -l ({error}): {hint}") from None
    said = done.stderr.decode(errors="replace").strip().splitlines()
    message = said[0][:200] if said else f"exit code {done.returncode}"
    if done.returncode != 0:
        if "no crontab" in message.lower():
            raise NotFound(f"you have no crontab (crontab -l: {message}): nothing to import")
        raise InvalidInput(f"crontab -l failed ({message}): {hint}")
    return done.stdout[: MAX_CRONTAB_BYTES + 1]


def _make_directories(directory: Path) -> None:
    """Create ``directory`` and its missing parents, each reached as ``open_directory`` does."""
    from odin.cli.safepath import open_directory

    parts = directory.parts
    for depth in range(1, len(parts) + 1):
        here = Path(*parts[:depth])
        if here.name in ("", ".", ".."):
            continue
        parent = open_directory(here.parent)
        try:
            os.mkdir(here.name, 0o755, dir_fd=parent)
        except FileExistsError:
            pass
        except OSError as error:
            raise InvalidInput(f"cannot create {here}: {error.strerror or error}") from None
        finally:
            os.close(parent)


def _deploy_commands(directory: Path, yaml_names: list[str]) -> tuple[str | None, list[str]]:
    """How to deploy what was written: ``odin apply`` on the folder (if it exists) and each file."""
    from odin.cli.main import COMMANDS

    each = [f"odin deploy -f {directory / name}" for name in yaml_names]
    return (f"odin apply -f {directory}" if "apply" in COMMANDS and each else None), each


def _report(plan: ImportPlan, directory: Path, deploy: list[str]) -> dict[str, Any]:
    """The JSON shape of ``odin import crontab -o json``."""
    return {
        "directory": str(directory),
        "jobs": [
            {
                "line": job.line.number,
                "cron": job.line.schedule,
                "schedule": job.translation.schedule,
                "form": job.translation.form.value,
                "id": job.spec.id,
                "name": job.spec.name,
                "yaml": str(directory / job.yaml_name),
                "code": str(directory / job.spec.file),
                "notes": list(job.notes),
            }
            for job in plan.jobs
        ],
        "skipped": [
            {"line": item.number, "text": item.text, "kind": item.kind.value, "reason": item.reason}
            for item in plan.skipped
        ],
        "remarks": [
            {"line": item.number, "text": item.text, "note": item.note} for item in plan.remarks
        ],
        "deploy": deploy,
    }


def _print_human(plan: ImportPlan, directory: Path, at_once: str | None, each: list[str]) -> None:
    rows: list[tuple[int, str, str, str, str]] = []
    for job in plan.jobs:
        schedule, file = job.translation.schedule, str(directory / job.yaml_name)
        rows.append((job.line.number, job.line.schedule, schedule, file, "; ".join(job.notes)))
    for item in plan.skipped:
        rows.append((item.number, _cut(item.text), NO_ENTRY, "skipped", item.reason))
    for remark in plan.remarks:
        rows.append((remark.number, _cut(remark.text), NO_ENTRY, NO_ENTRY, remark.note))
    rows.sort(key=lambda row: row[0])
    if rows:
        print_table(["LINE", "CRONTAB", "ODIN SCHEDULE", "JOB FILE", "NOTES"], rows)
    count = len(plan.jobs)
    if not count:
        click.echo("No job was written: the crontab has no line to import.")
    else:
        plural = "s" if count != 1 else ""
        click.echo(f"\nWrote {count} job{plural} ({count * 2} files) in {directory}.")
        click.echo("Nothing was deployed. Check the files, then deploy them:")
        if at_once is not None:
            click.echo(f"  {at_once}    # all at once")
            click.echo("or one at a time:")
        for command in each:
            click.echo(f"  {command}")
    if plan.skipped:
        lines = ", ".join(str(item.number) for item in plan.skipped)
        click.echo(f"Skipped line(s) {lines}: see NOTES (exit code 1).", err=True)


def _cut(text: str, limit: int = 40) -> str:
    """A line shortened for a table cell, unprintable characters masked."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
