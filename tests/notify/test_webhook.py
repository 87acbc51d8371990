"""Webhook alerts against a real HTTP server on loopback: retries, signature, redirects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import odin
from notify_kit import HttpReceiver, closed_port, failure_message, verify
from odin.notify import Destination, Kind, Message, NotifySettings, Outcome, Sender, signature

SECRET = b"0123456789abcdef0123456789abcdef"


def send_all(
    dest: Destination, message: Message, times: int, secret: bytes | None
) -> list[Outcome]:
    async def main() -> list[Outcome]:
        sender = Sender(NotifySettings(webhook_secret=secret), clock=time.time)
        try:
            return [await sender.send(dest, message) for _ in range(times)]
        finally:
            await sender.close()

    return asyncio.run(main())


def test_retries_carry_the_same_key_and_a_valid_signature(
    http_receiver: Callable[..., HttpReceiver],
) -> None:
    receiver = http_receiver(500, 500, 200)
    message = failure_message()
    dest = Destination(receiver.url(), Kind.WEBHOOK)
    outcomes = send_all(dest, message, 3, SECRET)
    assert outcomes == [
        Outcome(ok=False, retry=True, detail="HTTP 500"),
        Outcome(ok=False, retry=True, detail="HTTP 500"),
        Outcome(ok=True, retry=False, detail="HTTP 200"),
    ]
    got = receiver.requests()
    assert [request.headers["idempotency-key"] for request in got] == [message.key] * 3
    for request in got:
        assert request.path == "/hook"
        assert request.body == message.body
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == f"odin/{odin.__version__}"
        assert request.headers["x-odin-event"] == "failure"
        assert verify(SECRET, request.headers["x-odin-signature"], request.body, time.time())
    header = got[0].headers["x-odin-signature"]
    assert not verify(b"another secret", header, got[0].body, time.time())
    assert not verify(SECRET, header, got[0].body + b" ", time.time())
    assert not verify(SECRET, header, got[0].body, time.time() + 3600)  # too old: a replay


def test_the_signature_format() -> None:
    # The same as: printf '1700000000.{}' | openssl dgst -sha256 -hmac key
    assert signature(b"key", 1700000000, b"{}") == (
        "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
    )


def test_no_signature_without_a_secret(http_receiver: Callable[..., HttpReceiver]) -> None:
    receiver = http_receiver()
    send_all(Destination(receiver.url(), Kind.WEBHOOK), failure_message(), 1, None)
    assert "x-odin-signature" not in receiver.requests()[0].headers


def test_a_refusal_is_not_retried(http_receiver: Callable[..., HttpReceiver]) -> None:
    receiver = http_receiver(404, 429, 408)
    outcomes = send_all(Destination(receiver.url(), Kind.WEBHOOK), failure_message(), 3, None)
    assert outcomes == [
        Outcome(ok=False, retry=False, detail="HTTP 404: the receiver refused it"),
        Outcome(ok=False, retry=True, detail="HTTP 429"),
        Outcome(ok=False, retry=True, detail="HTTP 408"),
    ]


def test_a_closed_port_is_retried() -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    [outcome] = send_all(Destination(url, Kind.WEBHOOK), failure_message(), 1, SECRET)
    assert outcome == Outcome(ok=False, retry=True, detail="connection refused")


def test_a_redirect_is_not_followed(http_receiver: Callable[..., HttpReceiver]) -> None:
    receiver = http_receiver(302)
    [outcome] = send_all(Destination(receiver.url(), Kind.WEBHOOK), failure_message(), 1, None)
    assert not outcome.ok and not outcome.retry
    assert outcome.detail.startswith("HTTP 302")
    assert [request.path for request in receiver.requests()] == ["/hook"]


def test_the_outcome_never_shows_the_url() -> None:
    url = f"http://user:hunter2@127.0.0.1:{closed_port()}/secret-path?token=abc"
    [outcome] = send_all(Destination(url, Kind.WEBHOOK), failure_message(), 1, None)
    assert outcome.retry
    for secret in ("hunter2", "secret-path", "token", "127.0.0.1"):
        assert secret not in outcome.detail
