"""The requests of docs/api.md, sent with a plain HTTP client over the socket (needs root).

The test starts a real engine, then runs this same file as a script *as Alice*
(``runuser``): httpx with a Unix-socket transport, no Odin code, sends what the
document's curl examples send (deploy, run, the runs, the output, an error, the
reference page and the OpenAPI document) and prints what came back. A user who is not
a member gets neither the page nor the document, even with the socket opened to all.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

BASE = "http://odin"
JOB = "5f3c2a1b0d9e"
YAML = (
    "provider:\n  name: odin\n  version: 1.0.0\njob:\n"
    f'  id: "{JOB}"\n  name: hello\n  language: python\n  file: hello.py\n'
    "  schedule: every day at 09:00\n"
)
CODE = 'print("hello from the API")\n'


def examples(socket: str) -> dict[str, Any]:
    """Send the document's requests as the calling user; what each answered."""
    import httpx

    seen: dict[str, Any] = {}
    with httpx.Client(transport=httpx.HTTPTransport(uds=socket), base_url=BASE) as http:
        seen["whoami"] = http.get("/v1/whoami").json()
        deployed = http.post("/v1/jobs", json={"yaml": YAML, "code": CODE})
        seen["deploy"] = [deployed.status_code, deployed.json()]
        started = http.post(f"/v1/jobs/{JOB}/runs")
        seen["run"] = [started.status_code, started.json()]
        deadline = time.monotonic() + 30
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            runs = http.get(f"/v1/jobs/{JOB}/runs", params={"limit": 5}).json()
            if runs and runs[0]["status"] not in ("planned", "running"):
                break
            time.sleep(0.2)
        seen["runs"] = runs
        output = http.get(f"/v1/runs/{runs[0]['id']}/output")
        seen["output"] = [output.status_code, output.json()]
        missing = http.get("/v1/jobs/000000000000")
        seen["missing"] = [missing.status_code, missing.json()]
        bad = http.post(
            "/v1/jobs", json={"yaml": YAML.replace("every day", "evry day"), "code": ""}
        )
        seen["bad"] = [bad.status_code, bad.json()]
        plan = http.post(
            "/v1/apply",
            json={"jobs": [{"yaml": YAML, "code": CODE, "source": "hello.yml"}], "dry_run": True},
        )
        seen["apply"] = [plan.status_code, plan.json()]
        page = http.get("/v1/reference")
        seen["reference"] = [page.status_code, page.headers["content-type"], page.text]
        document = http.get("/openapi.json")
        seen["openapi"] = [document.status_code, sorted(document.json().get("paths", {}))]
    return seen


if __name__ == "__main__":  # run as Alice's script: the shared helpers are in tests/, one up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine_harness import Engine, needs_root  # noqa: E402

ALICE, EVE = "odin-alice", "odin-eve"
pytestmark = pytest.mark.slow


def _as(user: str, socket: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["/usr/sbin/runuser", "-u", user, "--", sys.executable, __file__, str(socket)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.skipif(needs_root, reason="needs root: sends the requests as a real user")
def test_the_documented_requests_work_over_the_socket(engine: Engine) -> None:
    seen = _as(ALICE, engine.socket)
    assert seen["whoami"]["user"] == ALICE and seen["whoami"]["root"] is False
    status, deployed = seen["deploy"]
    assert status == 200 and deployed["job"]["id"] == JOB and deployed["updated"] is False
    assert seen["run"][0] == 200 and seen["run"][1]["job"] == JOB
    assert seen["runs"][0]["status"] == "succeeded", seen["runs"]
    assert seen["output"] == [
        200,
        {
            "run": seen["run"][1]["run"],
            "output": "hello from the API\n",
            "bytes": 19,
            "dropped": 0,
            "tail_only": False,
        },
    ]
    missing = {"error": {"type": "NotFound", "message": "no job with id 000000000000"}}
    assert seen["missing"] == [404, missing]
    status, bad = seen["bad"]
    assert status == 400 and bad["error"]["type"] == "JobFileError"
    assert (bad["error"]["field"], bad["error"]["line"]) == ("job.schedule", 9)
    status, plan = seen["apply"]
    assert status == 200 and plan["counts"]["unchanged"] == 1 and plan["applied"] is False
    status, kind, page = seen["reference"]
    assert status == 200 and kind.startswith("text/html")
    assert 'POST</span><span class="path">/v1/apply' in page and "ErrorBody" in page
    assert "<script" not in page and not re.search(r'(src|href)="(https?:)?//', page)
    status, paths = seen["openapi"]
    assert status == 200 and {"/v1/jobs", "/v1/apply", "/v1/reference"} <= set(paths)


@pytest.mark.skipif(needs_root, reason="needs root: sends the requests as a real user")
def test_the_reference_is_for_members_only(engine: Engine) -> None:
    os.chmod(engine.socket, 0o666)  # past the socket's mode: the engine itself refuses
    script = (
        "import httpx, json, sys\n"
        "with httpx.Client(transport=httpx.HTTPTransport(uds=sys.argv[1]), "
        "base_url='http://odin') as http:\n"
        "    print(json.dumps([[r.status_code, r.json()['error']['type']] for r in "
        "(http.get('/v1/reference'), http.get('/openapi.json'))]))\n"
    )
    done = subprocess.run(
        ["/usr/sbin/runuser", "-u", EVE, "--", sys.executable, "-c", script, str(engine.socket)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == [[403, "NotAMember"], [403, "NotAMember"]]


if __name__ == "__main__":
    print(json.dumps(examples(sys.argv[1])))
