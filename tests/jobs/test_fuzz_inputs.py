"""Hostile input to the schedule parser and the job file loader: only the documented errors.

The quick CI run uses ``ODIN_FUZZ_EXAMPLES`` examples per property (default 150);
``make fuzz`` sets it high (and ``ODIN_FUZZ_SECONDS`` for the API fuzzer). Inputs
mix structure the parsers expect (schedule words, YAML mappings) with huge,
deeply nested, binary and non-UTF-8 text, so that both the early refusals and
the deep paths are reached.
"""

from __future__ import annotations

import os
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odin.errors import JobFileError, ScheduleError
from odin.jobs.spec import JobSpec, load_job_yaml
from odin.schedule import parse

EXAMPLES = int(os.environ.get("ODIN_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 150,  # the CI run is reproducible; make fuzz explores
)
SLOW_S = 2.0  # no single input may take the parser this long (no quadratic blow-ups)

WORDS = [
    "every", "at", "and", "on", "in", "between", "of", "the", "day", "days", "minute",
    "minutes", "hour", "hours", "second", "seconds", "week", "weekday", "weekend", "month",
    "last", "first", "monday", "Saturday", "January", "july", "22nd", "1st", "23rd", "15th",
    "00:00", "13:13", "24:00", "6pm", "12am", "noon", "midnight", "never", "cron", "*/5",
    "* * * * *", "Europe/Dublin", "UTC", "Mars/Base", "-1", "0", "99999999999999999999", ",",
    "\u0000", "\n", "\u202e", "é", "💥",
]  # fmt: skip

schedule_texts = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=30).map(" ".join),
    st.text(max_size=300),
    st.builds(lambda chunk, n: chunk * n, st.text(min_size=1, max_size=20), st.integers(50, 500)),
    st.builds(lambda w, n: " and ".join([w] * n), st.sampled_from(WORDS), st.integers(1, 400)),
)


@FUZZ
@given(schedule_texts)
def test_schedule_parser_raises_only_schedule_errors(text: str) -> None:
    started = time.monotonic()
    try:
        schedule = parse(text)
    except ScheduleError as error:
        assert error.message and 0 <= error.position <= max(len(text), 1000)
    else:
        schedule.describe()
    assert time.monotonic() - started < SLOW_S, text[:80]


FIELDS = [
    "id", "name", "description", "language", "file", "schedule", "timezone", "timeout",
    "retries", "overlap", "catchup", "env", "workdir", "nodes", "user", "uid", "version",
]  # fmt: skip
scalars = st.one_of(
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.sampled_from(WORDS),
    st.sampled_from(["python", "go", "node", "job.py", "../../etc/passwd", "/abs", "1s", "0"]),
)


def _yaml_value(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "null" if value is None else str(value).lower()


job_files = st.builds(
    lambda pairs, indent: (
        "provider:\n  name: odin\n  version: 1.0.0\njob:\n"
        + "".join(f"{' ' * indent}{k}: {_yaml_value(v)}\n" for k, v in pairs)
    ),
    st.lists(st.tuples(st.sampled_from(FIELDS), scalars), max_size=12),
    st.sampled_from([2, 2, 2, 4, 0, 1]),
)
nested = st.integers(1, 5000).map(lambda n: "job:\n  env: " + "[" * n + "]" * n + "\n")
nested_maps = st.integers(1, 3000).map(lambda n: "job: " + "{a: " * n + "1" + "}" * n)
anchors = st.integers(1, 12).map(
    lambda n: (
        "a0: &a0 [x, x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, n))
    )
)
raw = st.one_of(
    st.binary(max_size=2000),
    st.builds(
        lambda chunk, n: chunk * n, st.binary(min_size=1, max_size=64), st.integers(1000, 4000)
    ),
    st.text(max_size=2000),
    st.builds(
        lambda chunk, n: chunk * n, st.text(min_size=1, max_size=64), st.integers(1000, 4000)
    ),
    job_files.map(lambda t: t + "# " + "x" * 70_000 + "\n"),
    job_files.map(lambda t: t.encode("utf-16")),
    job_files.map(lambda t: t.encode() + b"\xff\xfe"),
)
documents = st.one_of(job_files, job_files, nested, nested_maps, anchors, raw)


@FUZZ
@given(documents)
def test_job_loader_raises_only_job_file_errors(document: str | bytes) -> None:
    started = time.monotonic()
    try:
        spec = load_job_yaml(document, source="fuzz.yml")
    except JobFileError as error:
        assert error.message and "fuzz.yml" in error.message
        assert error.line is None or error.line >= 1
    else:
        assert isinstance(spec, JobSpec)
        assert load_job_yaml(spec.to_yaml(), source="again.yml") == spec
    assert time.monotonic() - started < SLOW_S
