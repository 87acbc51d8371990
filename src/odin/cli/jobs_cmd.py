"""Commands that change or show jobs: deploy, list, describe, modify, remove, run, links, recover."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from odin.cli.client import quote_id
from odin.cli.common import client_for, id_option, local_time, port_option
from odin.cli.output import output_option, print_json, print_table, progress
from odin.cli.upcoming import echo_exceptions, upcoming_lines
from odin.errors import Conflict, InvalidInput, JobFileError
from odin.jobs._text import show

if TYPE_CHECKING:
    from odin.jobs.spec import JobSpec


def read_text(path: Path, what: str) -> str:
    """A UTF-8 file's text; every way of failing is one ``InvalidInput`` naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(f"{what} {path} is a directory") from None
    except PermissionError:
        raise InvalidInput(f"{what} {path} is not readable by you") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} {path} is not UTF-8 text") from None


@dataclass(frozen=True)
class LocalJob:
    """A job file as ``odin deploy`` (and ``odin apply``) reads it: checked, with its code."""

    path: Path
    spec: JobSpec
    yaml: str
    code: str


def read_job(yaml_path: Path, text: str | None = None) -> LocalJob:
    """Read and check a job file (``text``, if already read) and the code file it names,
    beside it; a problem is an error naming the file and the field."""
    from odin.jobs.spec import load_job_yaml  # only deploy and apply read YAML: keep list quick

    text = read_text(yaml_path, "the job file") if text is None else text
    spec = load_job_yaml(text, source=str(yaml_path))
    code_path = yaml_path.parent / spec.file
    if not code_path.is_file():
        raise JobFileError(
            f"{yaml_path}: job.file: names {spec.file}, but {code_path} does not exist",
            field="job.file",
        )
    return LocalJob(yaml_path, spec, text, read_text(code_path, "the code file"))


@click.command("deploy")
@click.option(
    "-f",
    "--file",
    "yaml_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The job's YAML file (its 'file' field names the code, beside it).",
)
@port_option
@output_option()
def deploy(yaml_path: Path, port: str | None, fmt: str) -> None:
    """Deploy a job, or update it when its id is already deployed.

    The engine keeps its own copy of the YAML and the code; a Go job is compiled
    once, now. Aliases: dep, add.
    """
    local = read_job(yaml_path)
    client = client_for(port)
    with _deploying(str(local.spec.language), local.spec.file, fmt):
        result = client.request("POST", "/v1/jobs", {"yaml": local.yaml, "code": local.code})
    if fmt == "json":
        print_json(result)
        return
    job = result["job"]
    verb = "Updated" if result["updated"] else "Deployed"
    click.echo(f"{verb} job {job['id']} ({job['name'] or 'unnamed'}): {job['schedule_text']}")
    if job.get("next_run"):
        click.echo(f"Next run: {local_time(job['next_run'])}")


def _deploying(language: str, file: str, fmt: str) -> contextlib.AbstractContextManager[None]:
    """A spinner while the engine compiles a Go job (the first build takes seconds)."""
    if language != "go":
        return contextlib.nullcontext()
    return progress(f"Compiling the Go job {show(file)}...", fmt=fmt)


def _links(job: dict[str, Any]) -> str:
    return ", ".join(t if on == "success" else f"{t} ({on})" for t, on in job["links"].items())


def _not_planned(job: dict[str, Any]) -> str:
    """What ``odin list`` shows for a job the leader plans no run of (none of its nodes is a
    member); '' for any other (an engine of an older version sends no such field)."""
    return "no node" if job.get("not_planned") else ""


@click.command("list")
@port_option
@output_option()
def list_jobs(port: str | None, fmt: str) -> None:
    """List your jobs (root sees every user's). Alias: ls."""
    jobs = client_for(port).request("GET", "/v1/jobs")
    if fmt == "json":
        print_json(jobs)
        return
    columns = [
        "ID",
        "NAME",
        "DESCRIPTION",
        "LANGUAGE",
        "LINKS",
        "SCHEDULE",
        "NEXT RUN",
        "LAST STATUS",
    ]
    rows = [
        [
            j["id"],
            j["name"],
            j["description"],
            j["language"],
            _links(j),
            j["schedule_text"],
            _next_run(j),
            j["last_status"] or "-",
        ]
        for j in sorted(jobs, key=lambda j: (j["name"], j["id"]))
    ]
    if not rows:
        click.echo("No jobs yet. Create one with: odin generate -f NAME.yml -l python")
        return
    print_table(columns, rows)


def _next_run(job: dict[str, Any]) -> str:
    """``odin list``'s NEXT RUN: paused, paused until a moment, or the next run."""
    if job["paused"]:
        return "paused"
    if job.get("paused_until"):  # an engine of an older version sends no such field
        return f"paused until {local_time(job['paused_until'])}"
    return local_time(job["next_run"]) or _not_planned(job)


def _paused(job: dict[str, Any]) -> str:
    """``odin describe``'s Paused: yes, no, or until when."""
    if job["paused"]:
        return "yes"
    if job.get("paused_until"):
        return f"until {local_time(job['paused_until'])}"
    return "no"


