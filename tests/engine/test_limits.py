"""Bounds: oversized input is refused naming the limit; greedy jobs stop at theirs (needs root).

The resource test runs a fork bomb, a memory hog and an output flood of Alice's
at once while Bob's every-second job must keep firing on time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, wait_for, write_job
from odin import config
from real_users import ALICE, BOB, Request, deploy, finished, processes_of, raw_http

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root: real users"),
    pytest.mark.slow,
]


def _refused(result_text: str, limit: int) -> bool:
    return str(limit) in result_text or f"{limit // config.KIB} KiB" in result_text


def test_oversized_code_and_yaml_are_refused_naming_the_limit(
    engine: Engine, world_dir: Path
) -> None:
    home = user_dir(world_dir, ALICE)
    big_code = write_job(home, "bigcode", "#" + "x" * config.MAX_CODE_BYTES + "\n")
    wide_code = write_job(home, "widecode", "#" + "é" * (config.MAX_CODE_BYTES // 2 + 10) + "\n")
    padding = "# " + "y" * 100 + "\n"
    big_yaml = write_job(home, "bigyaml", "print(1)\n")
    big_yaml.write_text(big_yaml.read_text() + padding * (config.MAX_YAML_BYTES // 100 + 1))
    for path, limit in (
        (big_code, config.MAX_CODE_BYTES),
        (wide_code, config.MAX_CODE_BYTES),
        (big_yaml, config.MAX_YAML_BYTES),
    ):
        result = odin("deploy", "-f", str(path), engine=engine, user=ALICE, check=False)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result
        assert _refused(result.stderr, limit), (path.name, result.stderr)
    # Straight to the API, past the CLI's own checks.
    yaml = big_yaml.read_text()
    replies = raw_http(
        engine,
        ALICE,
        [
            Request("POST", "/v1/jobs", {"yaml": yaml, "code": "print(1)"}),
            Request(
                "POST", "/v1/jobs", {"yaml": "job: {}", "code": "x" * (config.MAX_CODE_BYTES + 1)}
            ),
            Request("POST", "/v1/jobs", "[" * 100_000),
        ],
    )
    limits: tuple[int | None, ...] = (config.MAX_YAML_BYTES, config.MAX_CODE_BYTES, None)
    for reply, bound in zip(replies, limits, strict=True):
        assert 400 <= reply.status < 500, reply
        if bound is not None:
            assert _refused(reply.text, bound), reply
    assert odin("list", "-o", "json", engine=engine, user=ALICE).json() == []


RECORDS = """
import json, os, socket
def post(records):
    body = json.dumps({{"records": records}}).encode()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(os.environ["ODIN_SOCKET"])
    head = (f"POST /v1/runs/{{os.environ['ODIN_RUN_ID'].replace('@', '%40')}}/records HTTP/1.1\\r\\n"
            f"Host: odin\\r\\nAuthorization: Bearer {{os.environ['ODIN_RUN_TOKEN']}}\\r\\n"
            f"Content-Type: application/json\\r\\nContent-Length: {{len(body)}}\\r\\nConnection: close\\r\\n\\r\\n")
    sock.sendall(head.encode() + body)
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    print("REPLY", reply.split(b" ", 2)[1].decode(), reply.split(b"\\r\\n\\r\\n", 1)[1].decode())
rec = lambda i, value: {{"seq": i, "ts": 1.0, "type": "watch", "desc": "d", "value": value}}
post([rec(0, "x" * {big})])
post([rec(i, i) for i in range({many})])
post([rec(i, i) for i in range(3)])
"""


def test_oversized_records_are_refused_naming_the_limit(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    code = RECORDS.format(big=config.MAX_RECORD_BYTES + 1000, many=config.MAX_RECORDS_PER_RUN + 1)
    job = job_id_of(write_job(home, "records", code))
    deploy(engine, home / "records.yml")
    odin("run", "-i", job, engine=engine, user=ALICE)
    [run] = wait_for(lambda: finished(engine, job), what="the records run")
    out = odin("log", "-i", job, "--output", engine=engine, user=ALICE).stdout
    replies = [line.split(" ", 2)[1:] for line in out.splitlines() if line.startswith("REPLY")]
    assert [status for status, _ in replies] == ["413", "400", "200"], out
    assert str(config.MAX_RECORD_BYTES) in replies[0][1]
    assert str(config.MAX_RECORDS_PER_RUN) in replies[1][1]
    assert len(run["records"]) == 3


FORK_BOMB = """
import os, time
made = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        made += 1
except OSError as error:
    print("fork refused after", made, error.errno, flush=True)
