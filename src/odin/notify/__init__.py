"""Alerts: check, mask and send one alert to one destination (webhook, mail or service).

The engine decides when an alert is due and calls ``Sender.send``. ``Sender`` and
``signature`` are imported on first use, because they bring in the HTTP client, which the
job-file checks (``check_destination``) do not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

from odin.notify.destinations import Destination, Kind, check_destination, mask
from odin.notify.message import JobFacts, Message, RunFacts, compose
from odin.notify.outcome import Outcome
from odin.notify.settings import (
    NotifySettings,
    SmtpServer,
    Tls,
    parse_smtp,
    read_secret_file,
)

if TYPE_CHECKING:
    from odin.notify.send import Sender
    from odin.notify.webhook import signature

__all__ = [
    "Destination",
    "JobFacts",
    "Kind",
    "Message",
    "NotifySettings",
    "Outcome",
    "RunFacts",
    "Sender",
    "SmtpServer",
    "Tls",
    "check_destination",
    "compose",
    "mask",
    "parse_smtp",
    "read_secret_file",
    "signature",
]

_LATER: Final = {"Sender": "odin.notify.send", "signature": "odin.notify.webhook"}


def __getattr__(name: str) -> object:
    """``Sender`` and ``signature``, imported on first use."""
    if name in _LATER:
        return getattr(importlib.import_module(_LATER[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
