"""``odin token``: make, list and revoke API tokens for using Odin from another machine."""

from __future__ import annotations

from typing import Any

import click

from odin.cli.client import quote_id
from odin.cli.common import client_for, local_time, port_option
from odin.cli.output import output_option, print_json, print_table
from odin.cluster.tokens import TokenScope
from odin.config import TOKEN_DEFAULT_EXPIRY_S
from odin.jobs.durations import format_duration, parse_duration

SCOPE_HELP = (
    "What it may do with your jobs, comma-separated: read (list, describe, log, stats, "
    "alerts), deploy (deploy, apply, modify, remove, link, unlink, recover; and read), "
    "run (run now; and read)."
)


@click.group("token")
def token() -> None:
    """Make, list and revoke API tokens: odin from another machine, over HTTPS.

    \b
    A token acts as you, on your own jobs only, within its scopes:
      odin token create --name ci --scope deploy,run --expires 30d
      odin token list
      odin token revoke ID
    \b
    Then, on the other machine (or in CI):
      export ODIN_URL=https://odin.example.com ODIN_TOKEN=odin_...
      odin deploy -f job.yml && odin run -i ID
    """


@token.command("create")
@click.option("-n", "--name", required=True, help="A label for it, such as ci.")
@click.option("-s", "--scope", "scope", required=True, metavar="SCOPES", help=SCOPE_HELP)
@click.option(
    "-e",
    "--expires",
    default=format_duration(TOKEN_DEFAULT_EXPIRY_S),
    show_default=True,
    metavar="DURATION",
    help="When it stops working: 30d, 12h, 90m... (at most 366d), or never.",
)
@port_option
@output_option()
def create(name: str, scope: str, expires: str, port: str | None, fmt: str) -> None:
    """Make a token for your own jobs; it is shown once, and Odin keeps only its hash."""
    scopes = TokenScope.parse(scope)
    expires_in = None if expires.strip().lower() == "never" else parse_duration(expires)
    body = {"name": name, "scopes": [str(s) for s in scopes], "expires_in": expires_in}
    made: dict[str, Any] = client_for(port).request("POST", "/v1/tokens", body)
    if fmt == "json":
        print_json(made)
        return
    until = local_time(made["expires_at"]) if made["expires_at"] else "never"
    click.echo(
        f"Created API token {made['id']} ({made['name']}) for {made['owner']}: "
        f"scopes {', '.join(made['scopes'])}; expires {until}.\n"
    )
    click.echo(f"  {made['token']}\n")
    click.echo(
        "This is the only time it is shown: Odin keeps only its hash. Keep it as a secret\n"
        "(a CI variable, a file of mode 600). To use it from another machine:\n"
    )
    click.echo(f"  export ODIN_URL={_url_hint(made.get('url'))}")
    click.echo("  export ODIN_TOKEN=<the token above>")
    click.echo("  odin list    # then odin deploy, odin run... as on this host\n")
    click.echo(f"Revoke it with: odin token revoke {made['id']}")


def _url_hint(url: str | None) -> str:
    """What to put in ODIN_URL: this node's dashboard address, if it serves one."""
    if not url:
        return "https://<the dashboard address of a node>  (this node serves none)"
    if url.startswith("http://"):
        return f"{url}  (plain HTTP: only from this host; elsewhere, https)"
    return url


@token.command("list")
@port_option
@output_option()
def list_tokens(port: str | None, fmt: str) -> None:
    """List your tokens (root: everyone's); never their secrets."""
    found: list[dict[str, Any]] = client_for(port).request("GET", "/v1/tokens")
    if fmt == "json":
        print_json(found)
        return
    if not found:
        click.echo("No API tokens. Make one with: odin token create --name NAME --scope read")
        return
    rows = [
        (
            t["id"],
            t["name"],
            t["owner"],
            ",".join(t["scopes"]),
            t["state"],
            local_time(t["created_at"]),
            local_time(t["expires_at"]) if t["expires_at"] else "never",
            local_time(t["last_used_at"]) if t["last_used_at"] else "never",
        )
        for t in found
    ]
    columns = ("ID", "NAME", "OWNER", "SCOPES", "STATE", "CREATED", "EXPIRES", "LAST USED")
    print_table(columns, rows)


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@port_option
@output_option()
def revoke(token_id: str, port: str | None, fmt: str) -> None:
    """Revoke a token: every node refuses it from now on."""
    done: dict[str, Any] = client_for(port).request("DELETE", f"/v1/tokens/{quote_id(token_id)}")
    if fmt == "json":
        print_json(done)
        return
    click.echo(
        f"Revoked API token {done['id']} ({done['name']}) of {done['owner']} "
        f"at {local_time(done['revoked_at'])}."
    )
