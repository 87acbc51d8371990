"""Alerts end to end on one node: a real engine, real jobs as a real user, a real SMTP
server and a real HTTP receiver (needs root)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from engine_harness import (
    Engine,
    free_port,
    job_id_of,
    needs_root,
    odin,
    user_dir,
    wait_for,
    write_job,
)
from receivers import Receiver, verify

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root to run engines and jobs as users"),
    pytest.mark.slow,
]

ALICE = "odin-alice"
FAIL = "import sys\nprint('disk full')\nsys.exit(3)\n"
SECRET = b"0123456789abcdef0123456789abcdef"


class Inbox:
    """What a real SMTP server received."""

    def __init__(self) -> None:
        self.mails: list[tuple[float, Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((time.time(), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box, port = Inbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def alerting_engine(world_dir: Path, inbox: tuple[Inbox, int]) -> Iterator[Engine]:
    secret = world_dir / "webhook.secret"
    secret.write_bytes(SECRET)
    os.chmod(secret, 0o600)
    settings = world_dir / "engine.yml"  # the mail settings from the file, the secret by flag
    settings.write_text(f"smtp: smtp://127.0.0.1:{inbox[1]}\nsmtp_from: odin@example.org\n")
    engine = Engine(
        root=world_dir,
        extra=["--config", str(settings), "--webhook-secret-file", str(secret)],
    ).start()
    try:
        yield engine
    finally:
        engine.stop()


def deploy(
    engine: Engine, world_dir: Path, name: str, code: str, extra: str, schedule: str = "never"
) -> str:
    home = user_dir(world_dir, ALICE)
    path = write_job(home, name, code, extra=extra, schedule=schedule)
    odin("deploy", "-f", str(path), engine=engine, user=ALICE)
    return job_id_of(path)


def alerts(engine: Engine, job_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = odin(
        "alerts", "-i", job_id, "-o", "json", engine=engine, user=ALICE
    ).json()
    return found


def ended(engine: Engine, job_id: str) -> list[dict[str, Any]]:
    runs = odin("log", "-i", job_id, "-o", "json", "-n", "100", engine=engine, user=ALICE).json()
    return [r for r in runs if r["status"] not in ("planned", "running")]


def test_a_failure_mails_once_within_five_seconds(
    alerting_engine: Engine, world_dir: Path, inbox: tuple[Inbox, int]
) -> None:
    box, _ = inbox
    notify = "  notify:\n    - to: mailto:ops@example.org\n      on: [failure]\n"
    job_id = deploy(alerting_engine, world_dir, "mailer", FAIL, notify)
    odin("run", "-i", job_id, engine=alerting_engine, user=ALICE)
    wait_for(lambda: box.mails, timeout=15, what="a mail")
    (run,) = wait_for(lambda: ended(alerting_engine, job_id), what="the run's end")
    time.sleep(1.5)  # a second mail would come now if any did
    assert len(box.mails) == 1
    arrived, mail = box.mails[0]
    assert arrived - run["finished_at"] < 5.0
    assert mail["To"] == "ops@example.org" and "failure" in mail["Subject"]
    parts = {part.get_content_type(): part.get_payload(decode=True) for part in mail.walk()}
    assert b"disk full" in parts["text/plain"] and b"disk full" in parts["text/html"]
    assert b"exited 3" in parts["text/plain"]
    (alert,) = alerts(alerting_engine, job_id)
    assert (alert["state"], alert["attempts"], alert["event"]) == ("sent", 1, "failure")


def test_a_webhook_answering_500_500_200_gets_three_attempts_with_one_key(
    alerting_engine: Engine, world_dir: Path
) -> None:
    receiver = Receiver(free_port(), statuses=[500, 500]).start()
    try:
        notify = f"  notify:\n    - to: {receiver.url}\n"
        job_id = deploy(alerting_engine, world_dir, "hooked", FAIL, notify)
        odin("run", "-i", job_id, engine=alerting_engine, user=ALICE)
        wait_for(lambda: len(receiver.got) >= 3, timeout=30, what="three attempts")
        time.sleep(1.0)
        assert len(receiver.got) == 3
        (run,) = ended(alerting_engine, job_id)
        assert receiver.keys() == [f"{run['id']}:failure"] * 3
        for request in receiver.got:
            header = request.headers["x-odin-signature"]
            assert verify(SECRET, header, request.body, time.time())
            assert not verify(b"another secret", header, request.body, time.time())
        body = receiver.got[-1].json()
        assert body["event"] == "failure" and body["job"]["id"] == job_id
        assert body["run"]["id"] == run["id"] and body["run"]["exit_code"] == 3
        assert "disk full" in body["run"]["output_tail"]
        gaps = [b.at - a.at for a, b in zip(receiver.got, receiver.got[1:], strict=False)]
        assert gaps[0] >= 0.9 and gaps[1] >= 1.9  # backoff: 1 s, then 2 s
        alert = wait_for(
            lambda: [a for a in alerts(alerting_engine, job_id) if a["state"] == "sent"],
            what="the delivery recorded",
        )[0]
        assert alert["attempts"] == 3 and alert["outcome"] == "HTTP 200"
    finally:
        receiver.stop()


def test_a_run_past_warn_after_is_overdue_once(alerting_engine: Engine, world_dir: Path) -> None:
    receiver = Receiver(free_port()).start()
    try:
        notify = f"  notify:\n    - to: {receiver.url}\n      on: [overdue]\n  warn_after: 1s\n"
        job_id = deploy(alerting_engine, world_dir, "slow", "import time\ntime.sleep(5)\n", notify)
        odin("run", "-i", job_id, engine=alerting_engine, user=ALICE)
        wait_for(lambda: ended(alerting_engine, job_id), timeout=20, what="the run's end")
        time.sleep(1.5)
        assert [r.json()["event"] for r in receiver.got] == ["overdue"]
        (alert,) = alerts(alerting_engine, job_id)
        assert alert["event"] == "overdue" and alert["state"] == "sent"
    finally:
        receiver.stop()


FLAGGED = (
    "import pathlib, sys\n"
    "flag = pathlib.Path('verdict')  # in its workdir\n"
    "sys.exit(0 if flag.read_text().strip() == 'ok' else 1)\n"
)


def test_twenty_failures_with_after_three_give_one_alert_then_one_recovery(
    alerting_engine: Engine, world_dir: Path
) -> None:
    receiver = Receiver(free_port()).start()
    try:
        home = user_dir(world_dir, ALICE)
        verdict = home / "verdict"
        verdict.write_text("fail")
        os.chown(verdict, home.stat().st_uid, home.stat().st_gid)
        path = write_job(
            home,
            "flaky",
            FLAGGED,
            extra=f"  workdir: {home}\n  notify:\n    - to: {receiver.url}\n      after: 3\n",
        )
        job_id = job_id_of(path)
        odin("deploy", "-f", str(path), engine=alerting_engine, user=ALICE)
        for count in range(1, 21):
            odin("run", "-i", job_id, engine=alerting_engine, user=ALICE)
            wait_for(lambda n=count: len(ended(alerting_engine, job_id)) >= n, what=f"run {count}")
        verdict.write_text("ok")
        odin("run", "-i", job_id, engine=alerting_engine, user=ALICE)
        wait_for(lambda: len(receiver.got) >= 2, timeout=20, what="the recovery alert")
        time.sleep(1.0)
        runs = sorted(ended(alerting_engine, job_id), key=lambda r: r["instant"])
        assert [r["status"] for r in runs] == ["failed"] * 20 + ["succeeded"]
        assert receiver.keys() == [f"{runs[2]['id']}:failure", f"{runs[20]['id']}:recovery"]
        assert "20 failed run(s) in a row" in receiver.got[1].json()["detail"]
    finally:
        receiver.stop()


def test_ticks_that_passed_while_the_engine_was_down_give_one_missed_alert(
    alerting_engine: Engine, world_dir: Path
) -> None:
    receiver = Receiver(free_port()).start()
    try:
        notify = f"  grace: 1s\n  notify:\n    - to: {receiver.url}\n      on: [missed]\n"
        job_id = deploy(
            alerting_engine, world_dir, "ticking", "pass\n", notify, schedule="every 2 seconds"
        )
        wait_for(lambda: ended(alerting_engine, job_id), what="a first run")
        alerting_engine.stop()
        time.sleep(7.0)  # three ticks or more pass with no engine
        alerting_engine.start()
        told = wait_for(
            lambda: [r for r in receiver.got if r.json()["run"] is None],
            timeout=20,
            what="the missed alert for the ticks nobody planned",
        )
        time.sleep(2.0)
        keys = receiver.keys()
        assert len(keys) == len(set(keys))  # none told twice
        (alert,) = told
        body = alert.json()
        assert body["event"] == "missed" and body["job"]["id"] == job_id
        assert "passed while no leader planned them" in body["detail"]
        assert "catchup: latest" in body["detail"]
    finally:
        receiver.stop()
