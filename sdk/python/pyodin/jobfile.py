"""Reading the job's identity (``job: id:`` and ``job: name:``) from its YAML file.

Jobs run under the system Python without third-party packages, so PyYAML is
used when present and a reader for just these two fields otherwise. The
fallback understands block style (``job:`` then indented ``id:``/``name:``),
plain, single- and double-quoted scalars and comments; nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from .errors import OdinConfigError
from .limits import ENV_JOB_ID, ENV_JOB_NAME
from .values import Value

FIELDS = ("id", "name")


class JobIdentity(Value):
    __slots__ = ("job_id", "job_name")

    def __init__(self, job_id: str, job_name: str) -> None:
        self.job_id = job_id
        self.job_name = job_name


def resolve_identity(config: str, env: Mapping[str, str], *, inside: bool) -> JobIdentity:
    """The job's id and name: the engine's environment wins over the file.

    Inside a run a missing or broken file is not fatal (the engine said who we
    are); outside a run it is an ``OdinConfigError`` naming the file.
    """
    try:
        fields = read_job_file(config)
    except OdinConfigError:
        if not inside:
            raise
        fields = {}
    return JobIdentity(
        job_id=env.get(ENV_JOB_ID) or fields.get("id", ""),
        job_name=env.get(ENV_JOB_NAME) or fields.get("name", ""),
    )


def read_job_file(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise OdinConfigError(f"odin: cannot read the job file {path!r}: {exc}") from exc
    try:
        return parse_job_fields(text)
    except ValueError as exc:
        raise OdinConfigError(f"odin: the job file {path!r} is not valid YAML: {exc}") from exc


def parse_job_fields(text: str) -> dict[str, str]:
    try:
        import yaml
    except ImportError:
        return parse_job_fields_plain(text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc
    return _fields_from(data)


def _fields_from(data: object) -> dict[str, str]:
    job = data.get("job") if isinstance(data, dict) else None
    if not isinstance(job, dict):
        return {}
    return {key: str(job[key]) for key in FIELDS if job.get(key) is not None}


def parse_job_fields_plain(text: str) -> dict[str, str]:
    """The stdlib fallback: ``id`` and ``name`` directly under a top-level ``job:``."""
    fields: dict[str, str] = {}
    in_job, child_indent = False, -1
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped == "---":
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, colon, rest = stripped.partition(":")
        if indent == 0:
            in_job, child_indent = key == "job" and colon != "" and scalar(rest) == "", -1
            continue
        if in_job and child_indent < 0:
            child_indent = indent
        if in_job and indent == child_indent and key in FIELDS and colon:
            fields[key] = scalar(rest)
    return fields


def scalar(text: str) -> str:
    """A YAML scalar written on one line, without its quotes or trailing comment."""
    text = text.strip()
    if text.startswith('"'):
        end = _closing_double_quote(text)
        return str(json.loads(text[: end + 1]))
    if text.startswith("'"):
        end = text.find("'", 1)
        while end != -1 and text[end + 1 : end + 2] == "'":
            end = text.find("'", end + 2)
        if end == -1:
            raise ValueError(f"unterminated quote in {text!r}")
        return text[1:end].replace("''", "'")
    if text.startswith("#"):
        return ""
    return text.split(" #", 1)[0].rstrip()


def _closing_double_quote(text: str) -> int:
    index = 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index
        index += 1
    raise ValueError(f"unterminated quote in {text!r}")
