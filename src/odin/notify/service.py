"""Alerts to services other than webhooks and mail (Slack, Discord, ntfy...) through Apprise.

Blocking: the caller runs it in a thread. Apprise is imported on first use only, and the URL is
checked again before use, so a destination stored before a rule changed cannot reach the host.
"""

from __future__ import annotations

from typing import Final

from odin import config
from odin.jobs.fields import Problem
from odin.jobs.notify import AlertEvent
from odin.notify.destinations import Destination, apprise_asset, check_destination
from odin.notify.message import Message
from odin.notify.outcome import Outcome

# Apprise's kind of notification for each event (a service may show a colour or an icon).
FAILURE_EVENTS: Final = frozenset({AlertEvent.FAILURE, AlertEvent.LOST})
WARNING_EVENTS: Final = frozenset({AlertEvent.MISSED, AlertEvent.OVERDUE})
SUCCESS_EVENTS: Final = frozenset({AlertEvent.RECOVERY})


def send_service(dest: Destination, message: Message) -> Outcome:
    """Send ``message`` to the service ``dest`` names, once; Apprise only says yes or no."""
    try:
        check_destination(dest.url)
    except Problem:  # its detail may quote the URL, which an outcome never shows
        return Outcome.refused("Odin does not send to this destination any more")
    from apprise import Apprise, NotifyFormat, NotifyType

    asset = apprise_asset()
    plugin = Apprise.instantiate(dest.url, asset=asset)
    if plugin is None:
        return Outcome.refused("the service URL is not valid")
    hub = Apprise(asset=asset)
    hub.add(plugin)
    kind = NotifyType.INFO
    if message.event in FAILURE_EVENTS:
        kind = NotifyType.FAILURE
    elif message.event in WARNING_EVENTS:
        kind = NotifyType.WARNING
    elif message.event in SUCCESS_EVENTS:
        kind = NotifyType.SUCCESS
    with hub.notify(
        body=message.text,
        title=message.subject,
        notify_type=kind,
        body_format=NotifyFormat.TEXT,
        timeout=config.ALERT_SEND_TIMEOUT_S,
    ) as result:
        if result:
            return Outcome.sent("accepted by the service")
        if result.timeout_count:
            return Outcome.retryable("the service did not answer in time")
        return Outcome.retryable("the service refused or could not be reached")
