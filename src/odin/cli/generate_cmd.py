"""``odin generate`` (alias ``gen``): start a new job from a template."""

from __future__ import annotations

from pathlib import Path

import click

from odin.jobs.language import accepted_languages


@click.command("generate")
@click.option(
    "-f",
    "--file",
    "yaml_file",
    required=True,
    metavar="NAME.yml",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The job's new YAML file (.yml or .yaml); NAME also names the code file.",
)
@click.option(
    "-l",
    "--language",
    required=True,
    metavar="LANGUAGE",
    help=f"The job's language: {accepted_languages()}.",
)
def generate(yaml_file: Path, language: str) -> None:
    """Create a job's YAML file and, beside it, a small job that uses the SDK.

    \b
    Examples:
      odin generate -f amzn_stocks.yml -l python   # amzn_stocks.yml + amzn_stocks.py
      odin generate -f jobs/backup.yml -l go       # jobs/backup.yml + jobs/backup.go

    The code file is a commented example (watch, condition, result) that deploys
    and runs as written: replace it with your own work. Existing files are never
    overwritten.
    """
    from odin.jobs.generate import generate as write_files

    yaml_path, code_path = write_files(yaml_file, language)
    click.echo(f"Created {yaml_path} and {code_path}.")
    click.echo(f"Next: fill in name, description and schedule in {yaml_path},")
    click.echo(f"replace the example job in {code_path} with your code, then run:")
    click.echo(f"  odin deploy -f {yaml_path}")
