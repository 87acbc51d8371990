"""``odin-engine --config FILE``: the flags' settings in YAML, checked before the engine starts."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from odin.daemon import main
from odin.engine import engine_file


@click.command()
@click.option(
    "--config",
    "config_file",
    is_eager=True,
    expose_value=False,
    callback=engine_file.load_defaults,
    type=click.Path(path_type=Path),
)
@click.option("--smtp", default=None)
@click.option("--launch-slots", type=int, default=64)
def show(smtp: str | None, launch_slots: int) -> None:
    click.echo(f"{smtp} {launch_slots}")


def settings(tmp_path: Path, text: str, mode: int = 0o644) -> Path:
    path = tmp_path / "engine.yml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_the_file_gives_defaults_and_flags_win(tmp_path: Path) -> None:
    path = settings(tmp_path, "smtp: smtp://mail.example.org\nlaunch_slots: 16\n")
    runner = CliRunner()
    assert runner.invoke(show, ["--config", str(path)]).output == "smtp://mail.example.org 16\n"
    flagged = runner.invoke(show, ["--config", str(path), "--launch-slots", "8"])
    assert flagged.output == "smtp://mail.example.org 8\n"


@pytest.mark.parametrize(
    ("text", "mode", "fragment"),
    [
        ("smpt: smtp://x\n", 0o644, "unknown setting 'smpt'"),
        ("- a list\n", 0o644, "expected a mapping"),
        ("smtp: [unclosed\n", 0o644, "not valid YAML"),
        ("smtp: smtp://x\n", 0o666, "may be changed by other users"),
    ],
)
def test_a_bad_file_stops_the_engine_naming_it(
    tmp_path: Path, text: str, mode: int, fragment: str
) -> None:
    path = settings(tmp_path, text, mode)
    result = CliRunner().invoke(main, ["--config", str(path), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2 and fragment in result.output
    assert not (tmp_path / "d").exists()  # nothing was started or made


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.yml")])
    assert result.exit_code == 2 and "nope.yml" in result.output
