"""``except:`` and ``on_excluded:`` in job files, and calendar files: what loads, and every
refusal naming its field and line."""

from __future__ import annotations

import pytest

from odin.errors import JobFileError
from odin.jobs.calendars import CalendarSpec, load_calendar_yaml, refuse_unknown_calendars
from odin.jobs.fields import OnExcluded
from odin.jobs.spec import load_job_yaml

JOB = """\
provider: {name: odin, version: 1.0.0}
job:
  id: a37b187f5930
  name: report
  language: python
  file: report.py
  schedule: every day at 09:00
  timezone: Europe/Dublin
  except:
    - on public holidays in IE
    - 2026-12-24 to 2027-01-02
    - 2026-05-05
    - calendar: closed
    - the last Friday of each month
  on_excluded: next
"""

CALENDAR = """\
calendar:
  name: closed
  description: the office is shut
  except:
    - on public holidays in GB-SCT
    - 2026-12-24 to 2027-01-02
"""


def refusal(text: str, *, calendar: bool = False) -> JobFileError:
    with pytest.raises(JobFileError) as caught:
        if calendar:
            load_calendar_yaml(text, source="closed.yml")
        else:
            load_job_yaml(text, source="report.yml")
    return caught.value


def test_a_job_file_with_exceptions_loads_them_canonical_and_writes_them_back() -> None:
    spec = load_job_yaml(JOB)
    assert spec.exceptions == (
        "on public holidays in IE",
        "2026-12-24 to 2027-01-02",
        "2026-05-05",  # unquoted: a YAML date, read as written
        "calendar: closed",
        "on the last Friday of the month",
    )
    assert spec.on_excluded is OnExcluded.NEXT
    assert load_job_yaml(spec.to_yaml()) == spec
    assert "  - calendar: closed\n" in spec.to_yaml()
    assert load_job_yaml(JOB.split("  except:")[0]).exceptions == ()


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        ("on public holidays in XX", "job.except[1]", 'unknown country code "XX"'),
        ("on public holidays in US-ZZ", "job.except[1]", 'US has no subdivision "ZZ"'),
        ("2027-01-02 to 2026-12-24", "job.except[1]", "the range ends (2026-12-24) before"),
        ("2026-13-01", "job.except[1]", "2026-13-01 is not a date"),
        ("on Fridys", "job.except[1]", 'did you mean "fridays"'),
        ("{calendar: a b}", "job.except[1].calendar", '"a b" is not a calendar name'),
        ("{calendar: closed, extra: 1}", "job.except[1].extra", "unknown field"),
        ("[on weekends]", "job.except[1]", "expected text, found a list"),
    ],
)
def test_a_wrong_item_names_its_field_and_line(item: str, field: str, words: str) -> None:
    text = JOB.replace("    - 2026-12-24 to 2027-01-02", f"    - {item}")
    error = refusal(text)
    assert (error.field, error.line) == (field, 11)
    assert f"report.yml: line 11: {field}: " in error.message and words in error.message


def test_except_must_be_a_list_and_on_excluded_skip_or_next() -> None:
    head, _ = JOB.split("  except:")
    error = refusal(head + "  except: on weekends\n")
    assert (error.field, error.line) == ("job.except", 9)
    assert "expected a list of exceptions" in error.message
    error = refusal(JOB.replace("on_excluded: next", "on_excluded: later"))
    assert (error.field, error.line) == ("job.on_excluded", 15)
    assert '"later" is not one of skip | next' in error.message


def test_an_unknown_calendar_is_refused_at_its_item() -> None:
    refuse_unknown_calendars(JOB, {"closed"}, "report.yml")
    with pytest.raises(JobFileError) as caught:
        refuse_unknown_calendars(JOB, {"holidays"}, "report.yml")
    assert (caught.value.field, caught.value.line) == ("job.except[3].calendar", 13)
    assert "no calendar named closed" in caught.value.message
    assert "your calendars: holidays" in caught.value.message
    quoted = JOB.replace("    - calendar: closed", '    - "calendar: closed"')
    with pytest.raises(JobFileError) as caught:
        refuse_unknown_calendars(quoted, set(), "report.yml")
    assert (caught.value.field, caught.value.line) == ("job.except[3]", 13)


def test_a_calendar_file_loads_and_writes_back() -> None:
    spec = load_calendar_yaml(CALENDAR)
    assert spec == CalendarSpec(
        "closed",
        "the office is shut",
        ("on public holidays in GB-SCT", "2026-12-24 to 2027-01-02"),
    )
    assert load_calendar_yaml(spec.to_yaml()) == spec


@pytest.mark.parametrize(
    ("text", "field", "line", "words"),
    [
        (CALENDAR + "    - calendar: other\n", "calendar.except[2]", 7, "cannot include another"),
        (CALENDAR + "    - 2026-12-24 to 2026\n", "calendar.except[2]", 7, "not a date or a range"),
        (CALENDAR.replace("name: closed", "name: a/b"), "calendar.name", 2, "not a calendar name"),
        (CALENDAR.replace("  name: closed\n", ""), "calendar.name", 1, "missing"),
        ("calendar:\n  name: x\n  except: []\n", "calendar.except", 2, "is empty"),
        (CALENDAR.replace("description", "descripton"), "calendar.descripton", 3, "did you mean"),
    ],
)
def test_a_wrong_calendar_file_names_its_field_and_line(
    text: str, field: str, line: int, words: str
) -> None:
    error = refusal(text, calendar=True)
    assert (error.field, error.line) == (field, line)
    assert words in error.message
