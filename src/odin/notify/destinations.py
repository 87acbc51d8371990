"""Where an alert can go: a webhook, mail addresses or an Apprise service URL, checked and masked.

A destination is written by a job's owner and used by the engine, which runs as root: so any
URL that would act on the engine's own host (desktop pop-ups, its syslog, its files) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote, urlsplit

from odin import config
from odin.jobs._text import show
from odin.jobs.fields import Problem

if TYPE_CHECKING:
    from apprise import AppriseAsset

HIDDEN: Final = "***"
EXAMPLES: Final = (
    "use https://..., mailto:you@example.org, or a service URL such as slack://...; "
    "see docs/alerts.md"
)

# Apprise schemes that act on the engine's own host rather than send to a remote service
# (found by reading apprise/plugins of Apprise 2.3.0). As root they would reach the host itself.
LOCAL_SCHEMES: Final = frozenset(
    {
        "file",  # Apprise's scheme for local files (attachments, configuration)
        "dbus",  # plugins/dbus.py: desktop notifications over the host's D-Bus
        "kde",  # plugins/dbus.py
        "qt",  # plugins/dbus.py
        "glib",  # plugins/glib.py: desktop notifications through GLib/GIO
        "gio",  # plugins/glib.py
        "gnome",  # plugins/gnome.py: desktop notifications through libnotify
        "macosx",  # plugins/macosx.py: runs terminal-notifier on the host
        "windows",  # plugins/windows.py: Windows desktop notifications
        "syslog",  # plugins/syslog.py: the host's own syslog
        "rsyslog",  # plugins/rsyslog.py: a syslog daemon over UDP, in practice the host's own
        "blink1",  # plugins/blink1.py: a USB light plugged into the host
    }
)

# Query parameters with which Apprise reads a file of the engine's host (as root) and may send
# its content away: attachments, key files, PGP keys, subscription files.
FILE_PARAMETERS: Final = frozenset(
    {"attach", "attachment", "keyfile", "subfile", "pgppub", "pgpprv"}
)
# Schemes whose ``template=`` is a path to a local file (for others it is a name or an id).
TEMPLATE_FILE_SCHEMES: Final = frozenset(
    {"discord", "guilded", "slack", "tgram", "workflow", "workflows"}
)

_QUERY_SEPARATORS = re.compile(r"[&;?#]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$&'*+/=^_`{|}~-]+(\.[A-Za-z0-9!#$&'*+/=^_`{|}~-]+)*")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"({_LABEL}\.)+[A-Za-z]([A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?")
MAX_LOCAL_PART_CHARS: Final = 64
MAX_ADDRESS_CHARS: Final = 254
# A path segment of a webhook URL this long, with a digit or mixed case, is taken for a token;
# one of LONG_SEGMENT_CHARS always is.
TOKEN_SEGMENT_CHARS: Final = 16
LONG_SEGMENT_CHARS: Final = 32


class Kind(StrEnum):
    """How an alert reaches a destination."""

    WEBHOOK = "webhook"  # http:// or https://: the alert as a JSON POST
    MAIL = "mail"  # mailto:addr[,addr2]: a mail through the engine's SMTP server
    SERVICE = "service"  # any other scheme: sent through Apprise (slack://, discord://...)


@dataclass(frozen=True)
class Destination:
    """One place an alert goes, as written in the job file, with how it is reached."""

    url: str
    kind: Kind

    @property
    def addresses(self) -> tuple[str, ...]:
        """The mail addresses of a ``mailto:`` destination (empty for other kinds)."""
        if self.kind is not Kind.MAIL:
            return ()
        return tuple(part.strip() for part in self.url.partition(":")[2].split(","))


def kind_of(scheme: str) -> Kind:
    """The kind of destination a URL scheme names."""
    match scheme.lower():
        case "http" | "https":
            return Kind.WEBHOOK
        case "mailto":
            return Kind.MAIL
        case _:
            return Kind.SERVICE


def check_destination(text: str) -> Destination:
    """The destination ``text`` names, or ``Problem`` saying why Odin cannot send to it."""
    value = text.strip()
    if not value:
        raise Problem("is empty: write a URL such as https://hooks.example.org/odin")
    if len(value) > config.MAX_DESTINATION_CHARS:
        raise Problem(
            f"is {len(value)} characters long: at most {config.MAX_DESTINATION_CHARS} are allowed"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise Problem("must be one URL without spaces or control characters")
    match = _SCHEME.match(value)
    if match is None:
        raise Problem(f"not a destination Odin can send to: {show(value)} ({EXAMPLES})")
    kind = kind_of(match.group(1))
    if kind is Kind.MAIL:
        _check_mailto(value)
    else:
        _check_parameters(value, match.group(1).lower())
        if kind is Kind.WEBHOOK:
            _check_webhook(value)
        else:
            _check_service(value, match.group(1).lower())
    return Destination(url=value, kind=kind)


def is_address(text: str) -> bool:
    """Whether ``text`` is a plain mail address: one @, a local part, and a domain with a dot."""
    local, at, domain = text.rpartition("@")
    return (
        bool(at)
        and len(text) <= MAX_ADDRESS_CHARS
        and len(local) <= MAX_LOCAL_PART_CHARS
        and _LOCAL_PART.fullmatch(local) is not None
        and (domain.lower() == "localhost" or _DOMAIN.fullmatch(domain) is not None)
    )


def mask(url: str) -> str:
    """``url`` with its secrets hidden, for listings and logs.

    Webhooks keep their host, port and path (long token-like segments hidden) and hide
    passwords and query values; service URLs keep their scheme, and their host only when it
    looks like a host name (Slack-style tokens sit where the host would be); mail stays.
    """
    value = url.strip()
    match = _SCHEME.match(value)
    if match is None:
        return HIDDEN
    scheme = match.group(1).lower()
    kind = kind_of(scheme)
    if kind is Kind.MAIL:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return f"{scheme}://{HIDDEN}"
    userinfo, at, host = parts.netloc.rpartition("@")
    keys = (item.partition("=")[0] for item in parts.query.split("&") if item)
    query = "&".join(f"{HIDDEN if _looks_secret(key) else key}={HIDDEN}" for key in keys)
    tail = (f"?{query}" if query else "") + (f"#{HIDDEN}" if parts.fragment else "")
    if kind is Kind.WEBHOOK:
        user, colon, _ = userinfo.partition(":")
        credentials = f"{user}:{HIDDEN}@" if colon else (f"{HIDDEN}@" if at else "")
        path = "/".join(HIDDEN if _looks_secret(seg) else seg for seg in parts.path.split("/"))
        return f"{scheme}://{credentials}{host}{path}{tail}"
    if "." not in host and not host.startswith("["):
        return f"{scheme}://{HIDDEN}"
    path = f"/{HIDDEN}" if parts.path.strip("/") else ""
    return f"{scheme}://{HIDDEN + '@' if at else ''}{host}{path}{tail}"


def apprise_asset() -> AppriseAsset:
    """Apprise settings for the engine: no plugins from disk, no storage, no redirects.

    Apprise is imported here, on first use, because importing it takes tens of milliseconds.
    """
    from apprise import AppriseAsset

    return AppriseAsset(
        plugin_paths=[],  # never load custom plugins (from the engine user's home or elsewhere)
        storage_path=None,  # no persistent storage: nothing written on the host
        service_timeout=config.ALERT_SEND_TIMEOUT_S,
        secure_logging=True,  # Apprise's own log lines hide passwords and tokens
        http_redirects=False,  # as for webhooks: the URL written is the one used
    )


def _check_mailto(value: str) -> None:
    rest = value.partition(":")[2]
    if rest.startswith("//"):
        raise Problem(
            f"{show(value)} is not a mailto: destination: write mailto:you@example.org "
            "(or, to send through a mail server of your own, Apprise's mailtos://...)"
        )
    addresses = [part.strip() for part in rest.split(",")]
    if not any(addresses):
        raise Problem("names no address: write mailto:you@example.org[,other@example.org]")
    for address in addresses:
        if not is_address(address):
            raise Problem(
                f"{show(address)} is not a mail address: write mailto:you@example.org"
                "[,other@example.org]"
            )


def _check_webhook(value: str) -> None:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise Problem(
            f"{show(value)} is not a valid URL: e.g. https://hooks.example.org/odin"
        ) from None
    if not parts.hostname:
        raise Problem(f"{show(value)} has no host: write e.g. https://hooks.example.org/odin")
    if port == 0:
        raise Problem(f"{show(value)} has port 0: leave it out or give a port from 1 to 65535")


def _check_parameters(value: str, scheme: str) -> None:
    for key in _query_keys(value):
        if key in FILE_PARAMETERS or (key == "template" and scheme in TEMPLATE_FILE_SCHEMES):
            raise Problem(
                f"the {key}= parameter is not allowed: it would make the engine read a file "
                "of its host and send it"
            )


def _query_keys(value: str) -> set[str]:
    """The query parameter names in ``value`` as Apprise reads them, and then some.

    Apprise takes everything after the first ``?`` (a ``#`` does not end it), splits it on
    ``&`` and ``;``, unquotes and lowercases the names; splitting on ``?`` and ``#`` as well
    only finds more names to check.
    """
    query = value.partition("?")[2]
    names = (item.partition("=")[0] for item in _QUERY_SEPARATORS.split(query))
    return {unquote(name).replace("+", " ").strip(" +-:").lower() for name in names}


def _check_service(value: str, scheme: str) -> None:
    if scheme in LOCAL_SCHEMES:
        raise Problem(
            f"{scheme}:// would act on the engine's own host, not send to a remote service "
            f"({EXAMPLES})"
        )
    if not value[len(scheme) + 1 :].startswith("//"):
        raise Problem(f"not a destination Odin can send to: {show(value)} ({EXAMPLES})")
    from apprise import Apprise
    from apprise.plugins import N_MGR as plugins

    if scheme not in plugins:
        raise Problem(f"not a destination Odin can send to: {show(value)} ({EXAMPLES})")
    if not plugins[scheme].enabled:
        raise Problem(
            f"{scheme}:// needs a Python package this engine does not have: "
            "see Apprise's documentation of it"
        )
    if Apprise.instantiate(value, asset=apprise_asset()) is None:
        raise Problem(
            f"{show(value)} is not a valid {scheme}:// URL: see Apprise's documentation of "
            f"{scheme}:// and docs/alerts.md"
        )


def _looks_secret(segment: str) -> bool:
    """Whether a path segment (or a bare query word) looks like a random token."""
    if len(segment) >= LONG_SEGMENT_CHARS:
        return True
    if len(segment) < TOKEN_SEGMENT_CHARS:
        return False
    mixed_case = any(ch.isupper() for ch in segment) and any(ch.islower() for ch in segment)
    return mixed_case or any(ch.isdigit() for ch in segment)
