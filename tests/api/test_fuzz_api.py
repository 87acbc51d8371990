"""schemathesis against the engine's own OpenAPI, over its Unix socket, as a member (needs root).

The test starts a real engine and a job of Alice's, then runs this same file as
a script *as Alice* (``runuser``), so every generated request reaches the engine
with Alice's kernel-verified identity. The script fetches ``/openapi.json`` over
the socket, generates requests for every operation (positive and negative
data) with schemathesis, sends them with httpx over the socket and checks each
answer: no 5xx, and a body that matches the schema. Every operation must declare
one for its answer and for its errors (``undescribed``), so every answer is checked.
Each operation gets ``ODIN_FUZZ_API_EXAMPLES`` cases (default 25), all within
``ODIN_FUZZ_SECONDS`` (default 45); ``make fuzz`` raises both.

Needs ``schemathesis`` (a test-only dependency, see the report in docs/security.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("ODIN_FUZZ_SECONDS", "45"))
EXAMPLES = int(os.environ.get("ODIN_FUZZ_API_EXAMPLES", "25"))  # per operation
BASE = "http://odin"
SKIPPED = {
    # Would stop or reshape the engine under test if the caller were allowed; as a
    # member they are refused, which test_privilege_boundaries proves directly.
    ("POST", "/v1/internal/shutdown"),
}


def _send(client: Any, case: Any, base: str) -> Any:
    kwargs = case.as_transport_kwargs(base_url=base)
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k != "Connection"}
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        body["content" if isinstance(data, bytes | str) else "data"] = data
    return client.request(
        kwargs["method"],
        kwargs["url"],
        headers=headers,
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        timeout=10,
        **body,
    )


def undescribed(document: dict[str, Any]) -> list[str]:
    """The operations whose answer, or error answer, the document gives no schema for."""
    missing = []
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            answers = op.get("responses", {})
            ok = [a for code, a in answers.items() if str(code).startswith("2")]
            schemas = [c.get("schema") for a in ok for c in a.get("content", {}).values()]
            if not schemas or not all(schemas):
                missing.append(f"{method.upper()} {path}: no schema for its answer")
            error = answers.get("default", {}).get("content", {}).get("application/json", {})
            if not error.get("schema"):
                missing.append(f"{method.upper()} {path}: no schema for its errors")
    return missing


def fuzz(target: str, seconds: float, socket: str) -> dict[str, Any]:
    """Fuzz every operation (``EXAMPLES`` cases each, within ``seconds``); the failures found.

    ``target`` is the engine's socket path, or ``tcp:PORT`` for its TCP port; the document
    comes from the engine's ``socket`` (it is served to members only, as the API is).
    """
    import httpx
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
    )

    if target.startswith("tcp:"):
        client = httpx.Client(base_url=f"http://127.0.0.1:{target[4:]}")
    else:
        client = httpx.Client(transport=httpx.HTTPTransport(uds=target), base_url=BASE)
    with httpx.Client(transport=httpx.HTTPTransport(uds=socket), base_url=BASE) as member:
        document = member.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    operations = [op for op in operations if (op.method.upper(), op.path) not in SKIPPED]
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    failures: list[str] = undescribed(document)
    sent = [0]
    deadline = time.monotonic() + seconds

    def probe(case: Any) -> None:
        if time.monotonic() > deadline:
            return
        response = _send(client, case, str(client.base_url).rstrip("/"))
        sent[0] += 1
        try:
            case.validate_response(response, checks=checks)
        except Exception as error:  # every check failure is collected, none stops the run
            line = f"{case.method} {case.formatted_path} -> {response.status_code}"
            failures.append(f"{line}: {str(error)[:300]}")

    quick = settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    for operation in operations:
        quick(given(case=operation.as_strategy())(probe))()
    return {"operations": len(operations), "requests": sent[0], "failures": failures}


# -- the test -----------------------------------------------------------------------

if __name__ == "__main__":  # run as Alice's script: the shared helpers are in tests/, one up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, write_job  # noqa: E402

ALICE = "odin-alice"


@pytest.mark.skipif(needs_root, reason="needs root: runs the fuzzer as a real user")
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    engine: Engine, world_dir: Path
) -> None:
    pytest.importorskip("schemathesis")
    home = user_dir(world_dir, ALICE)
    job = job_id_of(write_job(home, "target", "print('target')\n"))
    odin("deploy", "-f", str(home / "target.yml"), engine=engine, user=ALICE)
    odin("run", "-i", job, engine=engine, user=ALICE)
    before = odin("list", "-o", "json", engine=engine).json()
    for target in (str(engine.socket), f"tcp:{engine.http_port}"):
        report = _fuzz_as(ALICE, target, home, engine.socket)
        assert report["requests"] >= report["operations"] * 5, report
        assert not report["failures"], "\n".join(report["failures"][:10])
        print(f"schemathesis {target}: {report['requests']} requests, no failure")
    assert engine.answers()
    after = odin("list", "-o", "json", engine=engine).json()
    assert job in [j["id"] for j in after] and len(after) >= len(before)


def _fuzz_as(user: str, target: str, cwd: Path, socket: Path) -> dict[str, Any]:
    script = [sys.executable, __file__, target, str(SECONDS / 2), str(socket)]
    done = subprocess.run(
        ["/usr/sbin/runuser", "-u", user, "--", *script],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        cwd=str(cwd),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


if __name__ == "__main__":
    print(json.dumps(fuzz(sys.argv[1], float(sys.argv[2]), sys.argv[3])))
