"""The alert's forms: the webhook JSON document, the subject line, plain text and HTML."""

from __future__ import annotations

import dataclasses
import json

from notify_kit import JOB, RUN, failure_message
from odin import config
from odin.notify.message import last_bytes


def test_the_webhook_document() -> None:
    message = failure_message()
    assert json.loads(message.body) == {
        "event": "failure",
        "key": "a37b187f5930@2026-12-08T02:00:00Z:failure",
        "at": "2026-12-08T02:00:13Z",
        "detail": "",
        "test": False,
        "job": {"id": "a37b187f5930", "name": "backup", "owner": "alice"},
        "run": {
            "id": "a37b187f5930@2026-12-08T02:00:00Z",
            "instant": "2026-12-08T02:00:00Z",
            "node": "master-node",
            "status": "failed",
            "exit_code": 1,
            "duration": 12.5,
            "result": None,
            "output_tail": "copying...\ndisk full\n",
        },
        "dashboard_url": "https://odin.example.org/runs/a37b187f5930%402026-12-08T02%3A00%3A00Z",
    }
    assert message.key == "a37b187f5930@2026-12-08T02:00:00Z:failure"
    assert message.event == "failure"


def test_without_a_run_the_link_goes_to_the_job() -> None:
    message = failure_message(event="missed", run=None, detail="the 02:00 run did not start")
    document = json.loads(message.body)
    assert document["run"] is None
    assert document["dashboard_url"] == "https://odin.example.org/jobs/a37b187f5930"
    assert message.subject == ("[odin] backup (a37b187f5930): missed — the 02:00 run did not start")
    assert json.loads(failure_message(dashboard_url=None).body)["dashboard_url"] is None


def test_the_subject() -> None:
    assert failure_message().subject == (
        "[odin] backup (a37b187f5930): failure — run a37b…@2026-12-08T02:00:00Z exited 1"
    )
    timed_out = dataclasses.replace(RUN, status="timed_out", exit_code=None)
    assert failure_message(run=timed_out).subject.endswith("timed out")
    assert failure_message(test=True).subject.startswith("[odin] [test] backup")


def test_the_subject_is_one_short_line() -> None:
    job = dataclasses.replace(JOB, name="evil\r\nBcc: x@example.org\x00" + "n" * 400)
    subject = failure_message(job=job).subject
    assert len(subject) <= 200
    assert subject.isprintable()
    assert subject.endswith("…")


def test_the_output_tail_is_cut_on_a_character_boundary() -> None:
    output = "start\n" + "é" * config.ALERT_OUTPUT_TAIL_BYTES + "\ud800end"  # a lone surrogate
    message = failure_message(run=dataclasses.replace(RUN, output_tail=output))
    tail = json.loads(message.body)["run"]["output_tail"]
    assert tail.endswith("\ufffdend")
    assert len(tail.encode()) <= config.ALERT_OUTPUT_TAIL_BYTES
    assert "start" not in tail
    assert last_bytes("aé", 2) == "é"
    assert last_bytes("aé", 1) == ""
    assert last_bytes("short", 100) == "short"


def test_text_and_html_carry_the_same_facts_escaped() -> None:
    job = dataclasses.replace(JOB, name="<b>backup</b>")
    run = dataclasses.replace(RUN, output_tail="<script>alert(1)</script>\n")
    message = failure_message(job=job, run=run)
    for text in (message.text, message.html):
        for fact in ("a37b187f5930", "alice", "master-node", "exit code 1", RUN.id):
            assert fact in text
    assert "<script>" in message.text
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
    assert "&lt;b&gt;backup&lt;/b&gt;" in message.html
    assert "<pre>" in message.html
    link = "https://odin.example.org/runs/a37b187f5930%402026-12-08T02%3A00%3A00Z"
    assert link in message.text
    assert f'href="{link}"' in message.html
