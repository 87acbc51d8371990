"""The SDKs as packages of their ecosystems, built by ``make sdk-packages``: a wheel that
pip installs into a clean venv, an npm tarball used from CommonJS, ES modules and
TypeScript, and a Go module proxy directory; each runs a job by hand outside Odin."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import odin
from engine_harness import Engine, needs_root, user_dir, wait_for, write_job
from engine_harness import odin as odin_cli
from sdk_fake_engine import JobRun, run_job

ROOT = Path(__file__).resolve().parents[2]
GO_MODULE = "github.com/theycallmemac/odin/odin-libraries/go/odinlib"
VERSION = odin.__version__
TYPESCRIPT = "typescript@5.9.3"
EXPECTED = [("watch", "answer", 42), ("condition", "answer is even", True), ("result", "done", 0)]


def make(target: str, dist: Path) -> None:
    """Build with the project's own command: ``make TARGET DIST=dist``."""
    done = subprocess.run(
        ["make", "-s", "-C", str(ROOT), target, f"DIST={dist}"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def records(run: JobRun) -> list[tuple[object, object, object]]:
    assert run.returncode == 0, run.stderr
    return [(r["type"], r["desc"], r["value"]) for r in run.stderr_records()]


def test_every_sdk_has_odins_version() -> None:
    package = json.loads((ROOT / "sdk" / "node" / "odin" / "package.json").read_text())
    init = (ROOT / "sdk" / "python" / "pyodin" / "__init__.py").read_text()
    go = (ROOT / "sdk" / "go" / "odinlib" / "version.go").read_text()
    assert package["version"] == VERSION
    assert f'__version__ = "{VERSION}"' in init
    assert f'const Version = "{VERSION}"' in go


# --- Python: a wheel --------------------------------------------------------------------

PY_JOB = """\
import pyodin

odin = pyodin.Odin(config="packaged.yml")
answer = 42
odin.watch("answer", answer)
if odin.condition("answer is even", answer % 2 == 0):
    odin.result("done", 0)
odin.result("odd", 1)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    make("sdk-python", dist)
    return dist / f"pyodin-{VERSION}-py3-none-any.whl"


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv of the system Python, with pip and nothing else."""
    folder = tmp_path_factory.mktemp("venv")
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(folder)], check=True)
    return folder


def pip(env_dir: Path, *args: str) -> None:
    done = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_wheel_holds_pyodin_only_and_builds_the_same_twice(wheel: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"pyodin-{VERSION}.dist-info/METADATA").decode()
    assert {n.split("/")[0] for n in names} == {"pyodin", f"pyodin-{VERSION}.dist-info"}
    assert "pyodin/py.typed" in names and not [n for n in names if "__pycache__" in n]
    assert "Requires-Dist" not in metadata and "Requires-Python: >=3.11" in metadata
    make("sdk-python", tmp_path)
    assert (tmp_path / wheel.name).read_bytes() == wheel.read_bytes()


@pytest.mark.slow
def test_the_wheel_installs_into_a_clean_venv_and_runs_a_job_by_hand(
    wheel: Path, clean_venv: Path, tmp_path: Path
) -> None:
    pip(clean_venv, "install", "--no-index", str(wheel))
    (tmp_path / "packaged.yml").write_text("job:\n  id: a37b187f5930\n  name: packaged\n")
    (tmp_path / "job.py").write_text(PY_JOB)
    # -I: no PYTHONPATH, no user site: pyodin comes from the venv alone; no ODIN_* either.
    run = run_job([str(clean_venv / "bin" / "python"), "-I", "job.py"], cwd=tmp_path, env={})
    assert records(run) == EXPECTED
    assert all(line.startswith("odin: {") for line in run.stderr.splitlines())


