"""The job page lists the ticks a job's exceptions skip, each with its rule."""

from __future__ import annotations

from pathlib import Path

import jinja2

import odin.dashboard
from odin.dashboard import views

TEMPLATES = Path(odin.dashboard.__file__).parent / "templates"


def render(job: dict[str, object]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters.update(local_time=views.local_time, seconds=views.seconds)
    return env.get_template("_job_top.html").render(job=job)


JOB: dict[str, object] = {
    "id": "a37b187f5930",
    "name": "report",
    "description": "",
    "schedule": "every day at 09:00",
    "schedule_text": "every day at 09:00",
    "timezone": "Europe/Dublin",
    "language": "python",
    "file": "report.py",
    "owner": "odin-alice",
    "owner_uid": 1001,
    "last_status": None,
    "failing": 0,
    "timeout_s": None,
    "retries": 0,
    "overlap": "skip",
    "catchup": "latest",
    "links": {},
    "nodes": [],
    "updated_at": "2026-12-08T03:00:00+00:00",
    "version": 1,
    "paused": False,
    "paused_until": None,
    "jitter_s": None,
    "spread_offset_s": None,
    "not_planned": None,
    "next_runs": ["2026-12-24T09:00:00+00:00", "2026-12-27T00:00:00+00:00"],
    "exceptions": ["on public holidays in IE"],
    "on_excluded": "next",
    "skipped": [
        {
            "at": "2026-12-25T09:00:00+00:00",
            "through": "2026-12-26",
            "rule": "public holiday in IE (Christmas Day)",
            "moved_to": "2026-12-27T00:00:00+00:00",
        }
    ],
}


def test_the_job_page_shows_the_exceptions_and_the_skipped_ticks_with_their_rule() -> None:
    page = render(JOB)
    assert 'id="exceptions">on public holidays in IE' in page
    assert "run at the end of the exception" in page
    skipped = page.split('id="skipped-ticks">')[1].split("</ul>")[0]
    assert skipped.count("<li") == 1
    assert "through 2026-12-26: public holiday in IE (Christmas Day) → runs at" in skipped
    assert page.count("<li>") == 2  # the two runs


def test_a_job_without_exceptions_shows_no_skips() -> None:
    page = render({**JOB, "exceptions": [], "skipped": [], "on_excluded": "skip"})
    assert "skipped-ticks" not in page and 'id="exceptions"' not in page
