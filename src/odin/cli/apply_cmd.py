"""``odin apply``: the job files of whole folders, deployed as one change (jobs as code).

Every ``*.yml``/``*.yaml`` file under the folders that has ``provider:`` or ``job:`` is
read and checked as ``odin deploy`` reads it (``jobs_cmd.read_job``); other YAML is
skipped with a note, and so is a symlink that leads out of its folder (a symlinked
folder is not entered). Any bad file stops the apply before the engine is asked
anything. The engine plans the batch against the caller's jobs (``POST /v1/apply``),
the plan is shown and confirmed, and the engine applies all of it in one Raft entry.
A batch over the request bound (``MAX_REQUEST_BODY_BYTES``) goes in several requests,
each atomic on its own, and the command says so.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from odin import config
from odin.cli.common import client_for, port_option
from odin.cli.jobs_cmd import LocalJob, read_job, read_text
from odin.cli.output import output_option, print_json, progress
from odin.errors import InvalidInput, JobFileError

_JOB_FILE = re.compile(r"^(provider|job)[ \t]*:", re.MULTILINE)
_ID_LINE = re.compile(r"^[ \t]+id[ \t]*:", re.MULTILINE)
_SUFFIXES = (".yml", ".yaml")
REQUEST_MARGIN = 64 * config.KIB
"""Room left in each request for what is not the jobs themselves."""
_MARKS = {"create": "+", "update": "~", "unchanged": "=", "remove": "-"}


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path``, its symlinks resolved, is ``root`` or under it."""
    return path.resolve().is_relative_to(root)


