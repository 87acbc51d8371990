"""The engine's one entry point for delivering an alert: ``Sender.send`` tries once and says how.

The engine decides when an alert is due and whether to try again; the sender only reports an
``Outcome`` and never raises for a delivery problem, whatever the destination does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from odin.notify import webhook
from odin.notify.destinations import Destination, Kind
from odin.notify.mail import send_mail
from odin.notify.message import Message
from odin.notify.outcome import Outcome
from odin.notify.service import send_service
from odin.notify.settings import NotifySettings

__all__ = ["Outcome", "Sender"]


class Sender:
    """Delivers alerts with the engine's settings; built once, closed when the engine stops."""

    def __init__(self, settings: NotifySettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._client = webhook.new_client()

    async def send(self, dest: Destination, message: Message) -> Outcome:
        """Try to deliver ``message`` to ``dest`` once (mail and services in a worker thread)."""
        try:
            match dest.kind:
                case Kind.WEBHOOK:
                    return await webhook.post(
                        self._client, dest.url, message, self.settings.webhook_secret, self._clock
                    )
                case Kind.MAIL:
                    return await asyncio.to_thread(send_mail, dest, message, self.settings)
                case Kind.SERVICE:
                    return await asyncio.to_thread(send_service, dest, message)
        except Exception as error:  # a bug or a library's surprise must not stop the engine
            return Outcome.retryable(f"unexpected error: {type(error).__name__}")

    async def close(self) -> None:
        """Close the HTTP connections the sender keeps."""
        await self._client.aclose()
