"""Log in with an OpenID Connect provider (Google or any other), through Authlib.

Authlib keeps the state, nonce and PKCE verifier in the signed session cookie,
and verifies the ID token (signature against the provider's keys, issuer,
audience, expiry, nonce) before we read a claim. Only a verified e-mail that
the settings map to a Linux user gets in, and that user must still be root or
a member of group ``odin``.
"""

from __future__ import annotations

import pwd
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from odin.dashboard.settings import OidcSettings
from odin.engine.identity import Caller, caller_from_uid
from odin.errors import PermissionDenied, Unavailable

CLIENT_NAME = "odin"


class OidcLogin:
    """The provider's client, made once; ``start`` redirects, ``finish`` returns the caller."""

    def __init__(self, settings: OidcSettings, redirect_uri: str) -> None:
        from authlib.integrations.starlette_client import OAuth  # type: ignore[import-untyped]

        self.settings = settings
        self.redirect_uri = redirect_uri
        self._oauth: Any = OAuth()
        self._oauth.register(
            CLIENT_NAME,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            server_metadata_url=settings.metadata_url,
            client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
        )

    @property
    def _client(self) -> Any:
        return self._oauth.create_client(CLIENT_NAME)

    async def start(self, request: Request) -> Response:
        try:
            response: Response = await self._client.authorize_redirect(request, self.redirect_uri)
        except Exception as error:  # network or metadata problems, whatever raised them
            raise Unavailable(f"{self.settings.name} cannot be reached: {error}") from None
        return response

    async def finish(self, request: Request) -> Caller:
        from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]

        try:
            token = await self._client.authorize_access_token(request)
        except OAuthError as error:
            raise PermissionDenied(f"{self.settings.name} refused the login: {error}") from None
        return self._caller(dict(token.get("userinfo") or {}))

    def _caller(self, claims: dict[str, Any]) -> Caller:
        email = str(claims.get("email") or "").lower()
        if not email or claims.get("email_verified") is not True:
            raise PermissionDenied(f"{self.settings.name} did not vouch for an e-mail address")
        user = self.settings.users.get(email)
        if user is None:
            raise PermissionDenied(
                f"{email} is not mapped to a Linux user: an administrator can add it under "
                "oidc.users in the engine's dashboard.yml"
            )
        try:
            uid = pwd.getpwnam(user).pw_uid
        except KeyError:
            raise PermissionDenied(
                f"{email} is mapped to {user}, who has no account here"
            ) from None
        return caller_from_uid(uid)
