"""The offline parts of exceptions in the CLI: ``odin schedule --except`` and
``odin calendar regions``; and how ``odin describe`` prints skipped ticks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from odin.cli.calendar_cmd import calendar
from odin.cli.schedule_cmd import schedule
from odin.cli.upcoming import upcoming_lines

ODIN = Path(sys.executable).parent / "odin"


def test_schedule_except_lists_the_runs_left_and_the_skipped_ticks() -> None:
    args = ["every day at 09:00", "--tz", "Europe/Dublin", "--from", "2026-12-23T12:00"]
    args += ["--except", "on public holidays in IE", "--except", "on weekends", "-n", "2"]
    result = CliRunner().invoke(schedule, [*args, "-o", "json"], catch_exceptions=False)
    report = json.loads(result.output)
    assert report["except"] == ["on public holidays in IE", "on weekends"]
    assert report["next"] == ["2026-12-24T09:00:00+00:00", "2026-12-28T09:00:00+00:00"]
    assert report["skipped"] == [
        {
            "at": "2026-12-25T09:00:00+00:00",
            "through": None,
            "rule": "public holiday in IE (Christmas Day)",
        },
        {
            "at": "2026-12-26T09:00:00+00:00",
            "through": None,
            "rule": "public holiday in IE (Saint Stephen's Day)",
        },
        {"at": "2026-12-27T09:00:00+00:00", "through": None, "rule": "on weekends"},
    ]
    human = CliRunner().invoke(schedule, args, catch_exceptions=False).output
    assert "2026-12-25T09:00:00+00:00: public holiday in IE (Christmas Day)" in human


def test_schedule_except_refuses_a_wrong_rule_and_a_calendar() -> None:
    for rule, words in (
        ("on public holidays in XX", 'unknown country code "XX"'),
        ("calendar: closed", "needs the engine"),
    ):
        done = subprocess.run(
            [str(ODIN), "schedule", "every hour", "--except", rule],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2 and words in done.stderr, done


def test_calendar_regions_lists_countries_and_subdivisions_offline() -> None:
    everything = CliRunner().invoke(calendar, ["regions", "-o", "json"], catch_exceptions=False)
    codes = {row["code"]: row for row in json.loads(everything.output)}
    assert codes["IE"]["name"] == "Ireland" and "SCT" in codes["GB"]["subdivisions"]
    gb = CliRunner().invoke(calendar, ["regions", "gb"], catch_exceptions=False).output
    assert "SCT" in gb and "Scotland" in gb
    ie = CliRunner().invoke(calendar, ["regions", "IE"], catch_exceptions=False).output
    assert "has no subdivisions" in ie


def test_describe_prints_runs_and_skips_in_time_order() -> None:
    job = {
        "next_runs": ["2026-12-24T09:00:00+00:00", "2026-12-27T00:00:00+00:00"],
        "skipped": [
            {
                "at": "2026-12-25T09:00:00+00:00",
                "through": "2026-12-26",
                "rule": "public holiday in IE (Christmas Day)",
                "moved_to": "2026-12-27T00:00:00+00:00",
            }
        ],
    }
    lines = upcoming_lines(job)
    assert len(lines) == 3
    assert "skipped through 2026-12-26: public holiday in IE (Christmas Day) (runs at" in lines[1]
    assert lines[2].endswith("(excluded ticks moved here)")
    assert len(upcoming_lines({"next_runs": ["2026-12-24T09:00:00+00:00"]})) == 1  # older engine
