"""The Node SDK's own paths: ES module import, the string form, exits the job
takes by itself, and the child-process fallback of the synchronous flush."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sdk_fake_engine import FakeEngine, run_job

SDK_NODE = Path(__file__).resolve().parents[2] / "sdk" / "node"
LIB = SDK_NODE / "odin" / "lib"  # not exported: reached by path

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.slow,
]


def test_an_es_module_job_imports_odin_through_node_modules(tmp_path: Path) -> None:
    # ES modules ignore NODE_PATH: the engine links node_modules/odin into the job's directory.
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "odin").symlink_to(SDK_NODE / "odin")
    (tmp_path / "job.mjs").write_text(
        "import odin, { OdinLimitError } from 'odin';\n"
        "const o = odin({ config: 'job.yml' });\n"
        "try { o.watch('big', 'x'.repeat(70000)); } catch (e) { o.watch('limit', e instanceof OdinLimitError); }\n"
        "if (o.condition('esm', true)) o.result('done', 1);\n"
    )
    with FakeEngine() as engine:
        run = run_job(["node", "job.mjs"], cwd=tmp_path, env=engine.env())
    assert run.returncode == 1, run.stderr
    assert [(r["type"], r["value"]) for r in engine.records] == [
        ("watch", True),
        ("condition", True),
        ("result", 1),
    ]


@pytest.mark.parametrize(
    ("ending", "code"),
    [("process.exit(5);", 5), ("throw new Error('boom');", 1), ("setTimeout(() => {}, 50);", 0)],
)
def test_records_survive_however_the_job_ends(tmp_path: Path, ending: str, code: int) -> None:
    (tmp_path / "job.yml").write_text("job:\n  id: abc\n  name: n\n")
    (tmp_path / "job.js").write_text(
        f"const odin = require('odin')('job.yml');\nodin.watch('a', [1, 'two']);\n{ending}\n"
    )
    with FakeEngine() as engine:
        run = run_job(
            ["node", "job.js"], cwd=tmp_path, env={**engine.env(), "NODE_PATH": str(SDK_NODE)}
        )
    assert run.returncode == code, run.stderr
    assert [(r["desc"], r["value"]) for r in engine.records] == [("a", [1, "two"])]


def test_the_child_process_fallback_delivers(tmp_path: Path) -> None:
    with FakeEngine() as engine:
        address = (
            f"{{socket: {engine.socket_path!r}, token: {engine.token!r}, "
            f"path: '/v1/runs/' + require({str(LIB / 'engine.js')!r}).escapeSegment({engine.run_id!r}) + '/records'}}"
        )
        script = (
            f"const {{ viaChild }} = require({str(LIB / 'sync-flush.js')!r});\n"
            "const r = { seq: 1, ts: 1.5, type: 'watch', desc: 'd', value: null };\n"
            f"console.log(JSON.stringify(viaChild({address}, [r], 1000)));\n"
        )
        run = run_job(["node", "-e", script], cwd=tmp_path, env={"NODE_PATH": str(SDK_NODE)})
    assert run.returncode == 0, run.stderr
    assert '"outcome":"delivered"' in run.stdout
    assert [r["desc"] for r in engine.records] == ["d"]


def test_a_flush_while_a_request_is_in_flight_loses_nothing(tmp_path: Path) -> None:
    (tmp_path / "job.js").write_text(
        "const odin = require('odin')('job.yml');\n"
        "odin.watch('a', 1);\n"  # its request is in flight (sent when the script yields)
        "odin.watch('b', 2);\n"
        "console.log('FLUSHED', odin.flush());\n"
        "odin.watch('c', 3);\n"  # must not be taken for the in-flight batch when it settles
    )
    with FakeEngine() as engine:
        run = run_job(
            ["node", "job.js"], cwd=tmp_path, env={**engine.env(), "NODE_PATH": str(SDK_NODE)}
        )
    assert run.returncode == 0, run.stderr
    assert "FLUSHED true" in run.stdout
    assert [r["desc"] for r in engine.records] == ["a", "b", "c"]
