"""The SDKs against a real engine: records in stats, results drive status and links,
forged tokens and outsiders refused, and the same code run by hand (needs root)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, wait_for, write_job

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root to create users and run jobs as them"),
    pytest.mark.slow,
]

ALICE = "odin-alice"
SDK = Path(__file__).resolve().parents[2] / "sdk"
GO = "/usr/bin/go"

PY_JOB = """\
import pyodin
odin = pyodin.Odin(config="{name}.yml")
url = "http://127.0.0.1/wiki/{name}"
odin.watch("url fetched", url)
odin.watch("count", 42)
if odin.condition("url not empty", url != ""):
    odin.watch("branch", "taken")
if odin.condition("url is empty", url == ""):
    odin.watch("branch", "wrong")
odin.result("finished", {status})
"""

NODE_JOB = """\
const odin = require('odin')({{config: '{name}.yml'}});
const url = 'http://127.0.0.1/wiki/{name}';
odin.watch('url fetched', url);
odin.watch('count', 42);
if (odin.condition('url not empty', url !== '')) {{ odin.watch('branch', 'taken'); }}
if (odin.condition('url is empty', url === '')) {{ odin.watch('branch', 'wrong'); }}
odin.result('finished', {status});
"""

GO_JOB = """\
package main

import "github.com/theycallmemac/odin/odin-libraries/go/odinlib"

func main() {{
	odin, _ := odinlib.Setup("{name}.yml")
	url := "http://127.0.0.1/wiki/{name}"
	odin.Watch("url fetched", url)
	odin.Watch("count", 42)
	if odin.Condition("url not empty", url != "") {{
		odin.Watch("branch", "taken")
	}}
	if odin.Condition("url is empty", url == "") {{
		odin.Watch("branch", "wrong")
	}}
	odin.Result("finished", {status})
}}
"""

JOBS = {"python": PY_JOB, "node": NODE_JOB, "go": GO_JOB}
EXPECTED = [
    ("watch", "url fetched", "http://127.0.0.1/wiki/{name}"),
    ("watch", "count", 42),
    ("condition", "url not empty", True),
    ("watch", "branch", "taken"),
    ("condition", "url is empty", False),
    ("result", "finished", "{status}"),
]


def finished(engine: Engine, job_id: str) -> list[dict[str, object]]:
    runs = odin("log", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    return [r for r in runs if r["status"] not in ("planned", "running")]


def expected(name: str, status: int) -> list[tuple[str, str, object]]:
    out: list[tuple[str, str, object]] = []
    for kind, desc, value in EXPECTED:
        if value == "{status}":
            value = status
        elif isinstance(value, str):
            value = value.format(name=name)
        out.append((kind, desc, value))
    return out


def languages() -> list[str]:
    found = ["python", "node"]
    if os.path.exists(GO):
        found.append("go")
    return found


@pytest.mark.parametrize("language", languages())
def test_sdk_records_status_and_links(engine: Engine, world_dir: Path, language: str) -> None:
    home = user_dir(world_dir, ALICE)
    good = write_job(
        home,
        f"good_{language}",
        JOBS[language].format(name=f"good_{language}", status=0),
        language=language,
    )
    bad = write_job(
        home,
        f"bad_{language}",
        JOBS[language].format(name=f"bad_{language}", status=1),
        language=language,
    )
    after = write_job(home, f"after_{language}", "print('after')\n")
    ids = {}
    for path in (good, bad, after):
        odin("deploy", "-f", str(path), engine=engine, user=ALICE, timeout=300)
        ids[path.stem] = job_id_of(path)
    odin("link", "-f", ids[bad.stem], "-t", ids[after.stem], engine=engine, user=ALICE)

    for stem, status in ((good.stem, 0), (bad.stem, 1)):
        odin("run", "-i", ids[stem], engine=engine, user=ALICE)
        runs = wait_for(lambda stem=stem: finished(engine, ids[stem]), what=f"{stem} to finish")
        assert runs[0]["status"] == ("succeeded" if status == 0 else "failed"), runs[0]
        assert runs[0]["exit_code"] == status
        stats = odin("stats", "-i", ids[stem], "-o", "json", engine=engine, user=ALICE).json()
        got = [(r["type"], r["desc"], r["value"]) for r in stats]
        assert got == expected(stem, status)
        assert [r["seq"] for r in stats] == list(range(1, len(stats) + 1))
        log = odin("log", "-i", ids[stem], engine=engine, user=ALICE).stdout
        if status:
            assert "finished" in log

    # The failed run did not fire the success link.
    assert finished(engine, ids[after.stem]) == []


ESM_JOB = """\
import odin from 'odin';
const job = odin({config: 'esm.yml'});
job.watch('module', 'esm');
job.result('imported', 0);
"""


def test_node_es_module_can_import_the_sdk(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    yaml_path = write_job(home, "esm", "", language="node")
    (home / "esm.js").unlink()
    yaml_path.write_text(yaml_path.read_text().replace("file: esm.js", "file: esm.mjs"))
    (home / "esm.mjs").write_text(ESM_JOB)
    odin("deploy", "-f", str(yaml_path), engine=engine, user=ALICE)
    job_id = job_id_of(yaml_path)
    odin("run", "-i", job_id, engine=engine, user=ALICE)
    runs = wait_for(lambda: finished(engine, job_id), what="the ES module job")
    assert runs[0]["status"] == "succeeded", odin(
        "log", "-i", job_id, "--output", engine=engine
    ).stdout
    stats = odin("stats", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    assert [(r["type"], r["value"]) for r in stats] == [("watch", "esm"), ("result", 0)]


FORGER = """\
import http.client, json, os, socket, time, urllib.parse

