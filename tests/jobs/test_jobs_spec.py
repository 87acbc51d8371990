"""The job file model: valid files load, every mistake names its field and line."""

from __future__ import annotations

import dataclasses
import string
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odin import config
from odin.errors import JobFileError, ScheduleError
from odin.jobs.spec import Catchup, JobSpec, Language, Overlap, load_job_yaml

FULL = """\
provider:
  name: odin
  version: 1.0.0
job:
  id: a37b187f5930
  name: amzn_stocks
  description: "check my stocks"
  language: python
  file: amzn_stocks.py
  schedule: "every hour"
  timezone: Europe/Dublin
  timeout: 1h30m
  retries: 2
  overlap: queue
  catchup: all
  env: {KEY: value, PORT: 8080}
  workdir: /home/me/work
  nodes: [worker1, worker2]
"""

MINIMAL = """\
provider:
  name: odin
  version: 1.0.0
job:
  id: "0123456789ab"
  name: backup
  language: go
  file: backup.go
  schedule: never
"""


def replace_line(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def load_error(text: str | bytes) -> JobFileError:
    with pytest.raises(JobFileError) as caught:
        load_job_yaml(text, source="job.yml")
    return caught.value


def test_full_file_loads_every_field() -> None:
    spec = load_job_yaml(FULL)
    assert spec == JobSpec(
        id="a37b187f5930",
        name="amzn_stocks",
        description="check my stocks",
        language=Language.PYTHON,
        file="amzn_stocks.py",
        schedule="every hour",
        timezone="Europe/Dublin",
        timeout=5400.0,
        retries=2,
        overlap=Overlap.QUEUE,
        catchup=Catchup.ALL,
        env={"KEY": "value", "PORT": "8080"},
        workdir="/home/me/work",
        nodes=("worker1", "worker2"),
    )


def test_minimal_file_takes_defaults() -> None:
    spec = load_job_yaml(MINIMAL.encode())
    assert (spec.language, spec.description, spec.timezone, spec.timeout) == (
        Language.GO,
        "",
        None,
        None,
    )
    assert (spec.retries, spec.overlap, spec.catchup) == (0, Overlap.SKIP, Catchup.LATEST)
    assert (dict(spec.env), spec.workdir, spec.nodes) == ({}, None, ())


@pytest.mark.parametrize(
    ("written", "file", "language"),
    [
        ("python3", "a.py", Language.PYTHON),
        ("Python", "a.py", Language.PYTHON),
        ("golang", "a.go", Language.GO),
        ("nodejs", "a.js", Language.NODE),
        ("javascript", "a.mjs", Language.NODE),
        ("js", "a.cjs", Language.NODE),
    ],
)
def test_language_aliases(written: str, file: str, language: Language) -> None:
    text = replace_line(MINIMAL, "language: go", f"language: {written}")
    spec = load_job_yaml(replace_line(text, "file: backup.go", f"file: {file}"))
    assert spec.language is language
    assert file.endswith(spec.language.extensions)


def test_texts_are_taken_as_written() -> None:
    """YAML's implicit typing must not turn an id or a name into a number."""
    text = replace_line(MINIMAL, 'id: "0123456789ab"', "id: 123456789012")
    text = replace_line(text, "name: backup", "name: 2024-01-01")
    spec = load_job_yaml(text)
    assert (spec.id, spec.name) == ("123456789012", "2024-01-01")


def test_utf8_bom_and_crlf_are_fine() -> None:
    spec = load_job_yaml(b"\xef\xbb\xbf" + MINIMAL.replace("\n", "\r\n").encode())
    assert spec.name == "backup"


def test_schedule_uses_the_job_timezone() -> None:
    text = replace_line(MINIMAL, "schedule: never", "schedule: everyday at 21:15")
    spec = load_job_yaml(text + "  timezone: America/New_York\n")
    assert (spec.schedule, spec.timezone) == ("everyday at 21:15", "America/New_York")


# Each case: a change to FULL, the field the error must name, its line, and a
# fragment the message must contain.
INVALID = [
    ("name: amzn_stocks", 'name: ""', "job.name", 6, "empty"),
    ("name: amzn_stocks", "name: [a, b]", "job.name", 6, "expected text"),
    ("name: amzn_stocks", 'name: "a\\tb"', "job.name", 6, "control characters"),
    ("name: amzn_stocks", "name: " + "n" * 201, "job.name", 6, "at most 200"),
    ('description: "check my stocks"', "description: " + "d" * 2001, "job.description", 7, "2000"),
    ("id: a37b187f5930", "id: A37B187F5930", "job.id", 5, "12 lowercase hex"),
    ("id: a37b187f5930", "id: a37b", "job.id", 5, "12 lowercase hex"),
    ("language: python", "language: rust", "job.language", 8, "python, go or node"),
    ("file: amzn_stocks.py", "file: amzn_stocks.go", "job.file", 9, "expected a .py file"),
    ("file: amzn_stocks.py", "file: /abs/amzn_stocks.py", "job.file", 9, "relative"),
    ("file: amzn_stocks.py", 'file: ""', "job.file", 9, "empty"),
    ('schedule: "every hour"', 'schedule: ""', "job.schedule", 10, "every day at 18:00"),
    ('schedule: "every hour"', "schedule:", "job.schedule", 10, '"never"'),
    ("timezone: Europe/Dublin", "timezone: Mars/Olympus", "job.timezone", 11, "IANA"),
    ("timezone: Europe/Dublin", "timezone: Europe", "job.timezone", 11, "IANA"),
    ("timezone: Europe/Dublin", "timezone: ../../etc/passwd", "job.timezone", 11, "IANA"),
    ("timeout: 1h30m", "timeout: soon", "job.timeout", 12, "30s, 5m, 1h"),
    ("timeout: 1h30m", "timeout: 0", "job.timeout", 12, "positive"),
    ("timeout: 1h30m", "timeout: -5m", "job.timeout", 12, "not a duration"),
    ("retries: 2", "retries: 11", "job.retries", 13, "between 0 and 10"),
    ("retries: 2", "retries: -1", "job.retries", 13, "between 0 and 10"),
    ("retries: 2", "retries: two", "job.retries", 13, "whole number"),
    ("retries: 2", "retries: true", "job.retries", 13, "whole number"),
    ("retries: 2", "retries: 2.5", "job.retries", 13, "whole number"),
    ("overlap: queue", "overlap: sometimes", "job.overlap", 14, "skip | queue | allow"),
    ("catchup: all", "catchup: most", "job.catchup", 15, "none | latest | all"),
    ("env: {KEY: value, PORT: 8080}", "env: [a]", "job.env", 16, "NAME: value"),
    ("env: {KEY: value, PORT: 8080}", "env: {ODIN_X: 1}", "job.env.ODIN_X", 16, "reserved"),
    ("env: {KEY: value, PORT: 8080}", "env: {9LIVES: 1}", 'job.env."9LIVES"', 16, "variable"),
    ("env: {KEY: value, PORT: 8080}", "env: {A: [1]}", "job.env.A", 16, "expected text"),
    ("workdir: /home/me/work", "workdir: me/work", "job.workdir", 17, "absolute"),
    ("nodes: [worker1, worker2]", "nodes: [a, a]", "job.nodes", 18, "twice"),
    ("nodes: [worker1, worker2]", "nodes: {a: b}", "job.nodes", 18, "list"),
    ("name: odin", "name: cron", "provider.name", 2, "must be odin"),
    ("version: 1.0.0", 'version: ""', "provider.version", 3, "empty"),
    ('schedule: "every hour"', 'scheduel: "every hour"', "job.scheduel", 10, "did you mean"),
    ("retries: 2", "retries: 2\n  name: again", "job.name", 14, "twice (first on line 6)"),
    ('schedule: "every hour"', "", "job.schedule", 4, "missing"),
    ("  id: a37b187f5930\n", "", "job.id", 4, "missing"),
    ("  name: odin\n", "  nmae: odin\n", "provider.nmae", 2, "unknown field"),
]


@pytest.mark.parametrize(("old", "new", "field", "line", "fragment"), INVALID)
def test_invalid_field_names_field_and_line(
    old: str, new: str, field: str, line: int, fragment: str
) -> None:
    error = load_error(replace_line(FULL, old, new))
    assert (error.field, error.line) == (field, line), str(error)
    assert fragment in str(error)
    assert str(error).startswith(f"job.yml: line {line}: {field}: ")


def test_bad_schedule_keeps_the_parser_message() -> None:
    from odin.schedule import parse

    with pytest.raises(ScheduleError) as parser_error:
        parse("every Satruday at 10:00")
    error = load_error(replace_line(FULL, '"every hour"', '"every Satruday at 10:00"'))
    assert (error.field, error.line) == ("job.schedule", 10)
    assert parser_error.value.message in str(error)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (b"provider: {name: odin\xff}\n", 1, "UTF-8"),
        ("job:\n  name: [unclosed\n", 3, "not valid YAML"),
        ('job:\n  name: "open\n', 3, "not valid YAML"),
        ("a: 1\n---\nb: 2\n", 2, "single document"),
        ("- a\n- b\n", 1, "expected a mapping with provider: and job:"),
        ("hello\n", 1, "expected a mapping"),
        ("x: &a 1\ny: *a\n", 1, "anchors and aliases"),
        ("a: \x07\n", 1, "not valid YAML"),
        ("a:\n  b: " + "[" * 40 + "]" * 40 + "\n", 2, "nested too deeply"),
    ],
)
def test_unreadable_files_say_why_and_where(text: str | bytes, line: int, fragment: str) -> None:
    error = load_error(text)
    assert error.line == line, str(error)
    assert fragment in str(error)


