"""How ``odin apply`` finds and reads job files, and splits a batch: no engine, no users."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odin.cli.apply_cmd import find_job_files, read_jobs, split
from odin.errors import InvalidInput, JobFileError

JOB = (
    'provider:\n  name: odin\n  version: 1.0.0\njob:\n  id: "{id}"\n  name: {name}\n'
    "  language: python\n  file: {name}.py\n  schedule: every hour\n"
)


def _job(folder: Path, name: str, job_id: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yml"
    path.write_text(JOB.format(id=job_id, name=name))
    (folder / f"{name}.py").write_text("print(1)\n")
    return path


def test_files_are_found_recursively_without_leaving_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    one = _job(root, "one", "aaaaaaaaaaa1")
    two = _job(root / "nested" / "deeper", "two", "aaaaaaaaaaa2")
    outside = _job(tmp_path / "outside", "out", "aaaaaaaaaaa3")
    (root / "escape.yml").symlink_to(outside)
    (root / "alias.yaml").symlink_to(one)
    (root / "linked").symlink_to(tmp_path / "outside")
    _job(root / ".git", "hidden", "aaaaaaaaaaa4")
    (root / "notes.txt").write_text("job: not yaml by name\n")
    paths, notes = find_job_files([root])
    assert paths == [one, two]
    assert f"skipped {root / 'escape.yml'}: a symlink out of {root}" in notes
    assert f"skipped {root / 'alias.yaml'}: the same file as {one}" in notes
    assert any("linked: a symlink to a folder" in note for note in notes)


def test_other_yaml_is_skipped_with_a_note_and_twin_ids_are_refused(tmp_path: Path) -> None:
    first = _job(tmp_path, "first", "aaaaaaaaaaa1")
    compose = tmp_path / "compose.yml"
    compose.write_text("services:\n  web:\n    image: nginx\n")
    notes: list[str] = []
    jobs = read_jobs([compose, first], notes)
    assert [j.spec.id for j in jobs] == ["aaaaaaaaaaa1"]
    assert notes == [f"skipped {compose}: not a job file (no provider: or job:)"]
    twin = _job(tmp_path, "twin", "aaaaaaaaaaa1")
    with pytest.raises(JobFileError) as caught:
        read_jobs([first, twin], [])
    assert caught.value.field == "job.id" and caught.value.line == 5
    assert f"{twin}: line 5: job.id" in str(caught.value) and str(first) in str(caught.value)


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is not a folder"):
        find_job_files([tmp_path / "nope"])


def test_a_batch_is_split_only_past_the_bound() -> None:
    bodies = [{"id": str(i), "yaml": "y" * 100, "code": "c" * 100} for i in range(10)]
    cost = len(json.dumps(bodies[0])) + 2
    assert split(bodies, 10 * cost) == [bodies]
    chunks = split(bodies, 4 * cost)
    assert [len(chunk) for chunk in chunks] == [4, 4, 2]
    assert [body for chunk in chunks for body in chunk] == bodies
    assert split(bodies[:1], 1) == [bodies[:1]]  # one job over the bound still goes
