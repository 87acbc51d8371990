"""``notify:``, ``warn_after:`` and ``grace:`` in the job file: what loads, what is refused
(naming the field and line), and that a loaded file writes back to the same spec."""

from __future__ import annotations

import pytest

from odin.errors import JobFileError
from odin.jobs.notify import AlertEvent, Notify
from odin.jobs.spec import load_job_yaml

HEAD = """\
provider: {name: odin, version: 1.0.0}
job:
  id: a37b187f5930
  name: backup
  language: python
  file: backup.py
  schedule: every hour
"""


def test_every_form_of_notify_loads_and_round_trips() -> None:
    spec = load_job_yaml(
        HEAD
        + """\
  notify:
    - to: https://hooks.example.org/odin
    - https://other.example.org/hook
    - to: mailto:ops@example.org
      on: [failure]
      after: 3
    - to: slack://T000/B000/XXXX
      on: Missed, overdue,lost
  warn_after: 10m
  grace: 90s
"""
    )
    assert spec.notify == (
        Notify("https://hooks.example.org/odin"),
        Notify("https://other.example.org/hook"),
        Notify("mailto:ops@example.org", (AlertEvent.FAILURE,), 3),
        Notify("slack://T000/B000/XXXX", (AlertEvent.MISSED, AlertEvent.OVERDUE, AlertEvent.LOST)),
    )
    assert (spec.warn_after, spec.grace) == (600.0, 90.0)
    assert load_job_yaml(spec.to_yaml()) == spec


@pytest.mark.parametrize(
    ("entry", "field", "fragment"),
    [
        ("    - to: https://x.org/h\n      on: [failed]\n", "job.notify[0].on", "unknown event"),
        ("    - to: https://x.org/h\n      on: [test]\n", "job.notify[0].on", "unknown event"),
        ("    - to: https://x.org/h\n      on: []\n", "job.notify[0].on", "names no event"),
        ("    - to: https://x.org/h\n      after: 0\n", "job.notify[0].after", "between 1"),
        ("    - to: https://x.org/h\n      when: x\n", "job.notify[0].when", "unknown field"),
        ("    - on: [failure]\n", "job.notify[0].to", "missing"),
        ("    - to: ftp://x.org/h\n", "job.notify[0].to", "not a destination"),
        ("    - to: https://\n", "job.notify[0].to", ""),
        ("    - to: mailto:nobody\n", "job.notify[0].to", ""),
        ("    - to: dbus://\n", "job.notify[0].to", ""),
        ("    - to: json://x.org/h?attach=/etc/shadow\n", "job.notify[0].to", ""),
        ("    - https://x.org/h\n    - https://x.org/h\n", "job.notify", "twice"),
    ],
)
def test_a_bad_entry_is_refused_naming_its_field(entry: str, field: str, fragment: str) -> None:
    with pytest.raises(JobFileError) as caught:
        load_job_yaml(HEAD + "  notify:\n" + entry)
    assert caught.value.field == field and caught.value.line is not None
    assert fragment in str(caught.value)


def test_notify_must_be_a_list_and_durations_must_be_durations() -> None:
    for extra, field in (
        ("  notify: https://x.org/h\n", "job.notify"),
        ("  warn_after: soon\n", "job.warn_after"),
        ("  grace: -5s\n", "job.grace"),
    ):
        with pytest.raises(JobFileError) as caught:
            load_job_yaml(HEAD + extra)
        assert caught.value.field == field
