"""The CLI on another host: the engine's token API over HTTPS (``ODIN_URL`` and ``ODIN_TOKEN``).

``odin`` sends the same requests as over the socket, to ``<ODIN_URL>/api/v1/...`` with
``Authorization: Bearer <ODIN_TOKEN>``. ``ODIN_URL`` must be ``https://``, except to this
host's loopback (``http://127.0.0.1:4200``, ``http://localhost:4200``): a token sent in clear
over a network is a token given away. The server's certificate is checked against the
system's authorities, or against ``ODIN_CA_FILE`` when set (a private CA or a self-signed
certificate).
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from odin.cli.client import TIMEOUT_S, EngineClient
from odin.errors import InvalidInput, OdinError, Unavailable

DOCS = "see docs/api.md#tokens"


def is_loopback_host(host: str) -> bool:
    """Whether a URL's host is this machine's loopback (by name or address)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _TokenConnection(http.client.HTTPConnection):
    """Plain HTTP (loopback only): every request gets the prefix and the token."""

    prefix = ""
    token = ""

    def putrequest(
        self,
        method: str,
        url: str,
        skip_host: bool = False,
        skip_accept_encoding: bool = False,
    ) -> None:
        super().putrequest(method, self.prefix + url, skip_host, skip_accept_encoding)
        self.putheader("Authorization", f"Bearer {self.token}")


class _TokenHTTPSConnection(_TokenConnection, http.client.HTTPSConnection):
    """HTTPS: the same, over TLS."""


class RemoteClient(EngineClient):
    """Calls an engine's token API at ``url``; failures are ``OdinError`` as on the socket."""

    def __init__(self, url: str, token: str, timeout: float = TIMEOUT_S) -> None:
        parts = urlsplit(url)
        super().__init__(Path(), timeout)  # no socket: every connection goes to ``url``
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.prefix = parts.path.rstrip("/") + "/api"
        self.token = token
        self.context = _tls_context() if self.https else None

    def _connection(self) -> http.client.HTTPConnection:
        conn: _TokenConnection | _TokenHTTPSConnection
        if self.https:
            conn = _TokenHTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.context
            )
        else:
            conn = _TokenConnection(self.host, self.port, timeout=self.timeout)
        conn.prefix, conn.token = self.prefix, self.token
        return conn

    def _unreachable(self, error: OSError) -> OdinError:
        if isinstance(error, ssl.SSLCertVerificationError):
            return Unavailable(
                f"the certificate of {self.url} is not trusted ({error.verify_message}): "
                "fix the server's certificate, or point ODIN_CA_FILE at the CA that signed it"
            )
        return Unavailable(f"no Odin engine is answering at {self.url} ({error})")


def remote_client(url: str, token: str | None) -> RemoteClient:
    """The client for ``ODIN_URL``, refusing a plain-HTTP URL to another host or no token."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(
            f"ODIN_URL must be https://HOST[:PORT] (the dashboard's address); {DOCS}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInput(
            f"ODIN_URL takes no user, query or fragment: https://HOST[:PORT]; {DOCS}"
        )
    try:
        parts.port  # noqa: B018 - it raises on a bad port
    except ValueError:
        raise InvalidInput(f"ODIN_URL has a bad port; {DOCS}") from None
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise InvalidInput(
            f"ODIN_URL {parts.scheme}://{parts.netloc} is plain HTTP to another host: the "
            f"token would cross the network in clear. Use https:// ({DOCS})"
        )
    token = (token or "").strip()
    if not token:
        raise InvalidInput(
            "ODIN_URL is set but ODIN_TOKEN is not: make a token on a node's host with "
            f"odin token create, then export ODIN_TOKEN=...; {DOCS}"
        )
    return RemoteClient(url.strip(), token)


def _tls_context() -> ssl.SSLContext:
    """The system's authorities, or ``ODIN_CA_FILE``'s; certificates and names are checked."""
    ca_file = os.environ.get("ODIN_CA_FILE") or None
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise InvalidInput(f"ODIN_CA_FILE {ca_file}: {error}") from None
