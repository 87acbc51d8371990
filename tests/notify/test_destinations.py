"""Which destinations a job may name, which are refused and why, and how URLs are masked."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from apprise.plugins import N_MGR

from odin import config
from odin.jobs.fields import Problem
from odin.notify import Destination, Kind, check_destination, mask
from odin.notify.destinations import (
    FILE_PARAMETERS,
    LOCAL_SCHEMES,
    TEMPLATE_FILE_SCHEMES,
)

ACCEPTED = [
    ("https://hooks.example.org/odin", Kind.WEBHOOK),
    ("http://127.0.0.1:8080/hook?token=abc", Kind.WEBHOOK),
    ("https://user:pass@hooks.example.org/odin", Kind.WEBHOOK),
    ("HTTPS://hooks.example.org", Kind.WEBHOOK),
    ("mailto:ops@example.org", Kind.MAIL),
    ("mailto:ops@example.org,oncall@mail.example.org", Kind.MAIL),
    ("mailto:root@localhost", Kind.MAIL),
    ("slack://T000/B000/XXXX", Kind.SERVICE),
    ("json://hooks.example.org/odin", Kind.SERVICE),
    ("discord://123456789/abcdefghijk", Kind.SERVICE),
    ("ntfy://odin-alerts", Kind.SERVICE),
    ("onesignal://app@apikey/#segment?template=welcome", Kind.SERVICE),  # an id, not a path
]

REFUSED = [
    ("", "is empty"),
    ("   ", "is empty"),
    ("https://" + "a" * config.MAX_DESTINATION_CHARS, "characters long"),
    ("https://hooks.example.org/a b", "without spaces"),
    ("https://hooks.example.org/\x07", "control characters"),
    ("hooks.example.org/odin", "not a destination Odin can send to"),
    ("foo://x", "not a destination Odin can send to"),
    ("https://", "has no host"),
    ("http:///path", "has no host"),
    ("https://hooks.example.org:99999/", "not a valid URL"),
    ("mailto:", "names no address"),
    ("mailto:ops", "not a mail address"),
    ("mailto:ops@example", "not a mail address"),
    ("mailto:@example.org", "not a mail address"),
    ("mailto:a@b@example.org", "not a mail address"),
    ("mailto:ops@example.org,", "not a mail address"),
    ("mailto:ops@example.org?cc=boss@example.org", "not a mail address"),
    ("mailto://user:pass@gmail.com", "mailtos://"),
    ("slack://x", "not a valid slack:// URL"),
    ("mqtt://broker.example.org/topic", "needs a Python package"),
    ("slack:T000/B000/XXXX", "not a destination Odin can send to"),
]


@pytest.mark.parametrize(("text", "kind"), ACCEPTED)
def test_accepted(text: str, kind: Kind) -> None:
    assert check_destination(f"  {text} ") == Destination(url=text, kind=kind)


@pytest.mark.parametrize(("text", "expected"), REFUSED)
def test_refused(text: str, expected: str) -> None:
    with pytest.raises(Problem) as refused:
        check_destination(text)
    assert expected in refused.value.detail


def test_an_unknown_scheme_names_what_would_do() -> None:
    with pytest.raises(Problem) as refused:
        check_destination("foo://x")
    assert refused.value.detail == (
        'not a destination Odin can send to: "foo://x" (use https://..., '
        "mailto:you@example.org, or a service URL such as slack://...; see docs/alerts.md)"
    )


@pytest.mark.parametrize("scheme", sorted(LOCAL_SCHEMES))
def test_schemes_acting_on_the_engines_host_are_refused(scheme: str) -> None:
    with pytest.raises(Problem, match="engine's own host"):
        check_destination(f"{scheme}://localhost/x")


def test_every_desktop_or_local_apprise_plugin_is_refused() -> None:
    """A guard for Apprise upgrades: the plugins that act on the host all stay refused."""
    local_modules = {"dbus", "glib", "gnome", "macosx", "windows", "syslog", "rsyslog", "blink1"}
    for scheme in N_MGR.schemas():
        if N_MGR[scheme].__module__.rpartition(".")[2] in local_modules:
            assert scheme in LOCAL_SCHEMES, scheme


@pytest.mark.parametrize(
    "text",
    [
        "ntfy://odin-alerts?attach=/etc/shadow",
        "json://hooks.example.org/x?attachment=file:///etc/shadow",
        "https://hooks.example.org/x?a=1&Attach=/etc/shadow",
        "ntfy://odin-alerts?x=1;%61ttach=/etc/shadow",  # Apprise splits on ; and unquotes
        "ntfy://odin-alerts?+attach=/etc/shadow",
        "slack://T000/B000/XXXX/#channel?template=/etc/shadow",  # a # does not end the query
        "fcm://project@apikey/device?keyfile=/root/key.json",
        "vapid://user@example.org/sub?subfile=/etc/shadow",
        "mailtos://user:pass@example.org?pgpprv=/root/.gnupg/key",
    ],
)
def test_parameters_that_read_local_files_are_refused(text: str) -> None:
    with pytest.raises(Problem, match="is not allowed: it would make the engine read a file"):
        check_destination(text)


def test_every_apprise_parameter_naming_a_local_file_is_refused() -> None:
    """A guard for Apprise upgrades: its file-path parameters (by their documented names)."""
    file_like = re.compile(r"key ?file|subscri\w* file|template path|key path", re.IGNORECASE)
    checked = 0
    for scheme in N_MGR.schemas():
        for key, spec in N_MGR[scheme].template_args.items():
            if isinstance(spec, dict) and file_like.search(str(spec.get("name", ""))):
                assert key in FILE_PARAMETERS or (
                    key == "template" and scheme in TEMPLATE_FILE_SCHEMES
                ), (scheme, key)
                checked += 1
    assert checked > 0


def test_webhooks_and_mail_do_not_import_apprise_or_httpx() -> None:
    code = (
        "import sys\n"
        "from odin.jobs.notify import check_destination\n"
        "check_destination('https://hooks.example.org/odin')\n"
        "check_destination('mailto:ops@example.org')\n"
        "assert 'apprise' not in sys.modules and 'httpx' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mail_addresses() -> None:
    dest = check_destination("mailto:ops@example.org,oncall@example.org")
    assert dest.addresses == ("ops@example.org", "oncall@example.org")
    assert check_destination("https://hooks.example.org").addresses == ()


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://hooks.example.org/odin", "https://hooks.example.org/odin"),
        (
            "https://u:secret@hooks.example.org:8443/odin",
            "https://u:***@hooks.example.org:8443/odin",
        ),
        ("https://token@hooks.example.org/odin", "https://***@hooks.example.org/odin"),
        (
            "https://hooks.example.org/odin?token=abc&x",
            "https://hooks.example.org/odin?token=***&x=***",
        ),
        ("https://hooks.example.org/odin#secret", "https://hooks.example.org/odin#***"),
        (
            "https://discord.com/api/webhooks/123456789012345678/abcDEF_ghi-jkl123456",
            "https://discord.com/api/webhooks/***/***",
        ),
        (
            "https://hooks.slack.com/services/T000/B000/abcdefGHIJKLmnopqrstuvwx",
            "https://hooks.slack.com/services/T000/B000/***",
        ),
        (
            "https://hooks.example.org/x?abcdefGHIJKLmnopqrstuvwx",
            "https://hooks.example.org/x?***=***",
        ),
        (
            "https://hooks.example.org/alerts-for-the-whole-team",
            "https://hooks.example.org/alerts-for-the-whole-team",
        ),
        ("slack://T000/B000/XXXX", "slack://***"),
        ("slack://T000/B000/XXXX/#alerts", "slack://***"),
        ("ntfy://odin-alerts", "ntfy://***"),
        ("json://localhost:8080/hook", "json://***"),
        ("json://hooks.example.org:8080/a/b?x=1", "json://hooks.example.org:8080/***?x=***"),
        ("mailtos://user:pass@mail.example.org", "mailtos://***@mail.example.org"),
        ("mailto:ops@example.org", "mailto:ops@example.org"),
        ("not a url", "***"),
    ],
)
def test_mask(url: str, masked: str) -> None:
    assert mask(url) == masked
