"""``odin dashboard``: a one-time login link for the web dashboard, minted for the caller.

The engine learns who asks from the Unix socket (SO_PEERCRED), so the link logs
the browser in as exactly that user. It works once, within a minute, and the
page it opens asks to confirm (following a link alone logs no one in).
"""

from __future__ import annotations

import os
import webbrowser

import click

from odin.cli.common import client_for, port_option
from odin.errors import OdinError, Unavailable


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@click.command("dashboard")
@port_option
@click.option("--no-open", is_flag=True, help="Only print the link; do not start a browser.")
def dashboard(port: str | None, no_open: bool) -> None:
    """Open the web dashboard with a one-time login link (valid once, for a minute)."""
    try:
        answer = client_for(port).request("POST", "/v1/dashboard/link")
    except OdinError as error:
        if type(error) is OdinError:  # an answer that is not one of Odin's errors: no such route
            raise Unavailable(
                f"this engine does not serve the dashboard ({error}); "
                "was it started with --no-dashboard?"
            ) from None
        raise
    url = str(answer["url"])
    seconds = int(answer.get("expires_in", 60))
    click.echo(url)
    click.echo(
        f"This link logs you in once, within {seconds} s: the page asks you to confirm.", err=True
    )
    if not no_open and _has_display():
        webbrowser.open(url)
