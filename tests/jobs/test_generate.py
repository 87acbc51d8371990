"""``odin generate``: the two files, their contents, and never overwriting."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from odin.errors import Conflict, InvalidInput, JobFileError
from odin.jobs.generate import generate
from odin.jobs.ids import is_job_id
from odin.jobs.spec import Language, load_job_yaml

ODIN = Path(sys.executable).with_name("odin")


def fill_in(yaml_path: Path, name: str = "my job", schedule: str = "every day at 18:00") -> str:
    text = yaml_path.read_text()
    text = text.replace('name: ""', f'name: "{name}"', 1)
    return text.replace('schedule: ""', f'schedule: "{schedule}"', 1)


@pytest.mark.parametrize(
    ("language", "extension", "canonical"),
    [
        ("python", ".py", Language.PYTHON),
        ("python3", ".py", Language.PYTHON),
        ("go", ".go", Language.GO),
        ("golang", ".go", Language.GO),
        ("node", ".js", Language.NODE),
        ("nodejs", ".js", Language.NODE),
    ],
)
def test_writes_yaml_and_an_example_job(
    tmp_path: Path, language: str, extension: str, canonical: Language
) -> None:
    yaml_path, code_path = generate(tmp_path / "amzn_stocks.yml", language)
    assert (yaml_path, code_path) == (
        tmp_path / "amzn_stocks.yml",
        tmp_path / f"amzn_stocks{extension}",
    )
    code = code_path.read_text()
    assert "amzn_stocks.yml" in code and "odin deploy -f amzn_stocks.yml" in code
    assert "$" not in code  # every placeholder filled in
    text = yaml_path.read_text()
    assert 'name: ""' in text and 'description: ""' in text and 'schedule: ""' in text
    spec = load_job_yaml(fill_in(yaml_path))
    assert spec.language is canonical
    assert spec.file == f"amzn_stocks{extension}"
    assert is_job_id(spec.id)
    assert (spec.name, spec.description, spec.schedule) == ("my job", "", "every day at 18:00")


def test_template_refuses_to_load_until_filled_in(tmp_path: Path) -> None:
    yaml_path, _ = generate(tmp_path / "job.yml", "python")
    with pytest.raises(JobFileError) as unfilled:
        load_job_yaml(yaml_path.read_bytes())
    assert unfilled.value.field == "job.name"
    with pytest.raises(JobFileError) as no_schedule:
        load_job_yaml(fill_in(yaml_path, schedule=""))
    assert no_schedule.value.field == "job.schedule"
    assert "every day at 18:00" in str(no_schedule.value)


def test_every_generated_file_has_a_fresh_id(tmp_path: Path) -> None:
    ids = {load_job_yaml(fill_in(generate(tmp_path / f"j{n}.yml", "go")[0])).id for n in range(20)}
    assert len(ids) == 20


def test_alert_settings_are_commented_out_and_load_once_uncommented(tmp_path: Path) -> None:
    yaml_path, _ = generate(tmp_path / "job.yml", "python")
    text = fill_in(yaml_path)
    assert load_job_yaml(text).notify == ()  # as generated, no alerts: it deploys unchanged
    lines = text.splitlines()
    start = lines.index("  # notify:")
    uncommented = lines[:start] + [line.replace("  # ", "  ", 1) for line in lines[start:]]
    spec = load_job_yaml("\n".join(uncommented))
    assert [(n.to, [str(e) for e in n.on], n.after) for n in spec.notify] == [
        ("https://hooks.example.org/odin", ["failure", "recovery"], 3),
        ("mailto:you@example.org", ["failure", "missed"], 1),
    ]
    assert (spec.warn_after, spec.grace) == (600.0, 60.0)


def test_yaml_extension_is_accepted(tmp_path: Path) -> None:
    yaml_path, code_path = generate(tmp_path / "backup.yaml", "go")
    assert yaml_path.name == "backup.yaml" and code_path.name == "backup.go"
    assert load_job_yaml(fill_in(yaml_path)).file == "backup.go"


@pytest.mark.parametrize("existing", ["job.yml", "job.py"])
def test_never_overwrites_and_writes_nothing_on_conflict(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("keep me")
    with pytest.raises(Conflict) as caught:
        generate(tmp_path / "job.yml", "python")
    assert existing in str(caught.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == [existing]
    assert (tmp_path / existing).read_text() == "keep me"


def test_a_dangling_symlink_counts_as_existing(tmp_path: Path) -> None:
    (tmp_path / "job.py").symlink_to(tmp_path / "elsewhere.py")
    with pytest.raises(Conflict):
        generate(tmp_path / "job.yml", "python")
    assert not (tmp_path / "job.yml").exists()
    assert not (tmp_path / "elsewhere.py").exists()


@pytest.mark.parametrize("name", ["job.txt", "job", "job.yml.bak", ".yml", "job.json"])
def test_bad_extension_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        generate(tmp_path / name, "python")
    assert ".yml or" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("language", ["rust", "", "py thon", "java"])
def test_bad_language_lists_accepted_values(tmp_path: Path, language: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        generate(tmp_path / "job.yml", language)
    assert "python, go or node" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_works_in_another_directory(tmp_path: Path) -> None:
    folder = tmp_path / "jobs" / "nightly"
    folder.mkdir(parents=True)
    yaml_path, code_path = generate(folder / "backup.yml", "node")
    assert code_path == folder / "backup.js"
    assert load_job_yaml(fill_in(yaml_path)).file == "backup.js"


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        generate(tmp_path / "nope" / "job.yml", "python")
    assert "does not exist" in str(caught.value)


# --- the command ------------------------------------------------------------------------


def run_odin(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [str(ODIN), *args], cwd=cwd, capture_output=True, text=True, timeout=30, env=env
    )


@pytest.mark.slow
def test_cli_generate_prints_files_and_next_step(tmp_path: Path) -> None:
    done = run_odin("generate", "-f", "amzn_stocks.yml", "-l", "python", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "amzn_stocks.yml" in done.stdout and "amzn_stocks.py" in done.stdout
    assert "odin deploy -f amzn_stocks.yml" in done.stdout
    assert "import pyodin" in (tmp_path / "amzn_stocks.py").read_text()


@pytest.mark.slow
def test_cli_alias_and_errors_are_one_line_with_exit_codes(tmp_path: Path) -> None:
    assert run_odin("gen", "--file", "b.yaml", "--language", "golang", cwd=tmp_path).returncode == 0
    conflict = run_odin("gen", "-f", "b.yaml", "-l", "go", cwd=tmp_path)
    assert (conflict.returncode, conflict.stderr.count("\n")) == (5, 1)
    assert "b.yaml already exists" in conflict.stderr and "Traceback" not in conflict.stderr
    bad_language = run_odin("gen", "-f", "c.yml", "-l", "rust", cwd=tmp_path)
    assert bad_language.returncode == 2 and "python, go or node" in bad_language.stderr
    bad_name = run_odin("gen", "-f", "c.txt", "-l", "go", cwd=tmp_path)
    assert bad_name.returncode == 2 and "NAME.yml or NAME.yaml" in bad_name.stderr
    missing = run_odin("gen", "-f", "c.yml", cwd=tmp_path)
    assert missing.returncode == 2 and "--language" in missing.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["b.go", "b.yaml"]


@pytest.mark.slow
def test_cli_help_lists_languages(tmp_path: Path) -> None:
    done = run_odin("generate", "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "python, go or node" in done.stdout and "python3" in done.stdout


# --- the example jobs run as written --------------------------------------------------

SDK = Path(__file__).resolve().parents[2] / "sdk"
GO_MODULE = "github.com/theycallmemac/odin/odin-libraries/go/odinlib"
ODD_NAME = 'it\'s "odd" \\ é.yml'


def example_records(records: list[dict[str, object]]) -> list[tuple[object, object]]:
    """The (type, desc) of each record; checks the values the example job records."""
    assert isinstance(records[0]["value"], str) and records[0]["value"][:2] == "20"
    assert records[2]["value"] == ("weekday work" if records[1]["value"] else "weekend work")
    assert records[3]["value"] == 0
    return [(r["type"], r["desc"]) for r in records]


EXAMPLE = [
    ("watch", "started at"),
    ("condition", "today is a weekday"),
    ("watch", "plan"),
    ("result", "done"),
]


def by_hand(code_path: Path, language: Language) -> subprocess.CompletedProcess[str]:
    """Run a generated job by hand, as a user would, from its folder (no Odin)."""
    folder = code_path.parent
    env = {"PATH": os.environ["PATH"], "HOME": str(folder), "LANG": "C.UTF-8"}
    if language is Language.PYTHON:
        command = ["/usr/bin/python3", code_path.name]
        env["PYTHONPATH"] = str(SDK / "python")
    elif language is Language.NODE:
        command = ["node", code_path.name]
        env["NODE_PATH"] = str(SDK / "node")
    else:
        (folder / "go.mod").write_text(
            f"module job\n\ngo 1.19\n\nrequire {GO_MODULE} v0.0.0\n\n"
            f"replace {GO_MODULE} => {SDK / 'go' / 'odinlib'}\n"
        )
        env.update(GOFLAGS="-mod=mod", GOPROXY="off", GOCACHE=str(folder / ".gocache"))
        vet = subprocess.run(["go", "vet", "."], cwd=folder, env=env, capture_output=True)
        assert vet.returncode == 0, vet.stderr
        command = ["go", "run", "."]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def tool_for(language: Language) -> str:
    return {Language.PYTHON: "python3", Language.GO: "go", Language.NODE: "node"}[language]


@pytest.mark.slow
@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("name", ["backup.yml", ODD_NAME])
def test_the_example_job_runs_by_hand_and_records(
    tmp_path: Path, language: Language, name: str
) -> None:
    if shutil.which(tool_for(language)) is None:
        pytest.skip(f"{tool_for(language)} is not installed")
    _, code_path = generate(tmp_path / name, language.value)
    if language is Language.GO:
        assert subprocess.run(["gofmt", "-l", str(code_path)], capture_output=True).stdout == b""
    done = by_hand(code_path, language)
    assert done.returncode == 0, done.stderr
    lines = [line.removeprefix("odin: ") for line in done.stderr.splitlines()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert example_records(records) == EXAMPLE


@pytest.mark.slow
def test_the_example_job_names_its_own_yaml_file(tmp_path: Path) -> None:
    """By hand the SDK reads the YAML the template names: a missing one is an error."""
    yaml_path, code_path = generate(tmp_path / "named.yml", "python")
    yaml_path.rename(tmp_path / "other.yml")
    done = by_hand(code_path, Language.PYTHON)
    assert done.returncode != 0 and "named.yml" in done.stderr
