"""Alerts by mail, through the engine's SMTP server (blocking: the caller runs it in a thread).

The Message-ID is derived from the alert's key, so that a repeat sent after a retry has the
same Message-ID as the first and a mail system can drop it.
"""

from __future__ import annotations

import hashlib
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Final

from odin import config
from odin.notify.destinations import Destination
from odin.notify.message import Message
from odin.notify.outcome import Outcome
from odin.notify.settings import NotifySettings, SmtpServer, Tls

NO_SMTP: Final = "this engine has no SMTP server (odin-engine --smtp)"
IDEMPOTENCY_HEADER: Final = "X-Odin-Idempotency-Key"
MESSAGE_ID_HEX_DIGITS: Final = 32
PERMANENT_SMTP_CODES: Final = range(500, 600)


def message_id(key: str, sender: str) -> str:
    """The Message-ID of the alert ``key``: the same key always gives the same id."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:MESSAGE_ID_HEX_DIGITS]
    domain = sender.rpartition("@")[2] or "odin"
    return f"<{digest}.odin@{domain}>"


def build_mail(dest: Destination, message: Message, settings: NotifySettings) -> EmailMessage:
    """The mail of ``message`` to the addresses of ``dest``: plain text with an HTML alternative."""
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = ", ".join(dest.addresses)
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(message.key, settings.smtp_from)
    mail[IDEMPOTENCY_HEADER] = message.key
    # Quoted-printable: 7-bit clean, so no server along the way needs 8BITMIME.
    mail.set_content(message.text, cte="quoted-printable")
    mail.add_alternative(message.html, subtype="html", cte="quoted-printable")
    return mail


def send_mail(dest: Destination, message: Message, settings: NotifySettings) -> Outcome:
    """Send ``message`` to ``dest`` once; SMTP and network problems come back as an Outcome."""
    server = settings.smtp
    if server is None:
        return Outcome.refused(NO_SMTP)
    mail = build_mail(dest, message, settings)
    try:
        with _connect(server) as smtp:
            if server.user is not None and settings.smtp_password is not None:
                smtp.login(server.user, settings.smtp_password)
            refused = smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused:
        return Outcome.refused("the mail server refused every recipient")
    except smtplib.SMTPAuthenticationError as error:
        return Outcome.refused(f"SMTP {error.smtp_code}: the mail server refused the login")
    except smtplib.SMTPNotSupportedError:
        return Outcome.refused(
            "the mail server does not offer STARTTLS (or login): see --smtp's tls= in "
            "docs/alerts.md"
        )
    except smtplib.SMTPResponseException as error:
        detail = f"SMTP {error.smtp_code}: the mail server refused it"
        if error.smtp_code in PERMANENT_SMTP_CODES:
            return Outcome.refused(detail)
        return Outcome.retryable(detail)
    except smtplib.SMTPException:
        return Outcome.retryable("the mail server closed the connection or answered badly")
    except ssl.SSLCertVerificationError:
        return Outcome.retryable("the mail server's TLS certificate is not trusted")
    except ssl.SSLError:
        return Outcome.retryable("TLS with the mail server failed")
    except TimeoutError:
        return Outcome.retryable("the mail server timed out")
    except ConnectionRefusedError:
        return Outcome.retryable("connection to the mail server refused")
    except socket.gaierror:
        return Outcome.retryable("the mail server's host was not found")
    except OSError:
        return Outcome.retryable("could not reach the mail server")
    if refused:
        return Outcome.sent(f"sent; the mail server refused {len(refused)} of the recipients")
    return Outcome.sent("accepted by the mail server")


def _connect(server: SmtpServer) -> smtplib.SMTP:
    timeout = config.ALERT_SEND_TIMEOUT_S
    if server.tls is Tls.SSL:
        return smtplib.SMTP_SSL(
            server.host, server.port, timeout=timeout, context=ssl.create_default_context()
        )
    smtp = smtplib.SMTP(server.host, server.port, timeout=timeout)
    try:
        if server.tls is Tls.STARTTLS:
            smtp.starttls(context=ssl.create_default_context())
    except BaseException:
        smtp.close()
        raise
    return smtp