@pytest.mark.parametrize("text", ["", "# only a comment\n", b"", "---\n"])
def test_empty_file(text: str | bytes) -> None:
    assert "empty" in str(load_error(text))


def test_too_large_file_is_refused_before_parsing() -> None:
    big = FULL + "#" * config.MAX_YAML_BYTES
    assert "too large" in str(load_error(big))
    assert "too large" in str(load_error(big.encode()))


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for index in range(1, 9):
        prev, this = chr(ord("a") + index - 1), chr(ord("a") + index)
        lines.append(f"{this}: &{this} [{','.join(['*' + prev] * 9)}]")
    started = time.perf_counter()
    error = load_error("\n".join(lines))
    assert time.perf_counter() - started < 0.5
    assert "anchors and aliases" in str(error)


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    for text in ("[" * 60000, "{a: " * 15000, "- " * 30000 + "x"):
        load_error(text)


def test_round_trip_of_the_full_file() -> None:
    spec = load_job_yaml(FULL)
    assert load_job_yaml(spec.to_yaml()) == spec


def test_to_dict_is_plain() -> None:
    values = load_job_yaml(FULL).to_dict()
    assert values["language"] == "python" and values["nodes"] == ["worker1", "worker2"]
    assert values["timeout"] == 5400.0 and values["env"] == {"KEY": "value", "PORT": "8080"}


