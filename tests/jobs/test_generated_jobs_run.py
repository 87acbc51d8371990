"""``odin generate``'s example jobs on a real engine: deployed unchanged, run, recorded
(as odin-alice; needs root)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine_harness import Engine, needs_root, odin, user_dir, wait_for
from odin.jobs.spec import load_job_yaml
from test_generate import EXAMPLE, example_records, fill_in

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root to run jobs as odin-alice"),
    pytest.mark.slow,
]

ALICE = "odin-alice"
TOOLS = {"python": "python3", "go": "go", "node": "node"}


def finished(engine: Engine, job_id: str) -> list[dict[str, object]]:
    runs = odin("log", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    return [r for r in runs if r["status"] not in ("planned", "running")]


@pytest.mark.parametrize("language", ["python", "go", "node"])
def test_a_generated_job_deploys_unchanged_and_succeeds(
    engine: Engine, world_dir: Path, language: str
) -> None:
    if shutil.which(TOOLS[language]) is None:
        pytest.skip(f"{TOOLS[language]} is not installed")
    home = user_dir(world_dir, ALICE)
    odin("generate", "-f", "daily.yml", "-l", language, engine=engine, user=ALICE, cwd=home)
    yaml_path = home / "daily.yml"
    code = next(p for p in home.iterdir() if p.stem == "daily" and p != yaml_path)
    written = code.read_text()
    yaml_path.write_text(fill_in(yaml_path, name="daily", schedule="never"))  # alice's file still

    odin("deploy", "-f", "daily.yml", engine=engine, user=ALICE, cwd=home, timeout=300)
    job_id = load_job_yaml(yaml_path.read_text()).id
    odin("run", "-i", job_id, engine=engine, user=ALICE)
    runs = wait_for(lambda: finished(engine, job_id), what=f"the {language} job to finish")
    output = odin("log", "-i", job_id, "--output", engine=engine, user=ALICE).stdout
    assert (runs[0]["status"], runs[0]["exit_code"]) == ("succeeded", 0), output
    stats = odin("stats", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    assert example_records(stats) == EXAMPLE
    assert code.read_text() == written
