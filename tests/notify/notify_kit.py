"""Shared pieces of the odin.notify tests: sample facts, receivers' records, a free port."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from odin.notify import JobFacts, Message, RunFacts, compose

JOB = JobFacts(id="a37b187f5930", name="backup", owner="alice")
RUN = RunFacts(
    id="a37b187f5930@2026-12-08T02:00:00Z",
    instant=1796695200.0,
    node="master-node",
    status="failed",
    exit_code=1,
    duration=12.5,
    result=None,
    output_tail="copying...\ndisk full\n",
)


def failure_message(**changes: Any) -> Message:
    """A failure alert about ``RUN``, as the engine would compose it."""
    arguments: dict[str, Any] = {
        "event": "failure",
        "key": f"{RUN.id}:failure",
        "job": JOB,
        "run": RUN,
        "detail": "",
        "dashboard_url": "https://odin.example.org",
        "at": RUN.instant + 13,
    }
    arguments.update(changes)
    return compose(**arguments)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass(frozen=True)
class Request:
    """One request as the HTTP receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """What a loopback HTTP server got, and the statuses it answers in turn (then 200)."""

    port: int = 0
    statuses: list[int] = field(default_factory=list)
    got: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests(self) -> list[Request]:
        with self.lock:
            return list(self.got)


class Inbox:
    """What a real SMTP server received."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def mails(self) -> list[EmailMessage]:
        found = []
        for envelope in self.envelopes:
            mail = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(mail, EmailMessage)
            found.append(mail)
        return found


def verify(secret: bytes, header: str, body: bytes, now: float, max_age_s: float = 300) -> bool:
    """A receiver's check of ``X-Odin-Signature: t=<unix time>,v1=<hex>``, as docs would show it."""
    fields = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > max_age_s:  # too old (or from the future): maybe a replay
        return False
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))