def _last_status(job: dict[str, Any]) -> str:
    """The last run's status, with the failed ticks in a row when the job is failing."""
    status = str(job["last_status"] or "-")
    failing = job.get("failing") or 0  # an engine of an older version sends no such field
    return f"{status} (failing: {failing} in a row)" if failing > 0 else status


def _alert_fields(job: dict[str, Any]) -> list[tuple[str, Any]]:
    """``warn_after`` and ``grace`` for ``odin describe``, those the job sets."""
    from odin.jobs.durations import format_duration

    fields: list[tuple[str, Any]] = []
    if job.get("warn_after_s") is not None:
        fields.append(("Warn after", format_duration(job["warn_after_s"])))
    if job.get("grace_s") is not None:
        fields.append(("Grace", format_duration(job["grace_s"])))
    if job.get("jitter_s") is not None:
        fields.append(("Jitter", f"up to {format_duration(job['jitter_s'])} after each tick"))
    if job.get("spread_offset_s") is not None:
        offset = format_duration(job["spread_offset_s"])
        fields.append(("Spread", f"this job runs {offset} into its spread"))
    return fields


def _echo_notify(job: dict[str, Any]) -> None:
    """The job's ``notify:`` destinations (masked by the engine), one line each."""
    entries = job.get("notify") or []
    if not entries:
        return
    click.echo("Notify:")
    for entry in entries:
        after = entry.get("after", 1)
        streak = f"{after} failures in a row" if after > 1 else "1 failure"
        click.echo(f"  {entry['to']}  on {', '.join(entry['on'])}  (alert after {streak})")


@click.command("describe")
@id_option
@port_option
@output_option()
def describe(job_id: str, port: str | None, fmt: str) -> None:
    """Show everything about a job, with its next runs. Alias: desc."""
    job = client_for(port).request("GET", f"/v1/jobs/{quote_id(job_id)}")
    if fmt == "json":
        print_json(job)
        return
    fields = [
        ("ID", job["id"]),
        ("Name", job["name"]),
        ("Description", job["description"]),
        ("Owner", f"{job['owner']} (uid {job['owner_uid']}, gid {job['owner_gid']})"),
        ("Language", job["language"]),
        ("File", job["file"]),
        ("Schedule", f"{job['schedule']}  ({job['schedule_text']})"),
        ("Time zone", job["timezone"]),
        ("Paused", _paused(job)),
        ("Timeout", f"{job['timeout_s']} s" if job["timeout_s"] else "none"),
        ("Retries", job["retries"]),
        ("Overlap", job["overlap"]),
        ("Catch-up", job["catchup"]),
        ("Nodes", ", ".join(job.get("nodes") or []) or "any"),
        ("Links", _links(job) or "-"),
        ("Last status", _last_status(job)),
        ("Created", local_time(job["created_at"])),
        ("Updated", local_time(job["updated_at"])),
        ("Version", job["version"]),
        ("Code sha256", job["code_sha256"]),
    ]
    fields += _alert_fields(job)
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        click.echo(f"{name + ':':<{width + 1}} {value}")
    _echo_notify(job)
    echo_exceptions(job)
    click.echo("Next runs:")
    for line in upcoming_lines(job):
        click.echo(line)
    if not job["next_runs"]:
        click.echo(f"  (none: {job['not_planned']})" if _not_planned(job) else "  (none)")


@click.command("modify")
@id_option
@click.option("-n", "--name", default=None, help="A new name.")
@click.option("-d", "--description", default=None, help="A new description.")
@click.option(
    "-s",
    "--schedule",
    "schedules",
    multiple=True,
    help='A new schedule, e.g. "every hour"; give -s again for several.',
)
@click.option("--pause/--resume", "paused", default=None, help="Stop or restart scheduled runs.")
@click.option(
    "--pause-until",
    "pause_until",
    default=None,
    metavar="WHEN",
    help='Stop scheduled runs until WHEN ("Monday 08:00", "tomorrow 09:00", ISO), in the '
    "job's zone; it resumes by itself.",
)
@port_option
@output_option()
def modify(
    job_id: str,
    name: str | None,
    description: str | None,
    schedules: tuple[str, ...],
    paused: bool | None,
    pause_until: str | None,
    port: str | None,
    fmt: str,
) -> None:
    """Change a job's name, description or schedule, or pause it. Alias: mod.

    \b
    Example: odin modify -i a37b187f5930 -d "check my stocks" -s "everyday at 18:00"
             odin modify -i a37b187f5930 -s "every hour" -s "0 9 * * 1-5"
             odin modify -i a37b187f5930 --pause-until "Monday 08:00"
    """
    schedule = "; ".join(schedules) if schedules else None
    body = {
        "name": name,
        "description": description,
        "schedule": schedule,
        "paused": paused,
        "pause_until": pause_until,
    }
    job = client_for(port).request("PATCH", f"/v1/jobs/{quote_id(job_id)}", body)
    if fmt == "json":
        print_json(job)
        return
    click.echo(f"Modified job {job['id']} ({job['name']}): {job['schedule_text']}")
    if job.get("paused_until"):
        click.echo(f"Paused until {local_time(job['paused_until'])}: it resumes by itself then")