@pytest.mark.slow
def test_pip_installs_the_sdk_folder_offline(clean_venv: Path, tmp_path: Path) -> None:
    pip(clean_venv, "uninstall", "--yes", "pyodin")
    pip(clean_venv, "install", "--no-index", str(ROOT / "sdk" / "python"))
    probe = [
        str(clean_venv / "bin" / "python"),
        "-I",
        "-c",
        "import pyodin; print(pyodin.__file__)",
    ]
    done = subprocess.run(probe, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.startswith(str(clean_venv))


@pytest.mark.slow
@pytest.mark.skipif(needs_root, reason="needs root to run jobs as odin-alice")
def test_the_same_python_job_runs_under_odin(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, "odin-alice")
    yaml_path = write_job(home, "packaged", PY_JOB)
    job_id = re.findall(r'id: "(\w+)"', yaml_path.read_text())[0]
    odin_cli("deploy", "-f", str(yaml_path), engine=engine, user="odin-alice")
    odin_cli("run", "-i", job_id, engine=engine, user="odin-alice")

    def finished() -> list[dict[str, object]]:
        runs = odin_cli("log", "-i", job_id, "-o", "json", engine=engine, user="odin-alice")
        return [r for r in runs.json() if r["status"] not in ("planned", "running")]

    assert wait_for(finished, what="the job")[0]["status"] == "succeeded"
    stats = odin_cli("stats", "-i", job_id, "-o", "json", engine=engine, user="odin-alice")
    assert [(r["type"], r["desc"], r["value"]) for r in stats.json()] == EXPECTED


# --- Node: an npm tarball ---------------------------------------------------------------

needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")

CJS_JOB = """\
const odin = require('odin')({ config: 'packaged.yml' });
const answer = 42;
odin.watch('answer', answer);
if (odin.condition('answer is even', answer % 2 === 0)) odin.result('done', 0);
odin.result('odd', 1);
"""

ESM_JOB = """\
import odinlib, { OdinLimitError } from 'odin';
const odin = odinlib({ config: 'packaged.yml' });
const answer = 42;
odin.watch('answer', answer);
if (odin.condition('answer is even', answer % 2 === 0 && OdinLimitError !== undefined)) {
  odin.result('done', 0);
}
odin.result('odd', 1);
"""

CTS_JOB = """\
import odin = require('odin');
const job: odin.Odin = odin({ config: 'packaged.yml' });
job.watch('answer', 42);
try { job.watch('big', 'x'); } catch (e) { if (e instanceof odin.OdinLimitError) job.watch('bound', e.bound); }
const limit: number = odin.MAX_RECORD_BYTES;
if (job.condition('answer is even', limit > 0)) job.result('done', 0);
"""

MTS_JOB = """\
import odinlib, { Odin, MAX_RECORDS_PER_RUN } from 'odin';
const job: Odin = odinlib('packaged.yml');
const even: boolean = job.condition('answer is even', MAX_RECORDS_PER_RUN > 0);
// @ts-expect-error: a status is a number
if (even) job.result('done', 'zero');
"""


def npm(folder: Path, *args: str, cache: Path) -> None:
    env = {**os.environ, "npm_config_cache": str(cache), "npm_config_update_notifier": "false"}
    command = ["npm", *args, "--no-audit", "--no-fund"]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def node_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A clean folder with the packed SDK installed from its tarball (offline)."""
    dist = tmp_path_factory.mktemp("dist")
    make("sdk-node", dist)
    folder = tmp_path_factory.mktemp("project")
    cache = tmp_path_factory.mktemp("npm-cache")
    npm(folder, "install", "--offline", str(dist / f"odin-{VERSION}.tgz"), cache=cache)
    (folder / "packaged.yml").write_text("job:\n  id: a37b187f5930\n  name: packaged\n")
    yield folder


@pytest.mark.slow
@needs_npm
def test_the_tarball_has_the_code_and_both_kinds_of_types(node_project: Path) -> None:
    installed = node_project / "node_modules" / "odin"
    assert not installed.is_symlink()  # a copy out of the tarball, not a link to sdk/
    names = {p.relative_to(installed).as_posix() for p in installed.rglob("*") if p.is_file()}
    assert {"index.js", "index.mjs", "index.d.ts", "index.d.mts", "lib/engine.js"} <= names
    exports = json.loads((installed / "package.json").read_text())["exports"]["."]
    assert exports["import"]["types"] == "./index.d.mts"
    assert exports["require"]["types"] == "./index.d.ts"


@pytest.mark.slow
@needs_npm
@pytest.mark.parametrize(("name", "code"), [("job.cjs", CJS_JOB), ("job.mjs", ESM_JOB)])
def test_the_installed_package_runs_a_job_by_hand(node_project: Path, name: str, code: str) -> None:
    (node_project / name).write_text(code)
    run = run_job(["node", name], cwd=node_project, env={})  # no NODE_PATH, no ODIN_*
    assert records(run) == EXPECTED


@pytest.mark.slow
@needs_npm
def test_typescript_checks_jobs_against_the_declarations(
    node_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tools = tmp_path_factory.mktemp("typescript")
    try:
        npm(tools, "install", TYPESCRIPT, cache=tmp_path_factory.mktemp("npm-cache"))
    except AssertionError as error:
        pytest.skip(f"cannot install {TYPESCRIPT} from the npm registry: {error}")
    (node_project / "job.cts").write_text(CTS_JOB)
    (node_project / "job.mts").write_text(MTS_JOB)
    options = {"strict": True, "noEmit": True, "module": "node16", "types": []}
    config = {"compilerOptions": options, "files": ["job.cts", "job.mts"]}
    (node_project / "tsconfig.json").write_text(json.dumps(config))
    tsc = tools / "node_modules" / ".bin" / "tsc"
    done = subprocess.run([str(tsc), "-p", "."], cwd=node_project, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# --- Go: a module proxy directory -------------------------------------------------------

GO_JOB = """\
package main

import "github.com/theycallmemac/odin/odin-libraries/go/odinlib"

func main() {
	odin, _ := odinlib.Setup("packaged.yml")
	answer := 42
	odin.Watch("answer", answer)
	if odin.Condition("answer is even", answer%2 == 0) {
		odin.Result("done", 0)
	}
	odin.Result("odd", 1)
}
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")
def test_a_module_builds_against_the_proxy_directory_offline(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    make("sdk-go", dist)
    job = tmp_path / "job"
    job.mkdir()
    (job / "go.mod").write_text(f"module packaged\n\ngo 1.19\n\nrequire {GO_MODULE} v{VERSION}\n")
    (job / "main.go").write_text(GO_JOB)
    (job / "packaged.yml").write_text("job:\n  id: a37b187f5930\n  name: packaged\n")
    env = {
        **os.environ,
        "GOPROXY": f"file://{dist / 'goproxy'}",  # this directory and nothing else: offline
        "GONOSUMDB": "github.com/theycallmemac/odin",
        "GOFLAGS": "-mod=mod",
        "GOPATH": str(tmp_path / "gopath"),  # an empty module cache: the SDK comes from dist
        "CGO_ENABLED": "0",
    }
    for command in (["vet", "./..."], ["build", "-o", "job", "."], ["test", "-count=1", GO_MODULE]):
        done = subprocess.run(["go", *command], cwd=job, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    assert f"{GO_MODULE} v{VERSION} h1:" in (job / "go.sum").read_text()
    assert records(run_job(["./job"], cwd=job, env={})) == EXPECTED
    subprocess.run(["go", "clean", "-modcache"], env=env, check=True)  # read-only files
