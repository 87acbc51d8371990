"""The composition root of ``odin-engine`` (filled in by the engine issue)."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run an Odin engine node."""
