"""Turning untrusted job-file bytes into a YAML node tree, safely and quickly.

Why not ``yaml.safe_load``: we need line numbers for every field (so we keep
the composed nodes and their marks), and the composer is recursive while
aliases can expand exponentially. So the text is checked in order, each step
bounding the next: size (``config.MAX_YAML_BYTES``), strict UTF-8, then one
pass over the parser's events (iterative) that refuses anchors/aliases and
nesting deeper than ``config.MAX_YAML_DEPTH``; only then is a single document
composed. Every failure is a ``JobFileError`` with a line when one is known.
"""

from __future__ import annotations

from typing import Any

import yaml

from odin import config
from odin.errors import JobFileError

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENERS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSERS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def located(
    source: str, detail: str, *, field: str | None = None, line: int | None = None
) -> JobFileError:
    """The one message format: ``SOURCE: line N: FIELD: DETAIL``."""
    parts = [source]
    if line is not None:
        parts.append(f"line {line}")
    if field is not None:
        parts.append(field)
    return JobFileError(": ".join([*parts, detail]), field=field, line=line)


def line_of(node: yaml.Node) -> int:
    """The 1-based line where ``node`` starts."""
    return int(node.start_mark.line) + 1


def compose_document(data: str | bytes, source: str) -> yaml.Node | None:
    """The single YAML document in ``data`` as nodes (``None`` if it is empty)."""
    text = _decode(data, source)
    try:
        _check_events(text, source)
        return yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as error:
        raise _syntax_error(error, text, source) from None


def _decode(data: str | bytes, source: str) -> str:
    if not isinstance(data, str | bytes):
        raise located(source, f"expected text or bytes, got {type(data).__name__}")
    _check_size(len(data), source)
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            raise located(source, "the text contains an invalid character") from None
        _check_size(len(data.encode("utf-8")), source)
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise located(source, "not UTF-8 text: save the file as UTF-8", line=line) from None


def _check_size(size: int, source: str) -> None:
    if size > config.MAX_YAML_BYTES:
        limit = config.MAX_YAML_BYTES // config.KIB
        raise located(source, f"the file is too large: a job file may have at most {limit} KiB")


def _check_events(text: str, source: str) -> None:
    """Refuse anchors, aliases and deep nesting before anything is built."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            line = _line(event.start_mark)
            raise located(source, "anchors and aliases (& and *) are not allowed", line=line)
        if isinstance(event, _OPENERS):
            depth += 1
            if depth > config.MAX_YAML_DEPTH:
                line = _line(event.start_mark)
                raise located(source, "the file is nested too deeply", line=line)
        elif isinstance(event, _CLOSERS):
            depth -= 1


def _syntax_error(error: yaml.YAMLError, text: str, source: str) -> JobFileError:
    """A parser complaint as one line, with the line it points at."""
    if isinstance(error, yaml.reader.ReaderError):
        where = text.count("\n", 0, max(0, int(error.position))) + 1
        return located(
            source, f"not valid YAML: {error.reason} #x{error.character:04x}", line=where
        )
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        words = [part for part in (error.context, error.problem) if part]
        detail = ", ".join(words) or "syntax error"
        return located(source, f"not valid YAML: {detail}", line=_line(mark))
    return located(source, "not valid YAML")


def _line(mark: Any) -> int | None:
    """The 1-based line of a parser mark (PyYAML or libyaml), if there is one."""
    line = getattr(mark, "line", None)
    return line + 1 if isinstance(line, int) else None
