"""Calendar files (``odin calendar add -f closed.yml``), and the calendars a job file names.

```yaml
calendar:
  name: closed                   # required: letters, digits, _ . -
  description: the office is shut  # optional
  except:                        # required: the items of a job's except:, but calendar:
    - on public holidays in IE
    - 2026-12-24 to 2027-01-02
```

``load_calendar_yaml`` returns a valid ``CalendarSpec`` or raises ``JobFileError`` naming
the field (``calendar.except[1]``) and the line, as ``load_job_yaml`` does for jobs.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import yaml

from odin.errors import ScheduleError
from odin.jobs import fields as f
from odin.jobs.excepts import is_calendar_item
from odin.jobs.spec import _At, _dump, _read, _section, _text, except_list
from odin.jobs.yamlsafe import compose_document, line_of, located
from odin.schedule.exceptions import check_calendar_name

_CALENDAR_FIELDS = ("name", "description", "except")
_REQUIRED = ("name", "except")
_NULL = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class CalendarSpec:
    """A valid calendar file; ``rules`` are canonical texts (``odin.jobs.excepts``)."""

    name: str
    description: str
    rules: tuple[str, ...]

    def to_yaml(self) -> str:
        """The calendar file for this spec; ``load_calendar_yaml(spec.to_yaml()) == spec``."""
        body: dict[str, object] = {"name": self.name}
        if self.description:
            body["description"] = self.description
        body["except"] = list(self.rules)
        return _dump({"calendar": body})


def load_calendar_yaml(text: str | bytes, *, source: str = "<calendar>") -> CalendarSpec:
    """Parse and check a calendar file; raises only ``JobFileError``."""
    root = compose_document(text, source)
    try:
        return _calendar(root)
    except _At as at:
        line = line_of(at.node) if at.node is not None else None
        raise located(source, at.detail, field=at.field, line=line) from None


def _calendar(root: yaml.Node | None) -> CalendarSpec:
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL):
        raise _At("the file is empty: expected calendar: with name: and except:", None, None)
    if not isinstance(root, yaml.MappingNode):
        raise _At("expected a mapping with calendar:", None, root)
    top = _section(root, "", ("calendar",), ("calendar",), None)
    key, node = top["calendar"]
    entries = _section(node, "calendar", _CALENDAR_FIELDS, _REQUIRED, key)
    name = _read(entries, "calendar.name", lambda n: _name(_text(n)))
    description = _read(
        entries, "calendar.description", lambda n: f.check_description(_text(n)), ""
    )
    rules = except_list(entries, "calendar.except", calendars=False)
    if not rules:
        raise _At("is empty: list the days the calendar excludes", "calendar.except", node)
    return CalendarSpec(name=name, description=description, rules=rules)


def _name(text: str | None) -> str:
    try:
        return check_calendar_name(text or "")
    except ScheduleError as error:
        raise f.Problem(error.message) from None


def refuse_unknown_calendars(text: str, known: Collection[str], source: str) -> None:
    """Refuse a job file (already valid) whose ``except:`` names a calendar not in ``known``
    (its owner's), naming the item and its line."""
    root = compose_document(text, source)
    job = _child(root, "job")
    items = _child(job, "except")
    if not isinstance(items, yaml.SequenceNode):
        return
    for index, item in enumerate(items.value):
        where = f"job.except[{index}]"
        name_node = item
        if isinstance(item, yaml.MappingNode):
            name_node = _child(item, "calendar") or item
            where += ".calendar"
            name = str(getattr(name_node, "value", "")).strip()
        else:
            value = str(getattr(item, "value", ""))
            if not is_calendar_item(value.strip().lower()):
                continue
            name = value.split(":", 1)[1].strip()
        if name not in known:
            mine = ", ".join(sorted(known)) or "none yet"
            raise located(
                source,
                f"no calendar named {name}: add it first with odin calendar add -f FILE "
                f"(your calendars: {mine})",
                field=where,
                line=line_of(name_node),
            )


def _child(node: yaml.Node | None, name: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            found: yaml.Node = value
            return found
    return None
