"""How the dashboard is configured: its public URL, session lifetime and optional OIDC.

Settings come from ``<data_dir>/dashboard.yml`` (optional) and then from
environment variables, which win. The file may hold an OIDC client secret, so
it must not be readable by group or others: the engine refuses to start if it is.

    public_url: https://odin.example.com      # what links and OIDC redirects use
    session_ttl: 43200                        # seconds a login lasts
    tls_cert: /etc/odin/tls/cert.pem          # serve HTTPS itself (both, or neither)
    tls_key: /etc/odin/tls/key.pem            # must be private (mode 600)
    oidc:
      name: Google                            # the button says "Log in with Google"
      issuer: https://accounts.google.com
      client_id: 1234.apps.googleusercontent.com
      client_secret: GOCSPX-...
      users:                                  # verified e-mail -> Linux user
        alice@example.com: alice
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from odin import config
from odin.errors import InvalidInput

SETTINGS_FILE = "dashboard.yml"


@dataclass(frozen=True)
class OidcSettings:
    """One OpenID Connect provider; ``users`` maps a verified e-mail to a Linux user name."""

    issuer: str
    client_id: str
    client_secret: str
    name: str = "Google"
    users: Mapping[str, str] = field(default_factory=dict)

    @property
    def metadata_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class DashboardSettings:
    public_url: str = f"http://localhost:{config.DEFAULT_DASHBOARD_PORT}"
    session_ttl_s: float = config.DASHBOARD_SESSION_TTL_S
    pam_service: str = "login"
    oidc: OidcSettings | None = None
    tls_cert: str | None = None  # the dashboard serves HTTPS itself with this certificate
    tls_key: str | None = None  # and this key

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` when the dashboard is reached over HTTPS."""
        return self.public_url.startswith("https://")

    @property
    def behind_tls(self) -> bool:
        """Whether clients reach the dashboard over TLS: its own, or a proxy's (an https
        ``public_url``); then API tokens are taken from any address (``odin.api.token_api``)."""
        return self.tls_cert is not None or self.public_url.startswith("https://")

    def url(self, path: str) -> str:
        return self.public_url.rstrip("/") + path

    @classmethod
    def from_env_and_args(
        cls,
        *,
        data_dir: Path,
        address: tuple[str, int] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> DashboardSettings:
        """Settings for an engine serving the dashboard on ``address`` (host, port)."""
        env = os.environ if env is None else env
        raw = _read_file(data_dir / SETTINGS_FILE)
        cert, key = _tls(raw, env)
        default_url = cls.public_url
        if address is not None:
            host = "localhost" if address[0] in ("127.0.0.1", "0.0.0.0", "") else address[0]
            default_url = f"{'https' if cert else 'http'}://{host}:{address[1]}"
        public_url = env.get("ODIN_DASHBOARD_URL") or str(raw.get("public_url") or default_url)
        ttl = float(
            env.get("ODIN_DASHBOARD_SESSION_TTL") or raw.get("session_ttl") or cls.session_ttl_s
        )
        if ttl <= 0:
            raise InvalidInput("dashboard session_ttl must be a positive number of seconds")
        return cls(
            public_url=public_url.rstrip("/"),
            session_ttl_s=ttl,
            pam_service=str(raw.get("pam_service") or cls.pam_service),
            oidc=_oidc(dict(raw.get("oidc") or {}), env),
            tls_cert=cert,
            tls_key=key,
        )


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    if path.stat().st_mode & 0o077:
        raise InvalidInput(f"{path} may hold secrets: make it private with chmod 600 {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a mapping of settings")
    return data


def _tls(raw: dict[str, Any], env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The dashboard's own certificate and key files, if it serves HTTPS; the key must be
    readable by its owner only."""
    cert = env.get("ODIN_DASHBOARD_TLS_CERT") or raw.get("tls_cert")
    key = env.get("ODIN_DASHBOARD_TLS_KEY") or raw.get("tls_key")
    if not (cert or key):
        return None, None
    if not (cert and key):
        raise InvalidInput("dashboard TLS needs both tls_cert and tls_key")
    for path, what in ((Path(str(cert)), "tls_cert"), (Path(str(key)), "tls_key")):
        if not path.is_file():
            raise InvalidInput(f"dashboard {what}: {path} is not a file")
    if Path(str(key)).stat().st_mode & 0o077:
        raise InvalidInput(f"dashboard tls_key {key} is readable by others: chmod 600 {key}")
    return str(cert), str(key)


def _oidc(raw: dict[str, Any], env: Mapping[str, str]) -> OidcSettings | None:
    issuer = env.get("ODIN_OIDC_ISSUER") or raw.get("issuer")
    client_id = env.get("ODIN_OIDC_CLIENT_ID") or raw.get("client_id")
    secret = env.get("ODIN_OIDC_CLIENT_SECRET") or raw.get("client_secret")
    if not (issuer or client_id or secret):
        return None
    if not (issuer and client_id and secret):
        raise InvalidInput("OIDC needs all of issuer, client_id and client_secret")
    users = dict(raw.get("users") or {})
    users.update(_pairs(env.get("ODIN_OIDC_USERS", "")))
    return OidcSettings(
        issuer=str(issuer),
        client_id=str(client_id),
        client_secret=str(secret),
        name=str(env.get("ODIN_OIDC_NAME") or raw.get("name") or "Google"),
        users={str(k).lower(): str(v) for k, v in users.items()},
    )


def _pairs(text: str) -> dict[str, str]:
    """``a@x=alice,b@y=bob`` → mapping (the environment form of ``oidc.users``)."""
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs}