def test_with_changes_checks_like_a_load() -> None:
    spec = load_job_yaml(FULL)
    changed = spec.with_changes(name="stocks", description="", schedule="every Monday at 09:30")
    assert (changed.name, changed.description, changed.schedule) == (
        "stocks",
        "",
        "every Monday at 09:30",
    )
    assert (
        dataclasses.replace(
            changed, name=spec.name, description=spec.description, schedule=spec.schedule
        )
        == spec
    )
    for kwargs, field in [
        ({"name": " "}, "job.name"),
        ({"schedule": ""}, "job.schedule"),
        ({"schedule": "every Satruday"}, "job.schedule"),
        ({"description": "x" * 2001}, "job.description"),
    ]:
        with pytest.raises(JobFileError) as caught:
            spec.with_changes(**kwargs)
        assert caught.value.field == field


def test_spec_is_hashable_and_frozen() -> None:
    spec = load_job_yaml(FULL)
    assert hash(spec) == hash(load_job_yaml(FULL))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "x"  # type: ignore[misc]


# --- fuzzing: any input gives a JobSpec or a JobFileError, nothing else -----------------

YAML_PIECES = st.sampled_from(
    [
        "provider:",
        "job:",
        "name:",
        "odin",
        "version:",
        "1.0.0",
        "id:",
        "a37b187f5930",
        "language:",
        "python",
        "file:",
        "x.py",
        "schedule:",
        "every hour",
        "never",
        "env:",
        "nodes:",
        "timeout:",
        "retries:",
        "timezone:",
        "\n",
        "\n  ",
        "  ",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "&a",
        "*a",
        "!!binary",
        "!x",
        "'",
        '"',
        "#",
        "---",
        "? ",
        "|",
        ">",
        "~",
        "null",
        "true",
        "0x1f",
        "1e999",
        "\\x00",
        "\t",
        "%YAML 1.1",
    ]
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def accepts_or_refuses(data: str | bytes) -> None:
    try:
        spec = load_job_yaml(data)
    except JobFileError as error:
        assert error.message
        return
    assert isinstance(spec, JobSpec)
    assert load_job_yaml(spec.to_yaml()) == spec


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_bytes(data: bytes) -> None:
    accepts_or_refuses(data)


@FUZZ
@given(st.text(max_size=400))
def test_fuzz_text(data: str) -> None:
    accepts_or_refuses(data)


@FUZZ
@given(st.lists(YAML_PIECES, max_size=60).map("".join))
def test_fuzz_yaml_shaped(data: str) -> None:
    accepts_or_refuses(data)


FIELD_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(),
    st.sampled_from(["every hour", "never", "5m", "skip", "all", "Europe/Dublin", "x.py"]),
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "name",
                "description",
                "schedule",
                "timeout",
                "retries",
                "overlap",
                "catchup",
                "timezone",
                "workdir",
                "nodes",
                "env",
                "file",
                "language",
            ]
        ),
        FIELD_VALUES,
        max_size=6,
    )
)
def test_fuzz_field_values(values: dict[str, object]) -> None:
    import json

    job = {
        "id": "a37b187f5930",
        "name": "n",
        "language": "python",
        "file": "x.py",
        "schedule": "never",
        **values,
    }
    body = "\n".join(f"  {key}: {json.dumps(value)}" for key, value in job.items())
    accepts_or_refuses(f"provider:\n  name: odin\n  version: 1.0.0\njob:\n{body}\n")


