"""The token API's gate, as plain ASGI: plain HTTP from another address is refused before the
token is looked at; HTTPS, loopback and a dashboard behind TLS pass; refused tokens are
throttled per address (429 with Retry-After) without being checked again."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson

from odin import config
from odin.api.token_api import PLAIN_HTTP, TokenGate, is_loopback
from odin.engine.identity import Caller
from odin.engine.tokens import TokenCaller, TokenService
from odin.errors import NotAuthenticated

GOOD = "Bearer good"


class Tokens:
    """A stand-in for ``TokenService.authenticate``: only ``Bearer good`` passes."""

    def __init__(self) -> None:
        self.asked = 0

    async def authenticate(self, authorization: str | None) -> TokenCaller:
        self.asked += 1
        if authorization != GOOD:
            raise NotAuthenticated("unknown API token")
        return TokenCaller(uid=1001, gid=1001, user="alice", home="/home/alice", groups=(1001,))


async def _nothing(scope: Any, receive: Any, send: Any) -> None:
    """The app behind a gate under test (``call`` puts its own in)."""


def call(gate: TokenGate, client: str, *, scheme: str = "http", auth: str = GOOD) -> Any:
    """Send one GET through ``gate``; the status, headers and body it answered with, or
    the caller the app behind it saw."""
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["caller"] = scope["extensions"]["odin.token"]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
            seen["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            seen["body"] = orjson.loads(message["body"])

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/jobs",
        "scheme": scheme,
        "client": (client, 40000),
        "headers": [(b"authorization", auth.encode())] if auth else [],
    }
    gate.app = app
    asyncio.run(gate(scope, receive, send))
    return seen


def test_plain_http_from_another_address_is_refused_before_the_token_is_read() -> None:
    tokens = Tokens()
    gate = TokenGate(_nothing, cast(TokenService, tokens), behind_tls=False)
    answer = call(gate, "192.0.2.9")
    assert answer["status"] == 403 and answer["body"]["error"]["message"] == PLAIN_HTTP
    assert tokens.asked == 0
    for client, scheme in (("192.0.2.9", "https"), ("127.0.0.1", "http"), ("::1", "http")):
        assert isinstance(call(gate, client, scheme=scheme)["caller"], Caller)
    behind = TokenGate(_nothing, cast(TokenService, tokens), behind_tls=True)
    assert isinstance(call(behind, "192.0.2.9")["caller"], TokenCaller)


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.3.2.1") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.0.2.1") and not is_loopback("::ffff:192.0.2.1")
    assert not is_loopback("") and not is_loopback("localhost")


def test_refused_tokens_are_throttled_per_address() -> None:
    tokens = Tokens()
    gate = TokenGate(_nothing, cast(TokenService, tokens), behind_tls=True)
    for _ in range(config.TOKEN_FAILURES_PER_ADDRESS):
        answer = call(gate, "192.0.2.9", auth="Bearer wrong")
        assert answer["status"] == 401
        assert answer["headers"]["www-authenticate"] == 'Bearer realm="odin"'
    asked = tokens.asked
    answer = call(gate, "192.0.2.9")  # even a good token, until the window has passed
    assert answer["status"] == 429 and int(answer["headers"]["retry-after"]) > 0
    assert answer["body"]["error"]["type"] == "LimitExceeded"
    assert tokens.asked == asked  # not even looked up
    assert "caller" in call(gate, "192.0.2.10")  # another address is not held back
    for _ in range(30):  # no token at all guesses nothing: not counted
        assert call(gate, "192.0.2.11", auth="")["status"] == 401
    assert "caller" in call(gate, "192.0.2.11")
