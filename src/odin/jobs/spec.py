"""The job file: a YAML document in the original Odin's shape, and ``JobSpec``.

```yaml
provider: {name: odin, version: 1.0.0}
job:
  id: a37b187f5930          # required: 12 lowercase hex digits
  name: amzn_stocks         # required, one line
  description: check stocks # optional
  language: python          # required: python | go | node (and aliases)
  file: amzn_stocks.py      # required, relative to the YAML's folder
  schedule: every hour      # required: plain English (odin.schedule), or a list of several
  timezone, timeout, retries, overlap, catchup, delivery, env, workdir, nodes, jitter  # optional
  notify, warn_after, grace  # optional: alerts (odin.jobs.notify, docs/alerts.md)
```

``load_job_yaml`` is the one gate: whatever it is given, it returns a valid
``JobSpec`` or raises ``JobFileError`` naming the field (``job.schedule``) and
the line. Text fields are taken as written (``name: 123`` is the name "123"),
so YAML's implicit typing cannot change what a user meant.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml

from odin.errors import JobFileError
from odin.jobs import fields as f
from odin.jobs._text import show
from odin.jobs.durations import format_duration
from odin.jobs.excepts import (
    check_calendar_ref,
    check_except_item,
    check_except_list,
    is_calendar_item,
)
from odin.jobs.fields import Catchup, Delivery, OnExcluded, Overlap, Problem
from odin.jobs.language import Language
from odin.jobs.notify import Notify, check_after, check_destination, check_events, check_notify_list
from odin.jobs.yamlsafe import compose_document, line_of, located

__all__ = ["Catchup", "Delivery", "JobSpec", "Language", "Overlap", "load_job_yaml"]

PROVIDER_NAME = "odin"
PROVIDER_VERSION = "1.0.0"

_TAG = "tag:yaml.org,2002:"
_NULL = _TAG + "null"
_INT = _TAG + "int"
_TEXT_TAGS = frozenset(_TAG + kind for kind in ("str", "null", "bool", "int", "float", "timestamp"))
_PROVIDER_FIELDS = ("name", "version")
_REQUIRED = ("id", "name", "language", "file", "schedule")
_JOB_FIELDS = (
    *_REQUIRED,
    *(
        "description",
        "timezone",
        "timeout",
        "retries",
        "overlap",
        "catchup",
        "delivery",
        "env",
        "workdir",
        "nodes",
        "notify",
        "warn_after",
        "grace",
        "except",
        "on_excluded",
        "jitter",
    ),
)
_NOTIFY_FIELDS = ("to", "on", "after")
_DUMP_WIDTH = 1 << 16  # never fold long lines when writing YAML

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

T = TypeVar("T")
_Entries = dict[str, tuple[yaml.Node, yaml.Node]]


@dataclass(frozen=True)
class JobSpec:
    """A valid job file. Build it with ``load_job_yaml``; other code may trust it.

    ``timezone`` None means the engine host's zone; ``timeout`` is seconds;
    ``workdir`` None means the owner's home; ``nodes`` empty means any node (that the
    names are members is for the engine to check at deploy: this parser knows no cluster).
    """

    id: str
    name: str
    language: Language
    file: str
    schedule: str
    description: str = ""
    timezone: str | None = None
    timeout: float | None = None
    retries: int = 0
    overlap: Overlap = Overlap.SKIP
    catchup: Catchup = Catchup.LATEST
    delivery: Delivery = Delivery.AT_MOST_ONCE
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    workdir: str | None = None
    nodes: tuple[str, ...] = ()
    notify: tuple[Notify, ...] = ()
    warn_after: float | None = None
    grace: float | None = None
    exceptions: tuple[str, ...] = ()  # ``except:`` items, canonical (odin.jobs.excepts)
    on_excluded: OnExcluded = OnExcluded.SKIP
    jitter: float | None = None  # each scheduled run starts up to this long after its tick
    provider_version: str = PROVIDER_VERSION

    def with_changes(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        schedule: str | None = None,
    ) -> JobSpec:
        """A copy with the fields ``odin modify`` may change, each checked as on load."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = _checked("name", f.check_name, name)
        if description is not None:
            changes["description"] = _checked("description", f.check_description, description)
        if schedule is not None:
            changes["schedule"] = _checked(
                "schedule", lambda text: f.check_schedule(text, self.timezone), schedule
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (enums as strings, env as a dict, nodes as a list)."""
        values = dataclasses.asdict(self)
        values.update(
            language=self.language.value,
            overlap=self.overlap.value,
            catchup=self.catchup.value,
            delivery=self.delivery.value,
            env=dict(self.env),
            nodes=list(self.nodes),
            notify=[entry.to_dict() for entry in self.notify],
            exceptions=list(self.exceptions),
            on_excluded=self.on_excluded.value,
        )
        return values

    def to_yaml(self) -> str:
        """The job file for this spec; ``load_job_yaml(spec.to_yaml()) == spec``."""
        document = {
            "provider": {"name": PROVIDER_NAME, "version": self.provider_version},
            "job": self._job_fields(),
        }
        return _dump(document)

    def _job_fields(self) -> dict[str, Any]:
        job: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "language": self.language.value,
            "file": self.file,
            "schedule": schedule_field(self.schedule),
        }
        optional: dict[str, Any] = {
            "timezone": self.timezone,
            "timeout": None if self.timeout is None else format_duration(self.timeout),
            "retries": self.retries or None,
            "overlap": None if self.overlap is Overlap.SKIP else self.overlap.value,
            "catchup": None if self.catchup is Catchup.LATEST else self.catchup.value,
            "delivery": None if self.delivery is Delivery.AT_MOST_ONCE else self.delivery.value,
            "env": dict(self.env) or None,
            "workdir": self.workdir,
            "nodes": list(self.nodes) or None,
            "notify": [_notify_fields(entry) for entry in self.notify] or None,
            "warn_after": None if self.warn_after is None else format_duration(self.warn_after),
            "grace": None if self.grace is None else format_duration(self.grace),
            "except": except_fields(self.exceptions) or None,
            "on_excluded": None if self.on_excluded is OnExcluded.SKIP else self.on_excluded.value,
            "jitter": None if self.jitter is None else format_duration(self.jitter),
        }
        job.update({key: value for key, value in optional.items() if value is not None})
        return job


def schedule_field(schedule: str) -> str | list[str]:
    """``schedule:`` as a file writes it: a list when the job has several."""
    if f.SCHEDULE_SEPARATOR not in schedule:
        return schedule
    return schedule.split(f.SCHEDULE_SEPARATOR)


def except_fields(items: tuple[str, ...]) -> list[Any]:
    """``except:`` items as a file writes them: ``calendar: NAME`` as a mapping."""
    return [
        {"calendar": item.split(":", 1)[1].strip()} if is_calendar_item(item) else item
        for item in items
    ]


def _notify_fields(entry: Notify) -> dict[str, Any]:
    fields: dict[str, Any] = {"to": entry.to}
    if entry.on != Notify(entry.to).on:
        fields["on"] = [str(event) for event in entry.on]
    if entry.after != 1:
        fields["after"] = entry.after
    return fields


def _dump(document: dict[str, Any]) -> str:
    """Readable YAML, or all-ASCII escapes where PyYAML would garble a character.

    PyYAML's emitter mangles some line-break characters (such as U+0085) in
    quoted scalars when writing Unicode as is; the escaped form is exact.
    """
    readable = _emit(document, allow_unicode=True)
    if yaml.load(readable, Loader=_Loader) == document:
        return readable
    return _emit(document, allow_unicode=False)


def _emit(document: dict[str, Any], *, allow_unicode: bool) -> str:
    text = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=allow_unicode, width=_DUMP_WIDTH
    )
    assert isinstance(text, str)
    return text


def load_job_yaml(text: str | bytes, *, source: str = "<job>") -> JobSpec:
    """Parse and check a job file; raises only ``JobFileError``."""
    root = compose_document(text, source)
    try:
        return _spec(root)
    except _At as at:
        line = line_of(at.node) if at.node is not None else None
        raise located(source, at.detail, field=at.field, line=line) from None


class _At(Exception):
    """A problem pinned to a field and the node it was found at."""

    def __init__(self, detail: str, field: str | None, node: yaml.Node | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.node = node


def _checked(name: str, check: Callable[[str], T], value: str) -> T:
    try:
        return check(value)
    except Problem as problem:
        raise JobFileError(f"job.{name}: {problem.detail}", field=f"job.{name}") from None


def _spec(root: yaml.Node | None) -> JobSpec:
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL):
        raise _At("the file is empty: expected provider: and job:", None, None)
    top = _section(root, "", ("provider", "job"), ("provider", "job"), None)
    version = _provider(*top["provider"])
    return _job(*top["job"], version)


def _provider(key: yaml.Node, node: yaml.Node) -> str:
    entries = _section(node, "provider", _PROVIDER_FIELDS, _PROVIDER_FIELDS, key)
    name = _read(entries, "provider.name", lambda n: (_text(n) or "").strip())
    if name.lower() != PROVIDER_NAME:
        raise _At(f"must be {PROVIDER_NAME}, not {show(name)}", "provider.name", entries["name"][1])
    version = _read(entries, "provider.version", lambda n: (_text(n) or "").strip())
    if not version:
        raise _At("is empty: write 1.0.0", "provider.version", entries["version"][1])
    return version


def _job(key: yaml.Node, node: yaml.Node, version: str) -> JobSpec:
    entries = _section(node, "job", _JOB_FIELDS, _REQUIRED, key)
    language = _read(entries, "job.language", lambda n: f.check_language(_text(n)))
    timezone = _read(entries, "job.timezone", lambda n: f.check_timezone(_text(n)), None)
    return JobSpec(
        id=_read(entries, "job.id", lambda n: f.check_id(_text(n))),
        name=_read(entries, "job.name", lambda n: f.check_name(_text(n))),
        language=language,
        file=_read(entries, "job.file", lambda n: f.check_file(_text(n), language)),
        schedule=_schedule(entries, timezone),
        description=_read(entries, "job.description", lambda n: f.check_description(_text(n)), ""),
        timezone=timezone,
        timeout=_read(entries, "job.timeout", lambda n: f.check_timeout(_text(n)), None),
        retries=_read(entries, "job.retries", lambda n: f.check_retries(_integer(n)), 0),
        overlap=_read(entries, "job.overlap", lambda n: f.check_overlap(_text(n)), Overlap.SKIP),
        catchup=_read(entries, "job.catchup", lambda n: f.check_catchup(_text(n)), Catchup.LATEST),
        delivery=_read(
            entries, "job.delivery", lambda n: f.check_delivery(_text(n)), Delivery.AT_MOST_ONCE
        ),
        env=_read(entries, "job.env", _env, {}),
        workdir=_read(entries, "job.workdir", lambda n: f.check_workdir(_text(n)), None),
        nodes=_read(entries, "job.nodes", _nodes, ()),
        notify=_notify(entries),
        warn_after=_read(entries, "job.warn_after", lambda n: f.check_timeout(_text(n)), None),
        grace=_read(entries, "job.grace", lambda n: f.check_timeout(_text(n)), None),
        exceptions=except_list(entries, "job.except"),
        on_excluded=_read(
            entries, "job.on_excluded", lambda n: f.check_on_excluded(_text(n)), OnExcluded.SKIP
        ),
        jitter=_read(entries, "job.jitter", lambda n: f.check_jitter(_text(n)), None),
        provider_version=version,
    )


def _schedule(entries: _Entries, timezone: str | None) -> str:
    """``schedule:``, one text or a list of them (each in any syntax), as one text: the
    entries joined by ``"; "``; a problem names the entry and its line."""
    node = entries["schedule"][1]
    if not isinstance(node, yaml.SequenceNode):
        return _read(entries, "job.schedule", lambda n: f.check_schedule(_text(n), timezone))
    if not node.value:
        raise _At("is an empty list: give a schedule, or a list of several", "job.schedule", node)
    texts = []
    for index, item in enumerate(node.value):
        one = {f"schedule[{index}]": (item, item)}
        texts.append(
            _read(one, f"job.schedule[{index}]", lambda n: _schedule_entry(_text(n), timezone))
        )
    try:
        return f.check_schedule(f.SCHEDULE_SEPARATOR.join(texts), timezone)
    except Problem as problem:
        raise _At(problem.detail, "job.schedule", node) from None


def _schedule_entry(text: str | None, timezone: str | None) -> str:
    """One entry of a list of schedules: a schedule that fires (``never`` stands alone)."""
    value = f.check_schedule(text, timezone)
    if value.lower() == "never":
        raise Problem('"never" cannot be one of several schedules: leave it out')
    return value


_MISSING: Any = object()


def _read(
    entries: _Entries, path: str, convert: Callable[[yaml.Node], T], default: T = _MISSING
) -> T:
    """Convert the value at ``path`` (absent → ``default``), pinning problems to it."""
    pair = entries.get(path.rsplit(".", 1)[-1])
    if pair is None:
        return default
    try:
        return convert(pair[1])
    except Problem as problem:
        raise _At(problem.detail, path, pair[1]) from None


def _section(
    node: yaml.Node,
    path: str,
    allowed: tuple[str, ...],
    required: tuple[str, ...],
    key: yaml.Node | None,
) -> _Entries:
    """The fields of a mapping, refusing duplicates, unknown and missing fields."""
    where = path or None
    if not isinstance(node, yaml.MappingNode):
        expected = "a mapping with provider: and job:" if not path else "a mapping of fields"
        raise _At(f"expected {expected}, found {_kind(node)}", where, node)
    entries = _entries(node, path)
    for name, (name_node, _) in entries.items():
        if name not in allowed:
            raise _At(_unknown(name, allowed), _dotted(path, name), name_node)
    for name in required:
        if name not in entries:
            raise _At(_missing(name), _dotted(path, name), key or node)
    return entries


def _entries(node: yaml.MappingNode, path: str) -> _Entries:
    entries: _Entries = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise _At(f"a field name must be plain text, not {_kind(key)}", path or None, key)
        name = key.value
        if name in entries:
            first = line_of(entries[name][0])
            raise _At(f"appears twice (first on line {first})", _dotted(path, name), key)
        entries[name] = (key, value)
    return entries


def _dotted(path: str, name: str) -> str:
    shown = name if name.isidentifier() and len(name) <= 40 else show(name)
    return f"{path}.{shown}" if path else shown


def _unknown(name: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name.lower()[:40], allowed, n=1)
    hint = f" (did you mean {close[0]}?)" if close else f" (expected one of: {', '.join(allowed)})"
    return "unknown field" + hint


def _missing(name: str) -> str:
    if name == "schedule":
        return f"missing: add it, e.g. schedule: {f.SCHEDULE_EXAMPLE}"
    return "missing: this field is required"


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the value {show(node.value)}"


def _text(node: yaml.Node) -> str | None:
    """A scalar exactly as written (``None`` for an empty or null value)."""
    if not isinstance(node, yaml.ScalarNode):
        raise Problem(f"expected text, found {_kind(node)}")
    if node.tag not in _TEXT_TAGS:
        raise Problem(f"the tag {show(node.tag)} is not allowed here")
    if node.tag == _NULL:
        return None
    value: str = node.value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Problem("contains an invalid character (an unpaired surrogate)") from None
    return value


def _integer(node: yaml.Node) -> int:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _INT:
        raise Problem(f"expected a whole number, found {_kind(node)}")
    try:
        value = yaml.constructor.SafeConstructor().construct_yaml_int(node)
    except ValueError:
        raise Problem(f"{show(node.value)} is not a usable number") from None
    assert isinstance(value, int)
    return value


def _env(node: yaml.Node) -> dict[str, str]:
    if not isinstance(node, yaml.MappingNode):
        raise Problem(f"expected a mapping of NAME: value, found {_kind(node)}")
    env: dict[str, str] = {}
    for name, (key, value) in _entries(node, "job.env").items():
        try:
            env[f.check_env_name(name)] = _text(value) or ""
        except Problem as problem:
            raise _At(problem.detail, _dotted("job.env", name), key) from None
    return f.check_env(env)


def _nodes(node: yaml.Node) -> tuple[str, ...]:
    if isinstance(node, yaml.ScalarNode):
        text = _text(node)
        return f.check_nodes([text.strip()] if text and text.strip() else [])
    if not isinstance(node, yaml.SequenceNode):
        raise Problem(f"expected a list of node names, found {_kind(node)}")
    return f.check_nodes([(_text(item) or "").strip() for item in node.value])


def except_list(entries: _Entries, path: str, *, calendars: bool = True) -> tuple[str, ...]:
    """An ``except:`` list (a job's, or with ``calendars`` False a calendar's): each item a
    rule's text or ``calendar: NAME``, kept as its canonical text (odin.jobs.excepts)."""
    pair = entries.get(path.rsplit(".", 1)[-1])
    if pair is None:
        return ()
    node = pair[1]
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise _At(
            f'expected a list of exceptions (- "on public holidays in IE"), found {_kind(node)}',
            path,
            node,
        )
    found = [
        _except_item(item, f"{path}[{index}]", calendars) for index, item in enumerate(node.value)
    ]
    try:
        return check_except_list(found)
    except Problem as problem:
        raise _At(problem.detail, path, node) from None


def _except_item(node: yaml.Node, path: str, calendars: bool) -> str:
    if isinstance(node, yaml.MappingNode):
        entries = _section(node, path, ("calendar",), ("calendar",), node)
        text = _read(entries, f"{path}.calendar", lambda n: check_calendar_ref(_text(n)))
    else:
        pair = {path.rsplit(".", 1)[-1]: (node, node)}
        text = _read(pair, path, lambda n: check_except_item(_text(n)))
    if not calendars and is_calendar_item(text):
        raise _At("a calendar cannot include another calendar", path, node)
    return text


def _notify(entries: _Entries) -> tuple[Notify, ...]:
    """The ``notify:`` list: each entry a mapping, or a bare URL (default events)."""
    pair = entries.get("notify")
    if pair is None:
        return ()
    node = pair[1]
    if not isinstance(node, yaml.SequenceNode):
        raise _At(
            f"expected a list of destinations (- to: URL), found {_kind(node)}", "job.notify", node
        )
    found = [_notify_entry(item, f"job.notify[{index}]") for index, item in enumerate(node.value)]
    try:
        return check_notify_list(found)
    except Problem as problem:
        raise _At(problem.detail, "job.notify", node) from None


def _notify_entry(node: yaml.Node, path: str) -> Notify:
    if isinstance(node, yaml.ScalarNode):
        return Notify(
            _read({"to": (node, node)}, f"{path}.to", lambda n: check_destination(_text(n)))
        )
    entries = _section(node, path, _NOTIFY_FIELDS, ("to",), node)
    to = _read(entries, f"{path}.to", lambda n: check_destination(_text(n)))
    on = _read(entries, f"{path}.on", _events, Notify(to).on)
    after = _read(entries, f"{path}.after", lambda n: check_after(_integer(n)), 1)
    return Notify(to=to, on=on, after=after)


def _events(node: yaml.Node) -> tuple[Any, ...]:
    if isinstance(node, yaml.ScalarNode):
        text = _text(node) or ""
        return check_events([part for part in text.split(",") if part.strip()])
    if not isinstance(node, yaml.SequenceNode):
        raise Problem(f"expected a list of events such as [failure, recovery], found {_kind(node)}")
    return check_events((_text(item) or "") for item in node.value)
