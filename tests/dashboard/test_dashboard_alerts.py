"""The dashboard's alerts: a job page lists its alerts and destinations, the jobs table marks a
failing job; over real HTTP to a real engine that sent a real webhook (needs root)."""

from __future__ import annotations

import functools
import html
import re
from pathlib import Path

import pytest

from engine_harness import job_id_of, needs_root, odin, user_dir, wait_for, write_job
from hook_receiver import receiver
from test_dashboard_security import DashEngine, client, log_in_with_link

pytestmark = pytest.mark.skipif(needs_root, reason="needs root: jobs run as a real user")

ALICE = "odin-alice"
SECRET = "s3cret-hook-token"


def row_of(page: str, attribute: str, value: str) -> str:
    """The table row (``<tr ...>...</tr>``) whose ``attribute`` is ``value``."""
    found = re.search(rf'<tr {attribute}="{re.escape(value)}".*?</tr>', page, re.S)
    assert found, page
    return found.group(0)


def test_job_page_lists_alerts_and_the_jobs_table_marks_failing_jobs(
    world_dir: Path, alice: object
) -> None:
    engine = DashEngine(root=world_dir).start()
    try:
        with receiver() as hook:
            url = hook.url(f"/hook?token={SECRET}")
            extra = f'  notify:\n    - to: "{url}"\n      on: [failure]\n  warn_after: 10m\n'
            home = user_dir(world_dir / "jobs", ALICE)
            paths = [
                write_job(home, "fails", "raise SystemExit(1)\n", extra=extra),
                write_job(home, "fine", "print('ok')\n"),
            ]
            for path in paths:
                odin("deploy", "-f", str(path), engine=engine, user=ALICE)
            failing, fine = (job_id_of(path) for path in paths)
            for job in (failing, failing, fine):
                odin("run", "-i", job, engine=engine, user=ALICE)
                wait_for(functools.partial(_finished, engine, job), timeout=10, what="the run")
            wait_for(hook.requests, timeout=10, what="the failure alert")  # one per streak
            wait_for(lambda: _sent(engine, failing), timeout=10, what="the alert to be sent")

        browser = client(engine)
        log_in_with_link(browser, ALICE, engine)
        jobs = browser.get("/jobs").text
        assert "failing ×2" in row_of(jobs, "data-job-id", failing)
        assert 'class="badge failing"' in row_of(jobs, "data-job-id", failing)
        assert "failing" not in row_of(jobs, "data-job-id", fine)

        page = html.unescape(browser.get(f"/jobs/{failing}").text)
        assert SECRET not in page
        assert "<h2>Alerts</h2>" in page and "token=***" in page
        assert "Overdue after 10m" in page
        notify = re.search(r'<ul class="notify-list small" id="notify-list">.*?</ul>', page, re.S)
        assert notify and "token=***" in notify.group(0) and "on failure" in notify.group(0)
        [row] = re.findall(r'<tr data-alert-id="[^"]+" data-state="sent">.*?</tr>', page, re.S)
        assert "failure" in row and "HTTP 200" in row and "<td>1</td>" in row
        fragment = browser.get(f"/jobs/{failing}/live", headers={"HX-Request": "true"}).text
        assert fragment.count("data-alert-id=") == 1  # the live part refreshes the alerts too

        quiet = browser.get(f"/jobs/{fine}").text
        assert 'id="no-notify"' in quiet and 'id="alerts"' not in quiet
    finally:
        engine.stop()


def _finished(engine: DashEngine, job: str) -> bool:
    runs = odin("log", "-i", job, "-o", "json", engine=engine, user=ALICE).json()
    return bool(runs) and all(r["status"] not in ("planned", "running") for r in runs)


def _sent(engine: DashEngine, job: str) -> bool:
    found = odin("alerts", "-i", job, "-o", "json", engine=engine, user=ALICE).json()
    return len(found) == 1 and found[0]["state"] == "sent"
