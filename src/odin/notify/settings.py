"""The engine's alert settings: its SMTP server, sender address, secrets and dashboard URL.

They come from ``odin-engine`` options; secrets are read from files (never from the command
line, which every user can see) and never appear in a repr or a log line.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

from odin import config
from odin.errors import InvalidInput
from odin.jobs._text import show

SMTP_PORT: Final = 25
SMTPS_PORT: Final = 465
SMTP_FORM: Final = "smtp://[user@]host[:port][?tls=starttls|ssl|none]"
SMTP_EXAMPLE: Final = "smtp://alerts@mail.example.org:587"
SECRET_FILE_MAX_BYTES: Final = 64 * config.KIB  # a secret file holds one secret, not a document
GROUP_OR_OTHER_BITS: Final = 0o077


class Tls(StrEnum):
    """How the connection to the SMTP server is protected."""

    STARTTLS = "starttls"  # plain connection upgraded with STARTTLS (refused if not offered)
    SSL = "ssl"  # TLS from the first byte (SMTPS, port 465)
    NONE = "none"  # no TLS: only sensible for a server on the same host


@dataclass(frozen=True)
class SmtpServer:
    """The mail server alerts are sent through; its password lives in ``NotifySettings``."""

    host: str
    port: int
    user: str | None
    tls: Tls


def _default_sender() -> str:
    return f"odin@{socket.gethostname()}"


@dataclass(frozen=True)
class NotifySettings:
    """Everything the engine needs to deliver alerts, built once at start."""

    smtp: SmtpServer | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str = field(default_factory=_default_sender)
    webhook_secret: bytes | None = field(default=None, repr=False)
    dashboard_url: str | None = None

    @classmethod
    def default_from(cls) -> str:
        """The From address when none is given: ``odin@<this host's name>``."""
        return _default_sender()


def parse_smtp(url: str) -> SmtpServer:
    """The SMTP server ``url`` names (``smtp://[user@]host[:port][?tls=...]``).

    The port defaults to 25 (465 with ``tls=ssl``); TLS defaults to ``none`` for a server on
    this host and ``starttls`` for any other. ``InvalidInput`` says what is wrong.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        password = parts.password
        port = parts.port
    except ValueError:
        raise InvalidInput(f"--smtp is not a valid URL: write {SMTP_FORM}") from None
    if password is not None:  # checked first: the messages below quote the URL
        raise InvalidInput(
            "--smtp must not contain a password (every user can read the command line): "
            "put it in a file only root can read and give --smtp-password-file"
        )
    if parts.scheme.lower() != "smtp":
        raise InvalidInput(f"--smtp {show(text)} is not an SMTP URL: write {SMTP_FORM}")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise InvalidInput("--smtp must not contain spaces or control characters")
    host = parts.hostname
    if not host:
        raise InvalidInput(f"--smtp {show(text)} has no host: e.g. {SMTP_EXAMPLE}")
    if parts.path not in ("", "/") or parts.fragment:
        raise InvalidInput(f"--smtp {show(text)} must not have a path: write {SMTP_FORM}")
    if port == 0:
        raise InvalidInput(f"--smtp {show(text)} has port 0: give a port from 1 to 65535")
    tls = _default_tls(host)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() != "tls":
            raise InvalidInput(f"--smtp has an unknown parameter {show(key)}: only tls= is known")
        try:
            tls = Tls(value.strip().lower())
        except ValueError:
            accepted = " | ".join(member.value for member in Tls)
            raise InvalidInput(f"--smtp tls={show(value)} is not one of {accepted}") from None
    if port is None:
        port = SMTPS_PORT if tls is Tls.SSL else SMTP_PORT
    user = unquote(parts.username) if parts.username else None
    return SmtpServer(host=host, port=port, user=user, tls=tls)


def read_secret_file(path: Path, what: str) -> str:
    """The secret in ``path``, stripped; ``InvalidInput`` if it is missing, empty, or (when the
    engine runs as root) readable or writable by group or others."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InvalidInput(f"the {what} file {path} does not exist") from None
    except OSError as error:
        raise InvalidInput(f"the {what} file {path} cannot be read: {error.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InvalidInput(f"the {what} file {path} is not a regular file")
        if os.geteuid() == 0 and mode & GROUP_OR_OTHER_BITS:
            raise InvalidInput(
                f"the {what} file {path} is open to other users (mode "
                f"{stat.S_IMODE(mode):03o}): run chmod 600 {path}"
            )
        data = os.read(fd, SECRET_FILE_MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > SECRET_FILE_MAX_BYTES:
        raise InvalidInput(f"the {what} file {path} is too large: it should hold only the secret")
    try:
        secret = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidInput(f"the {what} file {path} is not UTF-8 text") from None
    if not secret:
        raise InvalidInput(f"the {what} file {path} is empty")
    return secret


def _default_tls(host: str) -> Tls:
    if host.lower() == "localhost":
        return Tls.NONE
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return Tls.NONE if loopback else Tls.STARTTLS