time.sleep(60)
"""
MEMORY_HOG = """
chunks = []
try:
    while True:
        chunks.append(bytearray(256 * 1024 * 1024))
except MemoryError:
    print("hog stopped at", len(chunks) * 256, "MiB", flush=True)
    raise SystemExit(3)
"""
FLOOD = """
import sys
block = b"z" * (1 << 20)
for _ in range(64):
    sys.stdout.buffer.write(block)
"""


def test_greedy_jobs_stop_at_their_limits_while_another_runs_on_time(
    engine: Engine, world_dir: Path
) -> None:
    bob_home = user_dir(world_dir, BOB)
    ticker = job_id_of(write_job(bob_home, "tick", "print('tick')\n", schedule="every second"))
    deploy(engine, bob_home / "tick.yml", user=BOB)
    wait_for(lambda: len(finished(engine, ticker, BOB)) >= 2, what="bob's ticks")

    home = user_dir(world_dir, ALICE)
    greedy = {
        "bomb": write_job(home, "bomb", FORK_BOMB, extra="  timeout: 4s\n"),
        "hog": write_job(home, "hog", MEMORY_HOG, extra="  timeout: 30s\n"),
        "flood": write_job(home, "flood", FLOOD, extra="  timeout: 30s\n"),
    }
    for path in greedy.values():
        deploy(engine, path)
    window_start = time.time()
    peak = 0
    for path in greedy.values():
        odin("run", "-i", job_id_of(path), engine=engine, user=ALICE)

    def all_done() -> bool:
        nonlocal peak
        peak = max(peak, len(processes_of(ALICE)))
        return all(finished(engine, job_id_of(p)) for p in greedy.values())

    wait_for(all_done, timeout=60, interval=0.2, what="the greedy runs")
    window_end = time.time()

    bomb = finished(engine, job_id_of(greedy["bomb"]))[0]
    assert bomb["status"] == "timed_out"
    bomb_out = odin("log", "-i", job_id_of(greedy["bomb"]), "--output", engine=engine, user=ALICE)
    made = int(bomb_out.stdout.split("fork refused after")[1].split()[0])
    assert made < config.RLIMIT_NPROC and peak <= config.RLIMIT_NPROC + 5, (made, peak)
    wait_for(lambda: not processes_of(ALICE), timeout=10, what="alice's processes to be gone")

    hog = finished(engine, job_id_of(greedy["hog"]))[0]
    hog_out = odin("log", "-i", job_id_of(greedy["hog"]), "--output", engine=engine, user=ALICE)
    stopped = int(hog_out.stdout.split("hog stopped at")[1].split()[0])
    assert hog["status"] == "failed" and stopped <= config.RLIMIT_AS_BYTES // config.MIB

    flood = finished(engine, job_id_of(greedy["flood"]))[0]
    assert flood["status"] == "succeeded" and flood["output_bytes"] == 64 << 20
    assert flood["output_bytes"] - flood["dropped_bytes"] <= config.MAX_OUTPUT_BYTES

    ticks = [
        r
        for r in finished(engine, ticker, BOB)
        if window_start - 1 <= float(r["instant"]) <= window_end
    ]
    assert len(ticks) >= int(window_end - window_start) - 1, json.dumps(ticks)[:500]
    assert all(r["status"] == "succeeded" for r in ticks)
    late = [r["lag"] for r in ticks if r["lag"] is not None and r["lag"] > 0.5]
    assert not late, f"bob's job started late: {late}"