def find_job_files(folders: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """The YAML files under ``folders`` (a file named directly is taken as is), in a stable
    order, and notes on what was left out (a symlink out of its folder, a file seen twice);
    symlinked and hidden folders are not entered."""
    found: dict[Path, Path] = {}  # resolved -> as found
    notes: list[str] = []
    for folder in folders:
        try:
            if folder.is_file():
                found.setdefault(folder.resolve(), folder)
                continue
            if not folder.is_dir():
                raise InvalidInput(f"{folder} is not a folder (odin apply -f takes folders)")
            for path in _walk(folder, folder.resolve(), notes):
                _add(found, path, notes)
        except OSError as error:  # a folder that cannot be read could hide jobs (and --prune)
            where = error.filename or folder
            raise InvalidInput(f"cannot read {where}: {error.strerror or error}") from None
    return list(found.values()), notes


def _add(found: dict[Path, Path], path: Path, notes: list[str]) -> None:
    """Take ``path`` unless it is a file already taken (the file itself wins over a link)."""
    real = path.resolve()
    first = found.setdefault(real, path)
    if first == path:
        return
    if first.is_symlink() and not path.is_symlink():
        found[real], path, first = path, first, path
    notes.append(f"skipped {path}: the same file as {first}")


def _raise(error: OSError) -> None:
    raise error


def _walk(folder: Path, root: Path, notes: list[str]) -> Iterator[Path]:
    """The YAML files under ``folder``, never through a symlink out of ``root``."""
    for directory, subdirs, files in os.walk(folder, onerror=_raise, followlinks=False):
        here = Path(directory)
        for name in sorted(subdirs):
            if (here / name).is_symlink():
                notes.append(f"skipped {here / name}: a symlink to a folder (not entered)")
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            path = here / name
            if not name.endswith(_SUFFIXES):
                continue
            if path.is_symlink() and not _inside(path, root):
                notes.append(f"skipped {path}: a symlink out of {folder}")
                continue
            yield path


def _id_line(text: str) -> int | None:
    """The line of the job's ``id:`` (for messages), if it is found."""
    match = _ID_LINE.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def read_jobs(paths: Sequence[Path], notes: list[str]) -> list[LocalJob]:
    """Each job file among ``paths`` read and checked as deploy does (a ``LocalJob``); other
    YAML is noted and left out; two files with one job id are refused, naming both."""
    jobs = []
    seen: dict[str, Path] = {}
    for path in paths:
        text = read_text(path, "the job file")
        if not _JOB_FILE.search(text):
            notes.append(f"skipped {path}: not a job file (no provider: or job:)")
            continue
        local = read_job(path, text)
        job_id = local.spec.id
        if job_id in seen:
            line = _id_line(text)
            where = f"{path}: line {line}: job.id" if line else f"{path}: job.id"
            raise JobFileError(
                f"{where}: job id {job_id} is also the id of {seen[job_id]} "
                "(odin generate writes a fresh one)",
                field="job.id",
                line=line,
            )
        seen[job_id] = path
        jobs.append(local)
    return jobs


def split(bodies: Sequence[dict[str, str]], bound: int) -> list[list[dict[str, str]]]:
    """``bodies`` in as few requests as fit under ``bound`` bytes each, in order."""
    chunks: list[list[dict[str, str]]] = [[]]
    size = 0
    for body in bodies:
        cost = len(json.dumps(body)) + 2
        if chunks[-1] and size + cost > bound:
            chunks.append([])
            size = 0
        chunks[-1].append(body)
        size += cost
    return chunks


def _send(
    port: str | None, chunks: Sequence[list[dict[str, str]]], prune: bool, dry_run: bool
) -> dict[str, Any]:
    """Send the batch (one request per chunk; the prune goes with the last, told which ids
    the others hold) and merge the answers into one."""
    client = client_for(port)
    merged: dict[str, Any] = {
        "items": [],
        "counts": dict.fromkeys(_MARKS, 0),
        "dry_run": dry_run,
        "applied": False,
    }
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        keep = [b["id"] for other in chunks if other is not chunk for b in other] if last else []
        body = {
            "jobs": [{k: v for k, v in b.items() if k != "id"} for b in chunk],
            "prune": prune and last,
            "dry_run": dry_run,
            "keep": keep if prune else [],
        }
        answer = client.request("POST", "/v1/apply", body)
        merged["items"] += answer["items"]
        for action, count in answer["counts"].items():
            merged["counts"][action] = merged["counts"].get(action, 0) + count
        merged["applied"] = merged["applied"] or answer["applied"]
    return merged


def _summary(counts: dict[str, int]) -> str:
    return (
        f"{counts['create']} to create, {counts['update']} to update, "
        f"{counts['unchanged']} unchanged, {counts['remove']} to remove"
    )


def _print_plan(result: dict[str, Any], err: bool = False) -> None:
    """The plan: its counts, then a line per job that changes (an update with its diff)."""
    click.echo(f"Plan: {_summary(result['counts'])}", err=err)
    shown = [item for item in result["items"] if item["action"] != "unchanged"]
    if not shown:
        return
    width = max(len(item["name"]) for item in shown)
    for item in shown:
        mark = _MARKS[item["action"]]
        line = f"  {mark} {item['action']:<7} {item['id']}  {item['name']:<{width}}  "
        line += item["source"] or "(not in the folders)"
        if item["action"] == "update":
            line += "  (code changed)" if item["code_changed"] else "  (same code)"
        click.echo(line.rstrip(), err=err)
        for diff_line in item["diff"].splitlines():
            click.echo(f"      {diff_line}", err=err)


def _changes(counts: dict[str, int]) -> int:
    return counts["create"] + counts["update"] + counts["remove"]


def _confirm(yes: bool, dry_run: bool) -> None:
    """Refuse at once when the question could not be asked (not a terminal, no --yes)."""
    if yes or dry_run or sys.stdin.isatty():
        return
    raise InvalidInput(
        "odin apply asks before it changes anything, and standard input is not a terminal: "
        "add --yes to apply without asking, or --dry-run to see the plan only"
    )


@click.command("apply")
@click.option(
    "-f",
    "--file",
    "folders",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="A folder of job files (searched recursively); repeat for more.",
)
@click.option("--prune", is_flag=True, help="Also remove your deployed jobs not in the folders.")
@click.option("--dry-run", is_flag=True, help="Show the plan only; change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Apply without asking.")
@port_option
@output_option()
def apply(
    folders: tuple[Path, ...], prune: bool, dry_run: bool, yes: bool, port: str | None, fmt: str
) -> None:
    """Deploy every job file in the folders as one change, showing the plan first.

    Each YAML file with provider: and job: is checked as odin deploy checks it (its code
    beside it); any bad file stops everything before a change. The plan lists each job to
    create, update (with a diff) or leave, and with --prune your jobs to remove; it is
    applied after you confirm (--yes: at once), all of it or nothing. A batch over the
    engine's 8 MiB request bound is sent in several requests, each all-or-nothing.
    Hidden folders (.git) and symlinked folders are not entered, nor symlinks followed
    out of a folder.

    \b
    Example: odin apply -f jobs/ --prune
    """
    _confirm(yes, dry_run)
    paths, notes = find_job_files(folders)
    jobs = read_jobs(paths, notes)
    if fmt != "json":
        for note in notes:
            click.echo(f"Note: {note}", err=True)
    if not jobs:  # with --prune, that would remove every job of the caller's: refused
        raise InvalidInput(f"no job files in {', '.join(map(str, folders))}")
    bodies = [
        {"id": j.spec.id, "yaml": j.yaml, "code": j.code, "source": str(j.path)} for j in jobs
    ]
    chunks = split(bodies, config.MAX_REQUEST_BODY_BYTES - REQUEST_MARGIN)
    if len(chunks) > 1 and fmt != "json":
        click.echo(
            f"Note: the jobs are over the engine's request bound "
            f"({config.MAX_REQUEST_BODY_BYTES // config.MIB} MiB): they go in "
            f"{len(chunks)} requests, each applied all or nothing on its own",
            err=True,
        )
    ask = not (yes or dry_run)
    if ask:  # the plan first, then the question
        planned = _send(port, chunks, prune, dry_run=True)
        _print_plan(planned, err=fmt == "json")
        if not _changes(planned["counts"]):
            click.echo("Nothing to change.", err=fmt == "json")
            return
        if not click.confirm("Apply these changes?", default=False, err=fmt == "json"):
            click.echo("Not applied: nothing changed.", err=fmt == "json")
            raise click.exceptions.Exit(1)
    with progress(f"Applying {len(jobs)} jobs...", fmt=fmt):
        result = _send(port, chunks, prune, dry_run=dry_run)
    result["requests"] = len(chunks)
    result["notes"] = notes
    if fmt == "json":
        print_json(result)
        return
    if not ask:
        _print_plan(result)
    if dry_run:
        click.echo("Dry run: nothing changed.")
    elif not result["applied"]:
        click.echo("Nothing to change.")
    else:
        counts = result["counts"]
        how = "in one change" if len(chunks) == 1 else f"in {len(chunks)} requests"
        click.echo(
            f"Applied {how}: {counts['create']} created, {counts['update']} updated, "
            f"{counts['remove']} removed, {counts['unchanged']} unchanged."
        )
