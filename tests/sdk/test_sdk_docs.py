"""The runnable example of each SDK page in docs/ runs, against a local page and a fake engine."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdk_fake_engine import FakeEngine, run_job

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
GO_MODULE = "github.com/theycallmemac/odin/odin-libraries/go/odinlib"
TITLE = "Odin (mythology)"


def example(page: str, name: str) -> str:
    """The fenced block that follows ``<!-- example: name -->`` in docs/page."""
    text = (ROOT / "docs" / page).read_text()
    match = re.search(rf"<!-- example: {re.escape(name)} -->\n```\w+\n(.*?)```", text, re.S)
    assert match, f"no example {name} in docs/{page}"
    return match.group(1)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """A local web server with the example's page; yields its host:port."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "article.txt").write_text(TITLE + "\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def prepare(job_dir: Path, language: str, site: str) -> list[str]:
    """Write the example job (and its build files) into job_dir; the command to run it."""
    page, name = {"python": ("sdk-python.md", "fetch.py"), "go": ("sdk-go.md", "fetch.go")}.get(
        language, ("sdk-node.md", "fetch.js")
    )
    (job_dir / name).write_text(example(page, name).replace("127.0.0.1:8000", site))
    (job_dir / "fetch.yml").write_text(
        f"job:\n  id: a37b187f5930\n  name: fetch\n  language: {language}\n"
    )
    if language == "python":
        return ["/usr/bin/python3", name]
    if language == "node":
        return ["node", name]
    (job_dir / "go.mod").write_text(
        f"module fetch\n\ngo 1.19\n\nrequire {GO_MODULE} v0.0.0\n\n"
        f"replace {GO_MODULE} => {ROOT / 'sdk' / 'go' / 'odinlib'}\n"
    )
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "CGO_ENABLED": "0"}
    subprocess.run(["go", "build", "-o", "fetch", "."], cwd=job_dir, env=env, check=True)
    return ["./fetch"]


@pytest.mark.parametrize("language", ["python", "go", "node"])
def test_the_documented_example_runs(language: str, tmp_path: Path, site: str) -> None:
    if shutil.which({"python": "python3", "go": "go", "node": "node"}[language]) is None:
        pytest.skip(f"{language} is not installed")
    command = prepare(tmp_path, language, site)
    sdk_env = {"PYTHONPATH": str(ROOT / "sdk" / "python"), "NODE_PATH": str(ROOT / "sdk" / "node")}
    expected = [
        ("watch", "url fetched", f"http://{site}/article.txt"),
        ("condition", "check if url is empty", True),
        ("watch", "title", TITLE),
        ("result", "page fetched", 0),
    ]
    by_hand = run_job(command, cwd=tmp_path, env=sdk_env)
    assert by_hand.returncode == 0, by_hand.stderr
    assert [(r["type"], r["desc"], r["value"]) for r in by_hand.stderr_records()] == expected
    with FakeEngine() as engine:
        in_odin = run_job(command, cwd=tmp_path, env={**sdk_env, **engine.env()})
    assert in_odin.returncode == 0, in_odin.stderr
    assert [(r["type"], r["desc"], r["value"]) for r in engine.records] == expected
