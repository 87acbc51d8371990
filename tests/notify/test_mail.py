"""Mail alerts through a real SMTP server (aiosmtpd) on loopback, without TLS."""

from __future__ import annotations

import asyncio

from notify_kit import Inbox, failure_message
from odin.notify import (
    Destination,
    Kind,
    Message,
    NotifySettings,
    Outcome,
    Sender,
    SmtpServer,
    Tls,
)
from odin.notify.mail import message_id

TO = "mailto:ops@example.org,oncall@example.org"


def send(settings: NotifySettings, message: Message, times: int = 1) -> list[Outcome]:
    async def main() -> list[Outcome]:
        sender = Sender(settings)
        try:
            dest = Destination(TO, Kind.MAIL)
            return [await sender.send(dest, message) for _ in range(times)]
        finally:
            await sender.close()

    return asyncio.run(main())


def test_one_mail_arrives_with_text_and_html(inbox: Inbox) -> None:
    settings = NotifySettings(
        smtp=SmtpServer("127.0.0.1", inbox.port, None, Tls.NONE), smtp_from="odin@example.org"
    )
    message = failure_message()
    assert (
        send(settings, message, times=2)
        == [Outcome(ok=True, retry=False, detail="accepted by the mail server")] * 2
    )
    assert [envelope.mail_from for envelope in inbox.envelopes] == ["odin@example.org"] * 2
    assert inbox.envelopes[0].rcpt_tos == ["ops@example.org", "oncall@example.org"]
    first, again = inbox.mails()
    assert first["From"] == "odin@example.org"
    assert first["To"] == "ops@example.org, oncall@example.org"
    assert first["Subject"] == message.subject
    assert first["Date"]
    assert first["X-Odin-Idempotency-Key"] == message.key
    assert first["Message-ID"] == message_id(message.key, "odin@example.org")
    assert again["Message-ID"] == first["Message-ID"]  # the same alert: the same Message-ID
    text = first.get_body(("plain",))
    html = first.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n") == message.text
    assert html.get_content().replace("\r\n", "\n") == message.html


def test_the_message_id_is_stable_and_per_alert() -> None:
    one = message_id("a37b187f5930@2026-12-08T02:00:00Z:failure", "odin@example.org")
    assert one == message_id("a37b187f5930@2026-12-08T02:00:00Z:failure", "odin@example.org")
    assert one != message_id("a37b187f5930@2026-12-08T02:00:00Z:recovery", "odin@example.org")
    assert one.startswith("<") and one.endswith("@example.org>")


def test_without_an_smtp_server_it_is_not_retried() -> None:
    [outcome] = send(NotifySettings(smtp=None), failure_message())
    assert outcome == Outcome(
        ok=False, retry=False, detail="this engine has no SMTP server (odin-engine --smtp)"
    )
