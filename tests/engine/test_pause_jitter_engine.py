"""Pause until an instant and jitter on a real engine, through the real CLI as a real user
(issue #26; needs root)."""

from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path
from typing import Any

import pytest

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, wait_for, write_job

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root to create users and run jobs as them"),
    pytest.mark.slow,
]

ALICE = "odin-alice"
EARLY_S = 0.01  # a timer may fire this much before its moment (the loop's clock resolution)


def runs_of(engine: Engine, job_id: str) -> list[dict[str, Any]]:
    found = odin("log", "-i", job_id, "-o", "json", "-n", "200", engine=engine, user=ALICE)
    runs: list[dict[str, Any]] = found.json()
    return runs


def started(engine: Engine, job_id: str) -> list[dict[str, Any]]:
    return [r for r in runs_of(engine, job_id) if r["started_at"] is not None]


def test_a_job_paused_until_a_moment_does_not_run_until_then_and_resumes_by_itself(
    engine: Engine, world_dir: Path
) -> None:
    home = user_dir(world_dir, ALICE)
    yaml_path = write_job(home, "pulse", "print('pulse')\n", schedule="every second")
    job_id = job_id_of(yaml_path)
    odin("deploy", "-f", str(yaml_path), engine=engine, user=ALICE)
    wait_for(lambda: len(started(engine, job_id)) >= 2, what="two runs before the pause")

    until = math.ceil(time.time()) + 3
    moment = dt.datetime.fromtimestamp(until, dt.UTC).isoformat()
    done = odin("modify", "-i", job_id, "--pause-until", moment, engine=engine, user=ALICE)
    asked = time.time()  # runs planned before this (1 s ahead) may still start
    assert "Paused until" in done.stdout
    described = odin("describe", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    assert described["paused"] is False and described["paused_until"] is not None
    assert dt.datetime.fromisoformat(described["paused_until"]).timestamp() == until
    assert dt.datetime.fromisoformat(described["next_runs"][0]).timestamp() == until
    listed = odin("list", engine=engine, user=ALICE).stdout
    assert "paused until" in listed
    shown = odin("describe", "-i", job_id, engine=engine, user=ALICE).stdout
    assert "Paused:" in shown and "until " in shown.split("Paused:", 1)[1].splitlines()[0]

    wait_for(
        lambda: len([r for r in started(engine, job_id) if r["started_at"] >= until]) >= 3,
        timeout=30,
        what="runs after the pause",
    )
    runs = runs_of(engine, job_id)
    during = [
        r
        for r in runs
        if (r["started_at"] is not None and asked + 1.5 < r["started_at"] < until - EARLY_S)
        or (r["reason"] == "schedule" and asked + 1.5 < r["instant"] < until)
    ]
    assert during == [], "a run started, or a tick was planned, during the pause"
    caught_up = [r for r in runs if r["reason"] == "catchup"]
    assert [r["instant"] for r in caught_up] == [until - 1]  # catchup: latest, at the end
    assert caught_up[0]["started_at"] >= until - EARLY_S
    resumed = [r for r in runs if r["reason"] == "schedule" and r["instant"] >= until]
    assert min(r["instant"] for r in resumed) == until  # the tick at its very end runs
    after = odin("describe", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    assert after["paused_until"] is None and after["paused"] is False


def test_a_jittered_run_starts_inside_its_tick_at_its_recorded_jitter(
    engine: Engine, world_dir: Path
) -> None:
    home = user_dir(world_dir, ALICE)
    yaml_path = write_job(
        home, "shaky", "print('shaky')\n", schedule="every 2 seconds", extra="  jitter: 2s\n"
    )
    job_id = job_id_of(yaml_path)
    deployed = odin("deploy", "-f", str(yaml_path), "-o", "json", engine=engine, user=ALICE)
    assert deployed.json()["job"]["jitter_s"] == 2.0
    shown = odin("describe", "-i", job_id, engine=engine, user=ALICE).stdout
    assert "Jitter:" in shown and "up to 2s after each tick" in shown

    def scheduled() -> list[dict[str, Any]]:
        return [r for r in started(engine, job_id) if r["reason"] == "schedule"]

    wait_for(lambda: len(scheduled()) >= 5, timeout=40, what="5 runs")
    runs = scheduled()
    for run in runs:
        jitter, instant, start = run["jitter_s"], run["instant"], run["started_at"]
        assert 0.0 <= jitter < 2.0, run
        assert instant + jitter - EARLY_S <= start < instant + 2.0, run  # inside its tick
        assert start - (instant + jitter) < 0.5, run  # at its recorded jitter
        assert run["lag"] == pytest.approx(start - instant - jitter, abs=1e-6)
    assert any(run["jitter_s"] > 0 for run in runs)
    assert len({run["jitter_s"] for run in runs}) > 1  # drawn for each tick

    several = ("-s", "every hour, spread over 10 minutes", "-s", "0 9 * * 1-5")
    odin("modify", "-i", job_id, *several, engine=engine, user=ALICE)
    described = odin("describe", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    assert described["schedule"] == "every hour, spread over 10 minutes; 0 9 * * 1-5"
    assert described["schedule_text"] == "every hour, spread over 10 minutes; cron: 0 9 * * 1-5"
    offset = described["spread_offset_s"]
    assert 0 <= offset < 600
    hourly = [dt.datetime.fromisoformat(t) for t in described["next_runs"]]
    assert any(t.minute * 60 + t.second == offset for t in hourly)
    files = odin("recover", "-i", job_id, "-d", str(home), "--force", engine=engine, user=ALICE)
    assert "shaky.yml" in files.stdout
    assert (
        "  schedule:\n  - every hour, spread over 10 minutes\n  - 0 9 * * 1-5\n"
        in (home / "shaky.yml").read_text()
    )
