"""``odin nodes``: list, add and remove the engine's cluster nodes."""

from __future__ import annotations

import datetime as dt

import click

from odin.cli.client import quote_id
from odin.cli.common import client_for, port_option, seconds
from odin.cli.output import output_option, print_json, print_table, progress
from odin.jobs._text import show


@click.group("nodes")
def nodes() -> None:
    """Show and manage the engine's cluster nodes.

    \b
    A cluster of 3 nodes survives the loss of 1; a cluster of 5, the loss of 2:
      odin nodes add -n worker1 -a :39391 -r :12001
      odin nodes add -n worker2 -a :39392 -r :12002
      odin nodes get
    """


def _seen(value: float | None) -> str:
    if value is None:
        return "never"
    return dt.datetime.fromtimestamp(value).strftime("%H:%M:%S")


@nodes.command("get")
@port_option
@output_option()
def get(port: str | None, fmt: str) -> None:
    """List the nodes: name, addresses, role, health, start lease, runs now, launch queue.

    LEASE: held (it may start its runs), lost (this node: no quorum, it starts nothing),
    expiring or expired (silent as the leader sees it: expired nodes' runs move elsewhere),
    - (asked of a follower about another node). WAITING: runs due there that have not
    started yet (a burst waiting for launch slots); BEHIND: how long the oldest has waited."""
    members = client_for(port).request("GET", "/v1/nodes")
    if fmt == "json":
        print_json(members)
        return
    columns = ["NAME", "HTTP", "RAFT", "ROLE", "STATUS", "LEASE", "RUNNING", "WAITING", "BEHIND"]
    columns.append("LAST SEEN")
    rows = [
        [
            m["name"],
            m["http"],
            m["raft"],
            m["role"],
            m["status"],
            m.get("lease", "-"),
            m["running"],
            m.get("waiting", 0),
            seconds(m.get("behind") or None),
            _seen(m["last_seen"]),
        ]
        for m in members
    ]
    print_table(columns, rows)


@nodes.command("add")
@click.option("-n", "--name", required=True, help="The new node's name, e.g. worker1.")
@click.option(
    "-a",
    "--address",
    "http",
    required=True,
    help="Its HTTP address. ':PORT' starts a new engine on this host; 'HOST:PORT' adds an "
    "engine already started there with --join.",
)
@click.option(
    "-r", "--raft", "raft", required=True, help="Its Raft address (':PORT' or 'HOST:PORT')."
)
@port_option
@output_option()
def add(name: str, http: str, raft: str, port: str | None, fmt: str) -> None:
    """Add a node to the cluster and wait until it has caught up (root only)."""
    body = {"name": name, "http": http, "raft": raft}
    with progress(f"Adding {show(name)} and waiting for it to catch up...", fmt=fmt):
        result = client_for(port).request("POST", "/v1/nodes", body)
    if fmt == "json":
        print_json(result)
        return
    node = result["node"]
    how = "started and joined" if result["started"] else "joined"
    click.echo(f"Node {node['name']} {how} the cluster (http {node['http']}, raft {node['raft']})")


@nodes.command("remove")
@click.option("-n", "--name", required=True, help="The node to remove.")
@port_option
@output_option()
def remove(name: str, port: str | None, fmt: str) -> None:
    """Remove a node from the cluster and stop it (root only).

    A leader is stopped first, so that the others elect a new one.
    """
    with progress(f"Removing node {show(name)}...", fmt=fmt):
        result = client_for(port).request("DELETE", f"/v1/nodes/{quote_id(name)}")
    if fmt == "json":
        print_json(result)
        return
    click.echo(f"Removed node {result['removed']}")