class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.environ["ODIN_SOCKET"])

def post(run_id, token, value=1):
    conn = Conn("odin")
    body = json.dumps({"records": [{"seq": 1, "ts": time.time(), "type": "watch", "desc": "x", "value": value}]})
    path = "/v1/runs/" + urllib.parse.quote(run_id, safe="") + "/records"
    conn.request("POST", path, body=body, headers={"Authorization": "Bearer " + token,
                                                  "Content-Type": "application/json"})
    return conn.getresponse().status

run_id, token = os.environ["ODIN_RUN_ID"], os.environ["ODIN_RUN_TOKEN"]
print("wrong-token", post(run_id, token[:-2] + "xx"))
print("other-run", post(run_id.split("@")[0] + "@2020-01-01T00:00:00Z", token))
print("own", post(run_id, token))
print("huge", post(run_id, token, 10**30))
print("TOKEN", run_id, token, flush=True)
time.sleep(30)
"""


def test_forged_tokens_and_outsiders_are_refused(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    job_id = job_id_of(write_job(home, "forger", FORGER))
    odin("deploy", "-f", str(home / "forger.yml"), engine=engine, user=ALICE)
    odin("run", "-i", job_id, engine=engine, user=ALICE)

    def token_line() -> str | None:
        runs = odin("log", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
        running = [r for r in runs if r["status"] == "running"]
        if not running:
            return None
        return running[0]["id"]

    run_id = wait_for(token_line, what="the forger to run")
    output = _live_output(engine, run_id)
    assert "wrong-token 403" in output and "other-run 403" in output and "own 200" in output
    assert "huge 400" in output  # a number JSON cannot carry to every node: refused, not stored
    token = output.split("TOKEN ", 1)[1].split()[1]
    # The right token from a process outside the run is refused too.
    status = _post_records(engine.socket, run_id, token)
    assert status == 403
    odin("rm", "-i", job_id, engine=engine, user=ALICE)


def _live_output(engine: Engine, run_id: str) -> str:
    """Read the run's live output until its TOKEN line shows up."""
    import http.client
    import socket as sk

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = sk.socket(sk.AF_UNIX, sk.SOCK_STREAM)
            self.sock.connect(str(engine.socket))

    conn = Conn("odin", timeout=30)
    conn.request("GET", f"/v1/runs/{urllib.parse.quote(run_id, safe='')}/follow")
    response = conn.getresponse()
    seen = b""
    while b"TOKEN" not in seen or not seen.endswith(b"\n"):
        chunk = response.read1(4096)
        if not chunk:
            break
        seen += chunk
    conn.close()
    return seen.decode()


def _post_records(sock_path: Path, run_id: str, token: str) -> int:
    import http.client
    import socket as sk

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = sk.socket(sk.AF_UNIX, sk.SOCK_STREAM)
            self.sock.connect(str(sock_path))

    conn = Conn("odin", timeout=10)
    record = {"seq": 1, "ts": 1.0, "type": "watch", "desc": "x", "value": 1}
    conn.request(
        "POST",
        f"/v1/runs/{urllib.parse.quote(run_id, safe='')}/records",
        body=json.dumps({"records": [record]}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return conn.getresponse().status


@pytest.mark.parametrize("language", languages())
def test_same_code_runs_by_hand(world_dir: Path, language: str) -> None:
    home = user_dir(world_dir, ALICE)
    path = write_job(
        home,
        f"hand_{language}",
        JOBS[language].format(name=f"hand_{language}", status=0),
        language=language,
    )
    code = home / f"hand_{language}.{ {'python': 'py', 'node': 'js', 'go': 'go'}[language] }"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOCACHE": str(world_dir / "gocache"),
        "GOPATH": str(world_dir / "gopath"),
    }
    if language == "python":
        command = ["/usr/bin/python3", str(code)]
        env["PYTHONPATH"] = str(SDK / "python")
    elif language == "node":
        command = ["/usr/bin/node", str(code)]
        env["NODE_PATH"] = str(SDK / "node")
    else:
        (home / "go.mod").write_text(
            "module handjob\n\ngo 1.19\n\n"
            "require github.com/theycallmemac/odin/odin-libraries/go/odinlib v0.0.0\n"
            f"replace github.com/theycallmemac/odin/odin-libraries/go/odinlib => {SDK / 'go' / 'odinlib'}\n"
        )
        command = [GO, "run", str(code)]
    done = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [
        json.loads(line.removeprefix("odin: "))
        for line in done.stderr.splitlines()
        if line.startswith("odin: {")
    ]
    got = [(r["type"], r["desc"], r["value"]) for r in lines]
    assert got == expected(path.stem, 0)
