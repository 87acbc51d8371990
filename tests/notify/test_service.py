"""Service alerts through Apprise, to a real HTTP receiver on loopback (Apprise's json://)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from notify_kit import HttpReceiver, closed_port, failure_message
from odin.notify import Destination, Kind, NotifySettings, Outcome, Sender, check_destination
from odin.notify.service import send_service


def send(dest: Destination) -> Outcome:
    async def main() -> Outcome:
        sender = Sender(NotifySettings())
        try:
            return await sender.send(dest, failure_message())
        finally:
            await sender.close()

    return asyncio.run(main())


def test_the_receiver_gets_the_subject_as_title(
    http_receiver: Callable[..., HttpReceiver],
) -> None:
    receiver = http_receiver()
    dest = check_destination(f"json://127.0.0.1:{receiver.port}/hook")
    assert dest.kind is Kind.SERVICE
    assert send(dest) == Outcome(ok=True, retry=False, detail="accepted by the service")
    [request] = receiver.requests()
    assert request.path == "/hook"
    assert request.headers["content-type"].startswith("application/json")
    document = json.loads(request.body)
    assert document["title"] == failure_message().subject
    assert document["message"] == failure_message().text.rstrip()
    assert document["type"] == "failure"


def test_an_unreachable_service_is_retried() -> None:
    dest = check_destination(f"json://127.0.0.1:{closed_port()}/hook")
    assert send(dest) == Outcome(
        ok=False, retry=True, detail="the service refused or could not be reached"
    )


def test_a_refusing_service_is_retried(http_receiver: Callable[..., HttpReceiver]) -> None:
    receiver = http_receiver(500)
    dest = check_destination(f"json://127.0.0.1:{receiver.port}/hook")
    assert send(dest).retry
    assert len(receiver.requests()) == 1


def test_a_refused_destination_is_not_sent_even_if_built_by_hand() -> None:
    for url in ("syslog://", "ntfy://odin-alerts?attach=/etc/shadow"):
        outcome = send_service(Destination(url, Kind.SERVICE), failure_message())
        assert outcome == Outcome(
            ok=False, retry=False, detail="Odin does not send to this destination any more"
        )
