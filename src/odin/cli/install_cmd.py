"""``odin install`` and ``odin uninstall``: set up (or remove) Odin on this host."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from odin.errors import PermissionDenied
from odin.install.layout import Layout
from odin.install.plan import Plan, Programs, execute, install_plan, uninstall_plan

ROOT_OPTION_HELP = "Install under DIR instead of / (a fake root for tests and packaging)."


def _require_root(command: str, dry_run: bool) -> None:
    if dry_run or os.geteuid() == 0:
        return
    raise PermissionDenied(
        f"odin {command} changes system files and must run as root: sudo odin {command} "
        "(or --dry-run to see what it would do)"
    )


def _program(name: str, given: Path | None) -> Path:
    """The installed executable: as given, beside this Python, or on PATH."""
    if given is not None:
        return given.absolute()
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside.absolute()
    found = shutil.which(name)
    return Path(found).absolute() if found else beside.absolute()


def completion_sources() -> dict[str, str]:
    """click's completion scripts for ``odin`` (what ``_ODIN_COMPLETE=bash_source odin`` prints)."""
    from click.shell_completion import get_completion_class

    from odin.cli.main import cli

    sources: dict[str, str] = {}
    for shell in ("bash", "zsh", "fish"):
        completion = get_completion_class(shell)
        assert completion is not None
        sources[shell] = completion(cli, {}, "odin", "_ODIN_COMPLETE").source()
    return sources


def _report(plan: Plan, dry_run: bool) -> None:
    for step in execute(plan, dry_run):
        click.echo(f"{step.outcome:>5}  {step.description}")
    for note in plan.notes:
        click.echo(f"note: {note}")


def _root_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--root",
        "--prefix",
        "root",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("/"),
        show_default=True,
        help=ROOT_OPTION_HELP,
    )(func)


@click.command("install")
@_root_option
@click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing.")
@click.option(
    "--engine",
    "engine",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The odin-engine executable the unit runs [default: the one beside this odin].",
)
@click.option(
    "--no-start",
    is_flag=True,
    help="Enable the unit but do not start it (a host that will join a cluster).",
)
def install(root: Path, dry_run: bool, engine: Path | None, no_start: bool) -> None:
    """Set up this host: group odin, /var/lib/odin, the cluster secret, the systemd unit
    odin-engine.service (enabled and started when systemd runs), shell completion and
    links in /usr/local/bin. Safe to run again, e.g. after an upgrade.
    """
    _require_root("install", dry_run)
    programs = Programs(engine=_program("odin-engine", engine), odin=_program("odin", None))
    plan = install_plan(Layout(root), programs, completion_sources(), start=not no_start)
    _report(plan, dry_run)


@click.command("uninstall")
@_root_option
@click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing.")
@click.option(
    "--purge",
    is_flag=True,
    help="Also delete /var/lib/odin (every job and run), /etc/default/odin and group odin.",
)
def uninstall(root: Path, dry_run: bool, purge: bool) -> None:
    """Stop and remove the engine's unit, completions and links; keep the data unless --purge."""
    _require_root("uninstall", dry_run)
    _report(uninstall_plan(Layout(root), purge), dry_run)
