"""``odin alerts``, ``odin notify test`` and the alert lines of ``odin describe``, against a real
engine that sends real webhooks to a real receiver on loopback (needs root: Alice's jobs)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, wait_for, write_job
from hook_receiver import Received, Receiver, receiver

pytestmark = pytest.mark.skipif(needs_root, reason="needs root: jobs run as a real user")

ALICE = "odin-alice"
SECRET = "s3cret-hook-token"
FAILS = "import sys\nprint('boom')\nsys.exit(1)\n"


@pytest.fixture(scope="module")
def world() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="odin-alerts-cli-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def engine(world: Path, alice: object) -> Iterator[Engine]:
    running = Engine(root=world).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with receiver() as found:
        yield found


def deploy(engine: Engine, world: Path, name: str, code: str, extra: str = "") -> str:
    path = write_job(user_dir(world / name, ALICE), name, code, extra=extra)
    odin("deploy", "-f", str(path), engine=engine, user=ALICE)
    return job_id_of(path)


def notify_yaml(url: str, *events: str) -> str:
    return f'  notify:\n    - to: "{url}"\n      on: [{", ".join(events)}]\n'


def test_a_failed_run_alerts_its_webhook_and_the_cli_shows_it(
    engine: Engine, world: Path, hook: Receiver
) -> None:
    url = hook.url(f"/hook?token={SECRET}")
    job = deploy(engine, world, "fails", FAILS, notify_yaml(url, "failure"))
    odin("run", "-i", job, engine=engine, user=ALICE)

    def posted() -> list[Received]:
        return [r for r in hook.requests() if r.body.get("event") == "failure"]

    [request] = wait_for(posted, timeout=10, what="the failure alert's POST")
    assert request.path == f"/hook?token={SECRET}"
    assert request.body["test"] is False

    def delivered() -> list[dict[str, Any]]:
        found = odin("alerts", "-i", job, "-o", "json", engine=engine, user=ALICE).json()
        return found if found and found[0]["state"] == "sent" else []

    [alert] = wait_for(delivered, timeout=10, what="the alert's state to be sent")
    assert (alert["job"], alert["event"], alert["attempts"]) == (job, "failure", 1)
    assert SECRET not in alert["to"] and alert["to"].endswith("token=***")
    assert alert["run"] and alert["run"].startswith(f"{job}@")

    table = odin("alerts", "-i", job, engine=engine, user=ALICE).stdout
    header, row = table.splitlines()
    for column in ("WHEN", "JOB", "EVENT", "TO", "STATE", "ATTEMPTS", "OUTCOME", "RUN"):
        assert column in header
    assert "failure" in row and "sent" in row and job in row and SECRET not in row
    assert job in odin("alerts", engine=engine, user=ALICE).stdout  # all of Alice's jobs

    described = odin("describe", "-i", job, engine=engine, user=ALICE).stdout
    assert "Notify:" in described and "token=***" in described and "on failure" in described
    assert SECRET not in described
    assert "(failing: 1 in a row)" in described

    before = len(hook.requests())
    done = odin("notify", "test", "-i", job, engine=engine, user=ALICE)
    [line] = done.stdout.splitlines()
    assert line.startswith("ok") and "token=***" in line and SECRET not in line
    tests = wait_for(lambda: hook.requests()[before:], timeout=10, what="the test alert")
    assert [(r.body["event"], r.body["test"]) for r in tests] == [("test", True)]


def test_notify_test_refuses_a_job_without_destinations(engine: Engine, world: Path) -> None:
    job = deploy(engine, world, "quiet", "print('hi')\n")
    done = odin("notify", "test", "-i", job, engine=engine, user=ALICE, check=False)
    assert done.returncode != 0 and not done.stdout
    assert f"job {job} has no notify: destinations" in done.stderr
    described = odin("describe", "-i", job, engine=engine, user=ALICE).stdout
    assert "Notify:" not in described and "failing" not in described
    empty = odin("alerts", "-i", job, engine=engine, user=ALICE).stdout
    assert empty.startswith(f"No alerts of job {job} yet")


def test_notify_test_fails_when_a_destination_fails(engine: Engine, world: Path) -> None:
    with receiver() as gone:
        url = gone.url()
    job = deploy(engine, world, "nobody", "print('hi')\n", notify_yaml(url, "failure"))
    done = odin("notify", "test", "-i", job, engine=engine, user=ALICE, check=False)
    assert done.returncode == 1
    assert done.stdout.startswith("failed") and "connect" in done.stdout  # nothing listens
    assert "1 of 1 destinations failed" in done.stderr
