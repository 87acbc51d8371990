"""The ``odin`` command group: aliases, lazy loading, and the one error boundary.

Commands are imported only when called, so ``odin --help`` and quick commands
start fast. Every ``OdinError`` becomes one line on stderr and the exit code of
``odin.cli.errors``; no traceback reaches a user.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

import click

from odin import __version__
from odin.cli.errors import exit_code_for
from odin.errors import OdinError

# name -> (module, attribute, short help). The help is repeated here so that
# ``odin --help`` does not import every command.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "generate": ("odin.cli.generate_cmd", "generate", "Create a job's YAML and code files."),
    "import": (
        "odin.cli.import_cmd",
        "import_group",
        "Turn a crontab into Odin job files (deploys nothing).",
    ),
    "deploy": ("odin.cli.jobs_cmd", "deploy", "Deploy (or update) a job from its YAML file."),
    "apply": (
        "odin.cli.apply_cmd",
        "apply",
        "Deploy folders of job files as one change, after showing the plan.",
    ),
    "list": ("odin.cli.jobs_cmd", "list_jobs", "List your jobs."),
    "describe": ("odin.cli.jobs_cmd", "describe", "Show everything about a job."),
    "modify": ("odin.cli.jobs_cmd", "modify", "Change a job's name, description or schedule."),
    "remove": ("odin.cli.jobs_cmd", "remove", "Remove a job."),
    "run": ("odin.cli.jobs_cmd", "run_now", "Run a job now."),
    "log": ("odin.cli.runs_cmd", "log", "Show a job's runs and their output."),
    "stats": ("odin.cli.runs_cmd", "stats", "Show the records a job's runs made with the SDK."),
    "alerts": (
        "odin.cli.alerts_cmd",
        "alerts",
        "Show the alerts your jobs sent and how each went.",
    ),
    "notify": ("odin.cli.alerts_cmd", "notify", "Send a test alert to a job's destinations."),
    "link": ("odin.cli.jobs_cmd", "link", "Run one job after another finishes."),
    "unlink": ("odin.cli.jobs_cmd", "unlink", "Remove a link between two jobs."),
    "recover": ("odin.cli.jobs_cmd", "recover", "Write a job's stored YAML and code here."),
    "schedule": ("odin.cli.schedule_cmd", "schedule", "Explain a schedule and list its next runs."),
    "calendar": (
        "odin.cli.calendar_cmd",
        "calendar",
        "Manage named calendars of days your jobs skip (except:).",
    ),
    "nodes": ("odin.cli.nodes_cmd", "nodes", "Show and manage the engine's cluster nodes."),
    "install": (
        "odin.cli.install_cmd",
        "install",
        "Set up this host: group, data dir, systemd unit, completion.",
    ),
    "uninstall": (
        "odin.cli.install_cmd",
        "uninstall",
        "Remove the engine's unit and files; keep data unless --purge.",
    ),
    "backup": ("odin.cli.backup_cmd", "backup", "Save every job, its code and links to a file."),
    "restore": ("odin.cli.backup_cmd", "restore", "Re-create the jobs and links of a backup."),
    "dashboard": (
        "odin.cli.dashboard_cmd",
        "dashboard",
        "Open the web dashboard with a one-time login link.",
    ),
    "token": (
        "odin.cli.token_cmd",
        "token",
        "Make, list and revoke API tokens (odin from another machine).",
    ),
}

ALIASES: dict[str, str] = {
    "gen": "generate",
    "dep": "deploy",
    "add": "deploy",
    "ls": "list",
    "desc": "describe",
    "mod": "modify",
    "rm": "remove",
    "exec": "run",
}


class OdinGroup(click.Group):
    """A group that resolves aliases and imports a command only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        name = ALIASES.get(cmd_name, cmd_name)
        if name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[name]
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        reverse: dict[str, list[str]] = {}
        for alias, name in ALIASES.items():
            reverse.setdefault(name, []).append(alias)
        rows = []
        for name, (_, _, short) in COMMANDS.items():
            aliases = reverse.get(name)
            label = f"{name} ({', '.join(aliases)})" if aliases else name
            rows.append((label, short))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        return (command.name if command else name), command, rest


@click.group(cls=OdinGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="odin")
def cli() -> None:
    """Odin: schedule jobs in plain English and watch them run.

    \b
    Typical use:
      odin generate -f backup.yml -l python   # write backup.yml and backup.py
      odin schedule "every Monday at 09:30"   # check a schedule
      odin deploy -f backup.yml               # hand the job to the engine
      odin apply -f jobs/                     # ... or every job file of a folder at once
      odin list                               # see your jobs
      odin log -i <id>                        # see its runs
      odin alerts -i <id>                     # see the alerts it sent (notify:)

    Run 'odin COMMAND --help' for the flags of a command.
    """


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the group and turn every OdinError into a clean exit."""
    gc.disable()  # a short-lived command: decoding a long list is faster without cycle passes
    try:
        return cli.main(args=argv, prog_name="odin", standalone_mode=False)
    except OdinError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(exit_code_for(error))
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as stop:
        sys.exit(stop.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
