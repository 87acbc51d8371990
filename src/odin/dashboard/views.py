"""What the pages show, computed from the service's plain data (pure: no I/O, no clock).

The service answers with the typed values of ``odin.engine.views``; the pages
turn those into the API's JSON data (``plain``), and these functions filter,
sort, summarise and shape that for templates and charts, so that the route
handlers stay thin and this part is tested alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from odin.jobs.durations import format_duration

FINISHED = frozenset({"succeeded", "failed", "timed_out", "skipped", "lost", "cancelled"})
SORT_KEYS = ("name", "next_run", "last_status", "success", "language")


def local_time(iso: str | None) -> str:
    """An ISO instant as the server's local wall time ('' for none)."""
    if not iso:
        return ""
    return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def plain(value: Any) -> Any:
    """A service answer as the API's JSON data (dicts and lists), as the CLI receives it."""
    return orjson.loads(orjson.dumps(value))


def success_rate(runs: Iterable[dict[str, Any]]) -> float | None:
    """Share of finished runs that succeeded (skipped runs do not count); None if none."""
    return success_share(r["status"] for r in runs)


def success_share(statuses: Iterable[str]) -> float | None:
    """``success_rate`` from the runs' statuses alone."""
    ended = [s for s in statuses if s in FINISHED and s != "skipped"]
    if not ended:
        return None
    return sum(1 for s in ended if s == "succeeded") / len(ended)


def filter_jobs(jobs: Sequence[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """Jobs whose id, name, description, language, schedule or owner contain ``query``."""
    needle = query.strip().lower()
    if not needle:
        return list(jobs)
    fields = ("id", "name", "description", "language", "schedule", "owner", "last_status")
    return [j for j in jobs if any(needle in str(j.get(f) or "").lower() for f in fields)]


def sort_jobs(jobs: Sequence[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    """Sort by one of ``SORT_KEYS``; jobs lacking the value go last either way."""
    key = key if key in SORT_KEYS else "name"
    present = [j for j in jobs if j.get(key) is not None]
    missing = [j for j in jobs if j.get(key) is None]
    present.sort(key=lambda j: (j[key], j["id"]), reverse=descending)
    missing.sort(key=lambda j: (str(j.get("name")), j["id"]))
    return present + missing


def run_rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs table: one row per run, newest first, times formatted."""
    return [
        {
            "id": r["id"],
            "scheduled": local_time(r.get("instant_iso")),
            "started": local_time(r.get("started_iso")),
            "lag": seconds(r.get("lag")),
            "duration": seconds(r.get("duration")),
            "node": r.get("node", ""),
            "status": r["status"],
            "reason": r.get("reason", ""),
            "result": r.get("result_desc") or r.get("message") or "",
            "exit_code": r.get("exit_code"),
        }
        for r in runs
    ]


def alert_rows(alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts table of a job's page: one row per alert (as the service sorts them, newest
    first), times formatted, the destination as the engine masked it."""
    return [
        {
            "id": a["id"],
            "event": a["event"],
            "time": local_time(a.get("created_at")),
            "to": a["to"],
            "state": a["state"],
            "attempts": a["attempts"],
            "outcome": a.get("outcome") or "",
            "detail": a.get("detail") or "",
            "next_attempt": local_time(a.get("next_attempt_at")),
            "run": a.get("run"),
        }
        for a in alerts
    ]


def duration(value: float | None) -> str:
    """Seconds as a job file writes them (``10m``, ``1h30m``); '' for none."""
    return "" if value is None else format_duration(value)


def clip_output(output: dict[str, Any], limit: int) -> dict[str, Any]:
    """The service's output answer with at most ``limit`` characters of text (the end kept)."""
    text = str(output.get("output") or "")
    if len(text) <= limit:
        return output
    return {**output, "output": text[-limit:], "clipped": len(text) - limit}


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def chart_data(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """uPlot series: duration and lag per finished run, and each numeric ``watch`` series.

    x values are Unix seconds, ascending (uPlot needs sorted x). A watch series
    is named by its ``desc``; non-numeric watch values are left out.
    """
    ordered = sorted(runs, key=lambda r: r["instant"])
    timed = [r for r in ordered if r.get("duration") is not None]
    watches: dict[str, list[tuple[float, float]]] = {}
    for run in ordered:
        for record in run.get("records", ()):
            if record.get("type") == "watch" and is_number(record.get("value")):
                point = (float(record["ts"]), float(record["value"]))
                watches.setdefault(str(record["desc"]), []).append(point)
    return {
        "runs": {
            "x": [r["instant"] for r in timed],
            "duration": [r["duration"] for r in timed],
            "lag": [r.get("lag") for r in timed],
        },
        "watch": {
            name: {"x": [p[0] for p in sorted(points)], "y": [p[1] for p in sorted(points)]}
            for name, points in sorted(watches.items())
        },
    }


def record_history(runs: Sequence[dict[str, Any]], kinds: Iterable[str]) -> list[dict[str, Any]]:
    """The ``condition``/``result`` records of these runs, newest first, with their run id."""
    wanted = set(kinds)
    rows = [
        {
            "run": run["id"],
            "time": local_time(dt.datetime.fromtimestamp(rec["ts"], dt.UTC).isoformat()),
            "ts": rec["ts"],
            "type": rec["type"],
            "desc": rec.get("desc", ""),
            "value": _show(rec.get("value")),
        }
        for run in runs
        for rec in run.get("records", ())
        if rec.get("type") in wanted
    ]
    return sorted(rows, key=lambda r: r["ts"], reverse=True)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def fingerprint(*parts: Any) -> str:
    """A short digest of what a page shows; the event stream pushes when it changes."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
