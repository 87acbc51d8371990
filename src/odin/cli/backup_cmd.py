"""``odin backup`` and ``odin restore``: save and bring back the cluster's jobs and links.

Both are root only (the engine checks): a backup holds every user's code, so
the file is written 0600 and replaced atomically (a scheduled backup never
leaves half a file behind).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from odin import config
from odin.cli.common import client_for, port_option
from odin.cli.output import output_option, print_json, progress
from odin.errors import InvalidInput, LimitExceeded
from odin.jobs._text import show

FILE_HELP = "The backup file ('-' for standard output)."


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a 0600 file, through a temporary file and a rename."""
    partial = path.with_name(f".{path.name}.partial")
    if partial.exists() or partial.is_symlink():
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)


def _summary(document: dict[str, Any]) -> str:
    state = document.get("state", {})
    jobs = len(state.get("jobs", []))
    links = sum(len(targets) for targets in state.get("links", {}).values())
    runs = len(state.get("runs", []))
    return f"{jobs} job(s), {links} link(s) and {runs} recent run(s) from node {document['node']}"


@click.command("backup")
@click.option(
    "-f", "--file", "path", required=True, type=click.Path(path_type=Path), help=FILE_HELP
)
@port_option
def backup(path: Path, port: str | None) -> None:
    """Save every job (with its code), link and recent run to FILE (root only).

    \b
    The file is JSON, mode 0600: it holds every user's code. Restore it with:
      odin restore -f FILE
    """
    with progress("Taking a snapshot of every job..."):
        document = client_for(port).request("GET", "/v1/admin/snapshot")
        data = json.dumps(document, separators=(",", ":")).encode() + b"\n"
    if str(path) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        click.echo(f"backed up {_summary(document)}", err=True)
        return
    try:
        with progress(f"Writing {show(str(path))}..."):
            write_private(path, data)
    except OSError as error:
        raise InvalidInput(f"cannot write {path}: {error.strerror or error}") from None
    click.echo(f"backed up {_summary(document)} to {path} ({len(data)} bytes)")


def _read_backup(path: Path) -> Any:
    source = sys.stdin.buffer if str(path) == "-" else path.open("rb")
    with source as handle:
        data = handle.read(config.MAX_BACKUP_BYTES + 1)
    if len(data) > config.MAX_BACKUP_BYTES:
        raise LimitExceeded(f"{path} is over the limit of {config.MAX_BACKUP_BYTES} bytes")
    try:
        return json.loads(data)
    except ValueError:
        raise InvalidInput(
            f"{path} is not an Odin backup (not JSON); make one with: odin backup -f FILE"
        ) from None


@click.command("restore")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help=FILE_HELP.replace("standard output", "standard input"),
)
@click.option(
    "--map-owner",
    "map_owner",
    multiple=True,
    metavar="OLDNAME=NEWNAME",
    help="Give the backup's jobs of user OLDNAME to this host's user NEWNAME (their uid "
    "and gid). Repeatable. Needed when an owner's uid belongs to someone else here, or "
    "their name has another uid here.",
)
@port_option
@output_option()
def restore(path: Path, map_owner: tuple[str, ...], port: str | None, fmt: str) -> None:
    """Re-create the jobs and links of a backup made with 'odin backup' (root only).

    Jobs keep their ids and owners. Owners are matched by uid and name: if the
    backup's uid of an owner is another user on this host, or their name has
    another uid here, nothing is restored and the error lists each such owner;
    say whose the jobs become with --map-owner OLDNAME=NEWNAME (alice=alice keeps
    the name and takes its uid here). Jobs and links already present and identical
    are left alone, so restoring the same file twice changes nothing. Runs are
    not restored: restored jobs resume from now, like a fresh deploy.

    \b
    Example: odin restore -f odin.backup --map-owner alice=alice --map-owner bob=robert
    """
    try:
        document = _read_backup(path)
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}") from None
    query = {"map_owner": list(map_owner)}
    with progress(f"Restoring the jobs and links of {show(str(path))}...", fmt=fmt):
        result = client_for(port).request("POST", "/v1/admin/restore", body=document, query=query)
    if fmt == "json":
        print_json(result)
        return
    for old, new in result.get("owners_mapped", {}).items():
        click.echo(f"jobs of {old} restored as {new}'s")
    click.echo(
        f"restored {result['jobs_restored']} job(s) ({result['jobs_unchanged']} already there) "
        f"and {result['links_restored']} link(s) ({result['links_unchanged']} already there)"
    )
    if result["missing_owners"]:
        owners = ", ".join(result["missing_owners"])
        click.echo(f"warning: no account here for {owners}: their jobs cannot run until it exists")
