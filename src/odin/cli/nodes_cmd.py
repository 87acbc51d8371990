"""``odin nodes``: the engine's cluster members."""

from __future__ import annotations

import click

from odin.cli.common import client_for, port_option
from odin.cli.output import output_option, print_json, print_table


@click.group("nodes")
def nodes() -> None:
    """Show and manage the engine's cluster nodes."""


@nodes.command("get")
@port_option
@output_option()
def get(port: str | None, fmt: str) -> None:
    """List the nodes of the cluster with their role and health."""
    members = client_for(port).request("GET", "/v1/nodes")
    if fmt == "json":
        print_json(members)
        return
    columns = ["NAME", "HTTP", "RAFT", "ROLE", "STATUS", "RUNNING"]
    print_table(
        columns,
        [[m["name"], m["http"], m["raft"], m["role"], m["status"], m["running"]] for m in members],
    )