@click.command("remove")
@id_option
@port_option
@output_option()
def remove(job_id: str, port: str | None, fmt: str) -> None:
    """Remove a job; a run in progress is stopped. Alias: rm."""
    result = client_for(port).request("DELETE", f"/v1/jobs/{quote_id(job_id)}")
    if fmt == "json":
        print_json(result)
        return
    click.echo(f"Removed job {result['removed']} ({result['name']})")


@click.command("run")
@id_option
@port_option
@output_option()
def run_now(job_id: str, port: str | None, fmt: str) -> None:
    """Run a job now, whatever its schedule. Alias: exec."""
    result = client_for(port).request("POST", f"/v1/jobs/{quote_id(job_id)}/runs")
    if fmt == "json":
        print_json(result)
        return
    click.echo(f"Started run {result['run']}; see it with: odin log -i {result['job']}")


@click.command("link")
@click.option(
    "-f", "--from", "source", required=True, metavar="ID", help="The job that runs first."
)
@click.option(
    "-t", "--to", "target", required=True, metavar="ID", help="The job that runs after it."
)
@click.option(
    "--on",
    "on",
    type=click.Choice(["success", "failure", "always"]),
    default="success",
    show_default=True,
    help="Which outcome of the first job starts the second.",
)
@port_option
@output_option()
def link(source: str, target: str, on: str, port: str | None, fmt: str) -> None:
    """Run job TO after job FROM finishes (on success, by default)."""
    body = {"source": source, "target": target, "on": on}
    result = client_for(port).request("POST", "/v1/links", body)
    if fmt == "json":
        print_json(result)
        return
    click.echo(f"Linked {source} -> {target} (on {result['on']})")


@click.command("unlink")
@click.option(
    "-f", "--from", "source", required=True, metavar="ID", help="The job that runs first."
)
@click.option("-t", "--to", "target", required=True, metavar="ID", help="The job linked to it.")
@port_option
@output_option()
def unlink(source: str, target: str, port: str | None, fmt: str) -> None:
    """Remove the link from job FROM to job TO."""
    query = {"source": source, "target": target}
    result = client_for(port).request("DELETE", "/v1/links", query=query)
    if fmt == "json":
        print_json(result)
        return
    click.echo(f"Unlinked {source} -> {target}")


def _write_new(directory: int, path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path.name`` in ``directory`` (a descriptor); with force replace it
    (a planted symlink is replaced, not followed)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    if not force:
        try:
            fd = os.open(path.name, flags, 0o644, dir_fd=directory)
        except OSError as error:
            raise Conflict(f"cannot write {path}: {error.strerror or error}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    import secrets  # here: only recover needs it, and every CLI start would pay for it

    temp = f".{path.name}.{secrets.token_hex(8)}.odin-tmp"
    try:
        fd = os.open(temp, flags, 0o644, dir_fd=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path.name, src_dir_fd=directory, dst_dir_fd=directory)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=directory)
        raise Conflict(f"cannot write {path}: {error.strerror or error}") from None


def _exists_in(directory: int, path: Path) -> bool:
    """Whether ``path.name`` (a file, a symlink, anything) is in ``directory`` (a descriptor)."""
    try:
        os.stat(path.name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise Conflict(f"cannot write {path}: {error.strerror or error}") from None
    return True


def _write_all(directory: Path, targets: list[tuple[Path, str]], force: bool) -> None:
    """Write each target into ``directory``, reached without following others' symlinks."""
    from odin.cli.safepath import open_directory

    fd = open_directory(directory)
    try:
        clash = [str(p) for p, _ in targets if _exists_in(fd, p)]
        if clash and not force:
            raise Conflict(f"{', '.join(clash)} already exist(s); use --force to overwrite")
        for path, text in targets:
            _write_new(fd, path, text, force)
    finally:
        os.close(fd)


@click.command("recover")
@id_option
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@click.option(
    "-d",
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Where to write the files. A symlink on the way is followed only if you or root own it.",
)
@port_option
@output_option()
def recover(job_id: str, force: bool, directory: Path, port: str | None, fmt: str) -> None:
    """Write a job's stored YAML and code into the current directory (or --dir).

    Existing files are kept unless --force, which replaces them (a symlink in their
    place is replaced, not written through). The directory is reached one step at a
    time: a symlink on the way that someone other than you or root owns is refused.
    """
    files = client_for(port).request("GET", f"/v1/jobs/{quote_id(job_id)}/files")
    targets = []
    for name, text in ((files["yaml_name"], files["yaml"]), (files["file"], files["code"])):
        if "/" in name or name in ("", ".", "..") or "\0" in name:
            raise InvalidInput(f"the engine sent an unsafe file name {name!r}")
        targets.append((directory / name, text))
    _write_all(directory, targets, force)
    if fmt == "json":
        print_json({"written": [str(p) for p, _ in targets]})
        return
    click.echo("Recovered " + " and ".join(str(p) for p, _ in targets))
