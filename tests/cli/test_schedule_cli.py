"""``odin schedule``: the human and JSON output, zones, --from/--count, and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from odin.cli.schedule_cmd import host_timezone, schedule

ODIN = Path(sys.executable).parent / "odin"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(schedule, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_json_object() -> None:
    code, out = invoke(
        "every Monday and Friday at 10:00",
        "--tz",
        "Europe/Dublin",
        "--from",
        "2025-03-28T12:00:00+00:00",
        "--count",
        "3",
        "-o",
        "json",
    )
    assert code == 0
    assert json.loads(out) == {
        "schedule": "every Monday and Friday at 10:00",
        "description": "every Monday and Friday at 10:00",
        "cron": ["0 10 * * 1,5"],
        "timezone": "Europe/Dublin",
        "next": [
            "2025-03-31T10:00:00+01:00",
            "2025-04-04T10:00:00+01:00",
            "2025-04-07T10:00:00+01:00",
        ],
    }


def test_human_output_defaults_to_five_runs() -> None:
    code, out = invoke("every 23rd at 13:05", "--tz", "UTC", "--from", "2025-01-01T00:00")
    assert code == 0
    assert "every 23rd at 13:05" in out and "5 13 23 * *" in out and "UTC" in out
    runs = [line for line in out.splitlines() if "T13:05:00+00:00" in line]
    assert len(runs) == 5 and "2025-05-23T13:05:00+00:00" in runs[-1]


def test_naive_from_is_read_in_the_zone_and_the_text_zone_wins() -> None:
    code, out = invoke(
        "every day at 09:00 in America/New_York", "--tz", "UTC", "--from", "2025-07-01T08:59",
        "-n", "1", "-o", "json",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["timezone"] == "America/New_York"
    assert report["next"] == ["2025-07-01T09:00:00-04:00"]


def test_never_and_no_cron_form() -> None:
    code, out = invoke("never", "--tz", "UTC")
    assert code == 0 and "Cron:        none" in out and "No upcoming runs" in out
    report = json.loads(invoke("every 3 days", "--tz", "UTC", "-o", "json")[1])
    assert report["cron"] is None


def test_default_from_is_now() -> None:
    before = datetime.now(UTC)
    report = json.loads(invoke("every second", "--tz", "UTC", "-n", "1", "-o", "json")[1])
    after = datetime.now(UTC)
    first = datetime.fromisoformat(report["next"][0])
    assert before < first <= after + timedelta(seconds=1)


def test_json_error_exits_2() -> None:
    code, out = invoke("every Satruday", "--tz", "UTC", "-o", "json")
    assert code == 2
    error = json.loads(out)["error"]
    assert "Satruday" in error and "position 6" in error and '"Saturday"' in error


def test_bad_from_is_a_usage_error() -> None:
    result = CliRunner().invoke(schedule, ["every day", "--from", "soon"])
    assert result.exit_code == 2 and "ISO-8601" in result.output


@pytest.mark.slow
@pytest.mark.skipif(not ODIN.exists(), reason="the odin entry point is not installed")
def test_real_command_prints_a_clean_error() -> None:
    done = subprocess.run(
        [str(ODIN), "schedule", "every Feb 30th"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "February 30th never exists" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_host_timezone_prefers_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert host_timezone() == "Asia/Tokyo"
    monkeypatch.delenv("TZ")
    assert host_timezone()  # /etc/timezone or /etc/localtime, else UTC
