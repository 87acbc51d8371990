"""What ``odin install`` and ``odin uninstall`` do, in order, as lists of actions.

A plan is pure data built from a ``Layout``: the CLI prints it (``--dry-run``)
or runs it. ``execute`` applies only the pending actions, so a second install
reports everything as already in place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from odin import config
from odin.errors import InvalidInput
from odin.install.actions import (
    Action,
    AddGroup,
    DeleteGroup,
    EnsureDir,
    MakeSecret,
    Remove,
    Symlink,
    Systemctl,
    WriteFile,
)
from odin.install.layout import UNIT_NAME, Layout
from odin.install.unit import DEFAULTS, render_unit

# The data directory as the engine prepares it (odin.daemon._prepare_dirs).
DATA_SUBDIRS = {"raft": 0o700, "code": 0o711, "builds": 0o711}
UNSAFE_IN_UNIT = re.compile(r"[\s\"'\\$%;]")  # would need quoting in ExecStart


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Programs:
    """The installed executables the unit and the links point at (host paths)."""

    engine: Path
    odin: Path


def _check_program(path: Path) -> Path:
    if not path.is_absolute():
        raise InvalidInput(f"{path} is not an absolute path")
    if UNSAFE_IN_UNIT.search(str(path)):
        raise InvalidInput(
            f"{path}: install Odin in a directory whose path has no spaces or quotes"
        )
    return path


def _links(layout: Layout, programs: Programs) -> tuple[list[Action], list[str]]:
    """Links in /usr/local/bin, unless the programs are there already or a real file is."""
    actions: list[Action] = []
    notes: list[str] = []
    for program in (programs.odin, programs.engine):
        link = layout.bin_dir / program.name
        if program.parent == layout.bin_dir:
            continue
        if link.exists() and not link.is_symlink():
            notes.append(f"{link} is a file, not a link: left alone")
            continue
        actions.append(Symlink(link, program))
    return actions, notes


def _systemd_install(
    layout: Layout, programs: Programs, start: bool
) -> tuple[list[Action], list[str]]:
    if layout.systemd_running():
        enable = ("enable", "--now", UNIT_NAME) if start else ("enable", UNIT_NAME)
        later = f"after an upgrade: systemctl restart {UNIT_NAME}"
        if not start:
            later = f"enabled, not started: systemctl start {UNIT_NAME}"
        return [Systemctl(("daemon-reload",)), Systemctl(enable)], [later]
    if not layout.is_host:
        return [], [f"not the host's root: enable later with systemctl enable --now {UNIT_NAME}"]
    return [], [
        "systemd is not running as PID 1 here, so the unit is not enabled. "
        f"On a systemd host run: systemctl daemon-reload && systemctl enable --now {UNIT_NAME}. "
        f"Otherwise start the engine from your init system or by hand: {programs.engine}"
    ]


def install_plan(
    layout: Layout, programs: Programs, completions: Mapping[str, str], *, start: bool = True
) -> Plan:
    """Group, directories, secret, config, unit, completions, links, then systemd.

    ``start=False`` enables the unit without starting it: a host that will join a
    cluster must get the cluster's secret before its engine first runs.
    """
    unit = render_unit(_check_program(programs.engine))
    _check_program(programs.odin)
    actions: list[Action] = [AddGroup(layout.root, config.ODIN_GROUP)]
    actions.append(EnsureDir(layout.data_dir, 0o755))
    actions += [EnsureDir(layout.data_dir / d, m) for d, m in DATA_SUBDIRS.items()]
    actions.append(MakeSecret(layout.secret))
    actions.append(EnsureDir(layout.run_dir, 0o755))
    actions.append(WriteFile(layout.defaults, DEFAULTS, replace=False))
    actions.append(WriteFile(layout.unit, unit))
    for shell, path in layout.completion_files().items():
        actions.append(WriteFile(path, completions[shell]))
    links, notes = _links(layout, programs)
    systemd, systemd_notes = _systemd_install(layout, programs, start)
    return Plan(tuple(actions + links + systemd), tuple(notes + systemd_notes))


def uninstall_plan(layout: Layout, purge: bool) -> Plan:
    """The reverse of ``install_plan``; data, config and the group only with ``purge``."""
    actions: list[Action] = []
    notes: list[str] = []
    if layout.systemd_running() and layout.unit.exists():
        actions.append(Systemctl(("disable", "--now", UNIT_NAME)))
    elif layout.is_host:
        notes.append("if an engine is running outside systemd, stop it (SIGTERM)")
    actions.append(Remove(layout.unit))
    if layout.systemd_running():
        actions.append(Systemctl(("daemon-reload",)))
    actions += [Remove(path) for path in layout.all_completion_files()]
    actions += [Remove(layout.bin_dir / n, only_links=True) for n in ("odin", "odin-engine")]
    actions.append(Remove(layout.run_dir, tree=True))
    if purge:
        actions.append(Remove(layout.data_dir, tree=True))
        actions.append(Remove(layout.defaults))
        actions.append(DeleteGroup(layout.root, config.ODIN_GROUP))
    else:
        notes.append(
            f"kept {layout.data_dir} (jobs, run history, cluster secret), {layout.defaults} "
            f"and group {config.ODIN_GROUP}: odin uninstall --purge removes them"
        )
    return Plan(tuple(actions), tuple(notes))


@dataclass(frozen=True)
class Step:
    """What happened to one action: ``done``, ``ok`` (already so) or ``would``."""

    outcome: str
    description: str


def execute(plan: Plan, dry_run: bool) -> list[Step]:
    """Apply the pending actions in order; the first failure stops the plan."""
    steps: list[Step] = []
    for action in plan.actions:
        if not action.pending():
            steps.append(Step("ok", action.describe()))
            continue
        if not dry_run:
            action.apply()
        steps.append(Step("would" if dry_run else "done", action.describe()))
    return steps
