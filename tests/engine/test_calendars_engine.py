"""End to end: a calendar added with ``odin calendar add``, a job whose ``except:`` names it
(real engine, real CLI, real users; needs root)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, write_job

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root to create users and run jobs as them"),
    pytest.mark.slow,
]

ALICE, BOB = "odin-alice", "odin-bob"


def _calendar_file(directory: Path, first: dt.date, last: dt.date) -> Path:
    path = directory / "closed.yml"
    path.write_text(
        "calendar:\n  name: closed\n  description: the office is shut\n  except:\n"
        f"    - {first.isoformat()} to {last.isoformat()}\n    - on public holidays in IE\n"
    )
    stat = directory.stat()
    os.chown(path, stat.st_uid, stat.st_gid)
    return path


def test_a_calendar_skips_todays_ticks_and_stays_while_a_job_uses_it(
    engine: Engine, world_dir: Path
) -> None:
    home = user_dir(world_dir, ALICE)
    today = dt.datetime.now(dt.UTC).date()
    last = today + dt.timedelta(days=2)  # two days more: the test may cross midnight
    calendar = _calendar_file(home, today, last)
    odin("calendar", "add", "-f", str(calendar), engine=engine, user=ALICE)
    extra = "  timezone: UTC\n  except:\n    - calendar: closed\n"
    yaml_path = write_job(home, "report", "print('hi')\n", schedule="every hour", extra=extra)
    job_id = job_id_of(yaml_path)
    odin("deploy", "-f", str(yaml_path), engine=engine, user=ALICE)

    job = odin("describe", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    rule = f"calendar closed: {today.isoformat()} to {last.isoformat()}"
    assert job["exceptions"] == ["calendar: closed"] and job["on_excluded"] == "skip"
    assert job["skipped"][0]["rule"] == rule
    assert dt.datetime.fromisoformat(job["skipped"][0]["at"]).date() in (today, last)
    reopens = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
    assert [dt.datetime.fromisoformat(t) >= reopens for t in job["next_runs"]] == [True] * 5
    text = odin("describe", "-i", job_id, engine=engine, user=ALICE).stdout
    assert f"skipped through {last.isoformat()}: {rule}" in text
    listed = odin("list", "-o", "json", engine=engine, user=ALICE).json()
    assert listed[0]["next_run"] == job["next_runs"][0]

    refused = odin("calendar", "remove", "closed", engine=engine, user=ALICE, check=False)
    assert refused.returncode != 0 and job_id in refused.stderr, refused
    calendars = odin("calendar", "list", "-o", "json", engine=engine, user=ALICE).json()
    assert [(c["name"], c["jobs"]) for c in calendars] == [("closed", [job_id])]
    shown = odin("calendar", "describe", "closed", engine=engine, user=ALICE).stdout
    assert f"{today.isoformat()} to {last.isoformat()}" in shown

    # Bob has no calendar of that name: he cannot see Alice's, nor name it in a job.
    assert odin("calendar", "list", "-o", "json", engine=engine, user=BOB).json() == []
    theirs = odin("calendar", "describe", "closed", engine=engine, user=BOB, check=False)
    assert theirs.returncode != 0 and "no calendar named closed" in theirs.stderr
    bob_home = user_dir(world_dir, BOB)
    bobs = write_job(bob_home, "bobs", "print('bob')\n", schedule="every hour", extra=extra)
    denied = odin("deploy", "-f", str(bobs), engine=engine, user=BOB, check=False)
    assert denied.returncode != 0
    assert "line 13: job.except[0].calendar: no calendar named closed" in denied.stderr

    # Changing the calendar re-plans the job: with nothing excluded today, it runs within the hour.
    _calendar_file(home, last + dt.timedelta(days=30), last + dt.timedelta(days=31))
    odin("calendar", "add", "-f", str(calendar), engine=engine, user=ALICE)
    job = odin("describe", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    assert dt.datetime.fromisoformat(job["next_runs"][0]) < reopens - dt.timedelta(days=2)

    odin("remove", "-i", job_id, engine=engine, user=ALICE)
    odin("calendar", "remove", "closed", engine=engine, user=ALICE)
    assert odin("calendar", "list", "-o", "json", engine=engine, user=ALICE).json() == []
