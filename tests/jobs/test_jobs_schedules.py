"""Job files with several schedules, a spread or a jitter (issue #26): what loads, what is
refused (naming the field and its line), and what is written back."""

from __future__ import annotations

import pytest

from odin.errors import JobFileError
from odin.jobs.spec import load_job_yaml

HEAD = """\
provider:
  name: odin
  version: 1.0.0
job:
  id: "0123456789ab"
  name: backup
  language: go
  file: backup.go
"""


def error_of(text: str) -> JobFileError:
    with pytest.raises(JobFileError) as caught:
        load_job_yaml(text, source="job.yml")
    return caught.value


def test_a_list_of_schedules_is_one_text_and_writes_back_as_a_list() -> None:
    spec = load_job_yaml(
        HEAD
        + "  schedule:\n"
        + '    - "every hour, spread over 10 minutes"\n'
        + '    - "0 9 * * 1-5"\n'
        + "    - every day at 09:15 in Asia/Tokyo\n"
        + "  jitter: 30s\n"
    )
    assert spec.schedule == (
        "every hour, spread over 10 minutes; 0 9 * * 1-5; every day at 09:15 in Asia/Tokyo"
    )
    assert spec.jitter == 30.0
    written = spec.to_yaml()
    assert "  schedule:\n  - every hour, spread over 10 minutes\n" in written
    assert "  jitter: 30s\n" in written
    assert load_job_yaml(written) == spec


def test_one_schedule_in_a_list_or_with_semicolons_reads_the_same() -> None:
    one = load_job_yaml(HEAD + "  schedule: [every hour]\n")
    assert one.schedule == "every hour" and "schedule: every hour\n" in one.to_yaml()
    joined = load_job_yaml(HEAD + '  schedule: "every hour;@daily"\n')
    assert joined.schedule == "every hour; @daily"
    assert load_job_yaml(joined.to_yaml()) == joined


def test_modify_sets_a_list_from_several_texts() -> None:
    spec = load_job_yaml(HEAD + "  schedule: never\n")
    changed = spec.with_changes(schedule="every hour ;  H 9 * * *")
    assert changed.schedule == "every hour; H 9 * * *"
    assert "  - H 9 * * *\n" in changed.to_yaml()


@pytest.mark.parametrize(
    ("tail", "field", "line", "fragment"),
    [
        (
            "  schedule:\n    - every hour\n    - every Satruday\n",
            "job.schedule[1]",
            11,
            "Saturday",
        ),
        ("  schedule:\n    - every hour\n    - never\n", "job.schedule[1]", 11, "never"),
        ("  schedule:\n    - every hour\n    - [nested]\n", "job.schedule[1]", 11, "expected text"),
        ("  schedule: []\n", "job.schedule", 9, "empty list"),
        ("  schedule: every hour, spread over 9 parsecs\n", "job.schedule", 9, "parsecs"),
        ("  schedule: H(0-99) * * * *\n", "job.schedule", 9, "H picks from 0 to 59"),
        ("  schedule: every hour\n  jitter: soon\n", "job.jitter", 10, "not a duration"),
        ("  schedule: every hour\n  jitter: -5s\n", "job.jitter", 10, "jitter"),
        ("  schedule: every hour\n  jiter: 5s\n", "job.jiter", 10, "did you mean jitter"),
    ],
)
def test_a_wrong_schedule_list_or_jitter_names_its_field_and_line(
    tail: str, field: str, line: int, fragment: str
) -> None:
    error = error_of(HEAD + tail)
    assert (error.field, error.line) == (field, line), str(error)
    assert fragment in str(error), str(error)
    assert str(error).startswith(f"job.yml: line {line}: {field}: ")
