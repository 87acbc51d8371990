"""Shared output helpers: tables, JSON, and one-line errors."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_OPTION_HELP = "Output format: a table for people, or json for programs."


def output_option() -> Callable[[F], F]:
    """The ``-o/--output`` option shared by every command that prints data."""
    option: Callable[[F], F] = click.option(
        "-o",
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help=OUTPUT_OPTION_HELP,
    )
    return option


def print_json(value: Any) -> None:
    import orjson  # only here: the table path need not load it

    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    click.echo(orjson.dumps(value, default=str, option=options).decode())


RICH_MAX_ROWS = 1000
"""Above this many rows (or when not writing to a terminal) tables are laid out by hand: rich
takes about a millisecond a row, and `odin list` must stay quick with 100,000 jobs."""


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
) -> None:
    """Print rows with rich on a terminal; as plain aligned columns in pipes and for long tables."""
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    if sys.stdout.isatty() and len(cells) <= RICH_MAX_ROWS:
        _rich_table(columns, cells, title)
        return
    # Column by column and through one format string: the per-cell work stays in C.
    widths = [len(heading) for heading in columns]
    if cells:
        by_column = zip(widths, zip(*cells, strict=True), strict=True)
        widths = [max(width, *map(len, column)) for width, column in by_column]
    line = "  ".join(f"{{:<{width}}}" for width in widths).format
    lines = [title] if title else []
    lines.extend(line(*row).rstrip() for row in [list(columns), *cells])
    sys.stdout.write("\n".join(lines) + "\n")


def _rich_table(columns: Sequence[str], cells: list[list[str]], title: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*row)
    Console().print(table)


@contextlib.contextmanager
def progress(message: str, *, fmt: str = "table") -> Iterator[None]:
    """Show a spinner with ``message`` on stderr while the block runs, on a terminal only.

    Nothing is shown with ``-o json`` or when stderr is not a terminal (a pipe, a file,
    a dumb terminal), so scripts and logs never see it; the spinner is erased when done.
    """
    if fmt == "json" or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console  # only here: a command without a spinner need not load it
    from rich.text import Text  # plain text: a '[' in a file name is no markup

    with Console(stderr=True).status(Text(message)):
        yield


def print_error(message: str, *, fmt: str = "table") -> None:
    """One clear line on stderr (or a JSON object on stdout with ``-o json``)."""
    if fmt == "json":
        click.echo(json.dumps({"error": message}))
    else:
        click.echo(f"Error: {message}", err=True)


def fail(message: str, code: int, *, fmt: str = "table") -> None:
    print_error(message, fmt=fmt)
    sys.exit(code)
