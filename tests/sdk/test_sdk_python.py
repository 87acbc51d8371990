"""pyodin's own parts: the bounds it mirrors, the stdlib YAML reader, the HTTP reader,
and that it runs under the system Python with no site packages at all."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from odin import config
from sdk_fake_engine import FakeEngine, run_job

SDK_PYTHON = Path(__file__).resolve().parents[2] / "sdk" / "python"
sys.path.insert(0, str(SDK_PYTHON))

import pyodin  # noqa: E402
from pyodin import jobfile, records, transport  # noqa: E402


@pytest.mark.slow
def test_importing_the_sdk_leaves_out_the_heavy_modules() -> None:
    """A job pays for what the SDK imports at every run: ``typing`` and ``dataclasses``
    (with ``inspect`` and ``ast``) cost more than the rest of it together."""
    heavy = ("typing", "dataclasses", "inspect", "ast")
    probe = f"import sys, pyodin; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run(
        [
            "/usr/bin/python3",
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(SDK_PYTHON)!r}); {probe}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_the_bounds_mirror_the_engine_table() -> None:
    assert pyodin.MAX_RECORD_BYTES == config.MAX_RECORD_BYTES
    assert pyodin.MAX_RECORDS_PER_RUN == config.MAX_RECORDS_PER_RUN
    assert issubclass(pyodin.OdinLimitError, ValueError)


JOB_FILES = [
    'job:\n  id: a37b187f5930\n  name: "amzn stocks"\n',
    "provider:\n  name: odin\n  id: wrong\njob:\n  name: 'it''s'   # quoted\n  id: 6d7341fa3fea # c\n",
    'job: # comment\n    id: "with # hash"\n    nested:\n      id: inner\n    name: plain name\n',
    "---\n# top comment\njob:\n  language: python\nafter:\n  id: not-the-job\n",
    "job:\n  id: 12\n  name: x\n",
    "other: 1\n",
]


@pytest.mark.parametrize("text", JOB_FILES)
def test_the_stdlib_reader_agrees_with_pyyaml(text: str) -> None:
    job = (yaml.safe_load(text) or {}).get("job") or {}
    expected = {key: str(job[key]) for key in ("id", "name") if key in job}
    assert jobfile.parse_job_fields_plain(text) == expected
    assert jobfile.parse_job_fields(text) == expected


def test_an_unterminated_quote_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unterminated"):
        jobfile.parse_job_fields_plain('job:\n  id: "abc\n')
    with pytest.raises(pyodin.OdinConfigError, match=r"missing\.yml"):
        jobfile.read_job_file(str(tmp_path / "missing.yml"))


def test_values_become_plain_json() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    cyclic: list[object] = []
    cyclic.append(cyclic)
    assert records.plain_json({"a": (1, 2), "b": Odd()}) == {"a": [1, 2], "b": "odd"}
    assert records.plain_json(float("nan")) == "nan"
    assert records.plain_json(cyclic) == "[[...]]"


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1\r\n!\r\n0\r\n\r\n",
            b"ok!",
        ),
    ],
)
def test_the_http_reader_knows_when_a_reply_is_whole(raw: bytes, body: bytes) -> None:
    assert transport._parse(raw[:-1], complete=False) is None
    assert transport._parse(raw, complete=False) == transport.Reply(200, body)


@pytest.fixture
def job_dir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "job.yml").write_text("job:\n  id: from-file\n  name: fallback\n")
    yield tmp_path


@pytest.mark.slow
def test_it_runs_without_site_packages_and_exits_through_finally(job_dir: Path) -> None:
    script = (
        "import sys\n"
        "assert 'yaml' not in sys.modules\n"
        "import pyodin\n"
        "odin = pyodin.Odin(config='job.yml')\n"
        "print('JOB', odin.job_id, odin.job_name)\n"
        "try:\n"
        "    odin.result('done', 4)\n"
        "finally:\n"
        "    print('FINALLY', 'yaml' in sys.modules)\n"
    )
    (job_dir / "job.py").write_text(script)
    with FakeEngine() as engine:
        env = {**engine.env(), "PYTHONPATH": str(SDK_PYTHON)}
        env.pop("ODIN_JOB_ID")
        env.pop("ODIN_JOB_NAME")
        run = run_job(["/usr/bin/python3", "-S", "job.py"], cwd=job_dir, env=env)
    assert run.returncode == 4, run.stderr
    assert "JOB from-file fallback" in run.stdout  # read without PyYAML
    assert "FINALLY False" in run.stdout
    assert [(r["type"], r["value"]) for r in engine.records] == [("result", 4)]