PRINTABLE_LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40
)
ENV_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: not name.startswith("ODIN_")
)


@st.composite
def specs(draw: st.DrawFn) -> JobSpec:
    language = draw(st.sampled_from(list(Language)))
    stem = draw(st.text(alphabet=string.ascii_letters + "_- ./", min_size=1, max_size=12))
    return JobSpec(
        id=draw(st.integers(0, 16**12 - 1).map("{:012x}".format)),
        name=draw(PRINTABLE_LINE.map(str.strip).filter(bool)),
        language=language,
        file=(stem + draw(st.sampled_from(language.extensions))).lstrip("/ ").strip(),
        schedule=draw(st.sampled_from(["every hour", "never", "everyday at 21:15"])),
        description=draw(
            st.text(
                alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))
                | st.sampled_from("\n\t"),
                max_size=60,
            )
        ),
        timezone=draw(st.sampled_from([None, "UTC", "Europe/Dublin", "Asia/Kolkata"])),
        timeout=draw(
            st.none() | st.floats(min_value=0.001, max_value=1e6) | st.integers(1, 10**6).map(float)
        ),
        retries=draw(st.integers(0, config.MAX_RETRIES)),
        overlap=draw(st.sampled_from(list(Overlap))),
        catchup=draw(st.sampled_from(list(Catchup))),
        env=draw(
            st.dictionaries(
                ENV_NAMES,
                st.text(
                    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
                    max_size=20,
                ),
                max_size=4,
            )
        ),
        workdir=draw(st.none() | st.just("/home/me/work dir")),
        nodes=tuple(
            draw(
                st.lists(
                    st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), unique=True, max_size=3
                )
            )
        ),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_round_trip_property(spec: JobSpec) -> None:
    assert load_job_yaml(spec.to_yaml()) == spec
