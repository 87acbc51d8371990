"""One alert in every form it is sent: a subject line, plain text, HTML and a webhook JSON body.

The JSON body is serialized once, here, so that a webhook's signature covers exactly the bytes
sent; everything taken from a job or its output is escaped for HTML and cut to one line for
the subject.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import orjson

from odin import config
from odin.cluster.model import instant_label

MAX_SUBJECT_CHARS: Final = 200
ELLIPSIS: Final = "…"
_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class JobFacts:
    """What an alert says about its job."""

    id: str
    name: str
    owner: str


@dataclass(frozen=True)
class RunFacts:
    """What an alert says about its run (the output tail may be long; it is cut here)."""

    id: str
    instant: float
    node: str
    status: str
    exit_code: int | None
    duration: float | None
    result: str | None
    output_tail: str


@dataclass(frozen=True)
class Message:
    """An alert ready to send: ``body`` is the webhook's JSON document, as bytes."""

    key: str
    event: str
    subject: str
    text: str
    html: str
    body: bytes


def compose(
    *,
    event: str,
    key: str,
    job: JobFacts,
    run: RunFacts | None,
    detail: str,
    dashboard_url: str | None,
    at: float,
    test: bool = False,
) -> Message:
    """The alert ``key`` about ``event`` of ``job`` (and ``run``, if any) made at ``at``."""
    tail = last_bytes(_valid(run.output_tail), config.ALERT_OUTPUT_TAIL_BYTES) if run else ""
    link = dashboard_link(dashboard_url, job, run)
    document: dict[str, Any] = {
        "event": _valid(event),
        "key": _valid(key),
        "at": instant_label(at),
        "detail": _valid(detail),
        "test": test,
        "job": {"id": _valid(job.id), "name": _valid(job.name), "owner": _valid(job.owner)},
        "run": None if run is None else _run_document(run, tail),
        "dashboard_url": link,
    }
    facts = _facts(event, job, run, detail, link, key, test)
    subject = _subject(event, job, run, detail, test)
    return Message(
        key=key,
        event=event,
        subject=subject,
        text=_text(subject, facts, tail),
        html=_html(subject, facts, tail, link),
        body=orjson.dumps(document),
    )


def dashboard_link(base: str | None, job: JobFacts, run: RunFacts | None) -> str | None:
    """The dashboard page of the run (or of the job when there is no run), if there is one."""
    if not base:
        return None
    root = base.rstrip("/")
    if run is not None:
        return f"{root}/runs/{quote(run.id, safe='')}"
    return f"{root}/jobs/{quote(job.id, safe='')}"


def last_bytes(text: str, limit: int) -> str:
    """The end of ``text`` that fits in ``limit`` bytes of UTF-8, cut between characters."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    data = data[len(data) - limit :]
    start = 0
    while start < len(data) and data[start] & 0xC0 == 0x80:  # a continuation byte
        start += 1
    return data[start:].decode("utf-8")


def _run_document(run: RunFacts, tail: str) -> dict[str, Any]:
    return {
        "id": _valid(run.id),
        "instant": instant_label(run.instant),
        "node": _valid(run.node),
        "status": _valid(run.status),
        "exit_code": run.exit_code,
        "duration": run.duration,
        "result": None if run.result is None else _valid(run.result),
        "output_tail": tail,
    }


def _subject(event: str, job: JobFacts, run: RunFacts | None, detail: str, test: bool) -> str:
    head = f"[odin]{' [test]' if test else ''} {job.name} ({job.id}): {event}"
    if run is not None:
        short = run.id
        if run.id.startswith(f"{job.id}@"):
            short = f"{job.id[:4]}{ELLIPSIS}{run.id[len(job.id) :]}"
        head += f" — run {short} {_ending(run)}"
    elif detail:
        head += f" — {detail}"
    return _one_line(head, MAX_SUBJECT_CHARS)


def _ending(run: RunFacts) -> str:
    if run.exit_code is not None and run.exit_code != 0:
        return f"exited {run.exit_code}"
    return run.status.replace("_", " ")


def _facts(
    event: str,
    job: JobFacts,
    run: RunFacts | None,
    detail: str,
    link: str | None,
    key: str,
    test: bool,
) -> list[tuple[str, str]]:
    facts = [("Event", f"{event} (a test)" if test else event)]
    facts.append(("Job", f"{job.name} ({job.id}), owned by {job.owner}"))
    if run is not None:
        facts.append(("Run", f"{run.id} on node {run.node}"))
        status = run.status.replace("_", " ")
        if run.exit_code is not None:
            status += f", exit code {run.exit_code}"
        if run.duration is not None:
            status += f", after {run.duration:.1f} s"
        facts.append(("Status", status))
        if run.result is not None:
            facts.append(("Result", run.result))
    if detail:
        facts.append(("Detail", detail))
    if link is not None:
        facts.append(("Dashboard", link))
    facts.append(("Alert key", key))
    return [(name, _valid(value)) for name, value in facts]


def _text(subject: str, facts: list[tuple[str, str]], tail: str) -> str:
    lines = [subject, ""]
    lines += [f"{name}: {value}" for name, value in facts]
    if tail:
        lines += ["", "Last output:", tail.rstrip("\n")]
    return "\n".join(lines) + "\n"


def _html(subject: str, facts: list[tuple[str, str]], tail: str, link: str | None) -> str:
    rows = "".join(
        f'<tr><th align="left">{html.escape(name)}</th><td>{html.escape(value)}</td></tr>'
        for name, value in facts
        if name != "Dashboard"
    )
    parts = [
        "<!DOCTYPE html><html><body>",
        f"<h3>{html.escape(subject)}</h3>",
        f"<table>{rows}</table>",
    ]
    if link is not None:
        parts.append(f'<p><a href="{html.escape(link)}">Open it in the dashboard</a></p>')
    if tail:
        parts.append(f"<p>Last output:</p><pre>{html.escape(tail)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _one_line(text: str, limit: int) -> str:
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return line if len(line) <= limit else line[: limit - 1] + ELLIPSIS


def _valid(text: str) -> str:
    """``text`` as valid Unicode: lone surrogates (from undecodable output) become U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)
