"""Options and helpers shared by the commands that talk to an engine."""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from odin.cli.client import EngineClient, socket_path
from odin.errors import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])

PORT_HELP = "The node to talk to, by its HTTP port (:39391, 39391 or host:39391)."


def port_option(func: F) -> F:
    return click.option("-p", "--port", "port", default=None, metavar="PORT", help=PORT_HELP)(func)


def id_option(func: F) -> F:
    return click.option(
        "-i", "--id", "job_id", required=True, metavar="ID", help="The job's id (see odin list)."
    )(func)


def client_for(port: str | None) -> EngineClient:
    """The engine on this host (its socket), or, with ODIN_URL set, a remote one reached over
    HTTPS with the API token in ODIN_TOKEN (``odin.cli.remote``)."""
    url = os.environ.get("ODIN_URL")
    if url:
        from odin.cli.remote import remote_client

        if port:
            raise InvalidInput(
                "--port picks a node on this host, but ODIN_URL is set: unset ODIN_URL "
                "to use this host's engine"
            )
        return remote_client(url, os.environ.get("ODIN_TOKEN"))
    return EngineClient(socket_path(port))


@functools.lru_cache(maxsize=4096)
def local_time(iso: str | None) -> str:
    """An ISO instant as local wall time for tables ('' for none); the rows of a long
    table share few instants, so each is converted once."""
    if not iso:
        return ""
    moment = dt.datetime.fromisoformat(iso).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
