"""The engine's alert settings: SMTP URLs, secrets kept out of reprs, and secret files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from odin.errors import InvalidInput
from odin.notify import NotifySettings, SmtpServer, Tls, parse_smtp, read_secret_file


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("smtp://localhost", SmtpServer("localhost", 25, None, Tls.NONE)),
        ("smtp://127.0.0.1:2525", SmtpServer("127.0.0.1", 2525, None, Tls.NONE)),
        ("smtp://127.1.2.3", SmtpServer("127.1.2.3", 25, None, Tls.NONE)),
        ("smtp://[::1]:2525", SmtpServer("::1", 2525, None, Tls.NONE)),
        ("smtp://mail.example.org", SmtpServer("mail.example.org", 25, None, Tls.STARTTLS)),
        (
            "smtp://alerts@mail.example.org:587",
            SmtpServer("mail.example.org", 587, "alerts", Tls.STARTTLS),
        ),
        ("smtp://mail.example.org?tls=ssl", SmtpServer("mail.example.org", 465, None, Tls.SSL)),
        ("smtp://mail.example.org:25?tls=NONE", SmtpServer("mail.example.org", 25, None, Tls.NONE)),
        ("smtp://localhost?tls=starttls", SmtpServer("localhost", 25, None, Tls.STARTTLS)),
        (
            "smtp://a%40b.org@mail.example.org/",
            SmtpServer("mail.example.org", 25, "a@b.org", Tls.STARTTLS),
        ),
    ],
)
def test_parse_smtp(url: str, server: SmtpServer) -> None:
    assert parse_smtp(url) == server


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtps://mail.example.org", "is not an SMTP URL"),
        ("mail.example.org", "is not an SMTP URL"),
        ("smtp://", "has no host"),
        ("smtp://mail.example.org:abc", "not a valid URL"),
        ("smtp://mail.example.org:0", "port 0"),
        ("smtp://mail.example.org?tls=maybe", "is not one of starttls | ssl | none"),
        ("smtp://mail.example.org?auth=plain", "unknown parameter"),
        ("smtp://mail.example.org/inbox", "must not have a path"),
    ],
)
def test_parse_smtp_refuses(url: str, expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected):
        parse_smtp(url)


def test_a_password_in_the_smtp_url_is_refused_without_repeating_it() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_smtp("smtp://alerts:hunter2@mail.example.org:587")
    assert "--smtp-password-file" in refused.value.message
    assert "hunter2" not in refused.value.message


def test_secrets_stay_out_of_repr_and_str() -> None:
    settings = NotifySettings(
        smtp=parse_smtp("smtp://alerts@mail.example.org:587"),
        smtp_password="hunter2",
        smtp_from="odin@example.org",
        webhook_secret=b"s3cr3t-key",
    )
    for shown in (repr(settings), str(settings)):
        assert "hunter2" not in shown
        assert "s3cr3t" not in shown
        assert "mail.example.org" in shown


def test_the_default_sender_is_odin_at_this_host() -> None:
    assert NotifySettings().smtp_from == NotifySettings.default_from()
    assert NotifySettings.default_from().startswith("odin@")


def test_read_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("  s3cr3t\n")
    path.chmod(0o600)
    assert read_secret_file(path, "webhook secret") == "s3cr3t"


@pytest.mark.parametrize(("content", "expected"), [(None, "does not exist"), ("\n ", "is empty")])
def test_read_secret_file_refuses(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
        path.chmod(0o600)
    with pytest.raises(InvalidInput, match=expected) as refused:
        read_secret_file(path, "webhook secret")
    assert str(path) in refused.value.message


def test_read_secret_file_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a regular file"):
        read_secret_file(tmp_path, "webhook secret")


@pytest.mark.skipif(os.geteuid() != 0, reason="the mode is checked only when running as root")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_read_secret_file_refuses_a_file_open_to_others_as_root(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret"
    path.write_text("s3cr3t")
    path.chmod(mode)
    with pytest.raises(InvalidInput) as refused:
        read_secret_file(path, "SMTP password")
    assert f"chmod 600 {path}" in refused.value.message
    assert "s3cr3t" not in refused.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="as root, an open mode is refused")
def test_read_secret_file_accepts_any_mode_when_not_root(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("s3cr3t")
    path.chmod(0o644)
    assert read_secret_file(path, "SMTP password") == "s3cr3t"
