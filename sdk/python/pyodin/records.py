"""Records: the values a job reports, and the two bounds on them.

A record is encoded once, compactly, as UTF-8 JSON; its size is the size of
that encoding, which is what the engine measures too.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum

from .errors import OdinLimitError
from .limits import MAX_RECORD_BYTES, MAX_RECORDS_PER_RUN
from .values import Value


class RecordType(StrEnum):
    """What kind of statement a record makes; the wire names are fixed."""

    WATCH = "watch"
    CONDITION = "condition"
    RESULT = "result"


class Record(Value):
    """One record; ``value`` holds plain JSON types only."""

    __slots__ = ("seq", "ts", "type", "desc", "value")

    def __init__(self, seq: int, ts: float, type: RecordType, desc: str, value: object) -> None:
        self.seq = seq
        self.ts = ts
        self.type = type
        self.desc = desc
        self.value = value

    def as_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "type": self.type.value,
            "desc": self.desc,
            "value": self.value,
        }

    def to_json(self) -> str:
        return dumps(self.as_dict())


def dumps(data: object) -> str:
    """The one JSON encoding used for sizes and for the wire."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def plain_json(value: object) -> object:
    """``value`` as plain JSON types; anything JSON cannot hold becomes its ``str()``.

    Objects nested in lists or dicts are converted one by one; a value that fails
    as a whole (NaN, a cycle, non-string keys) becomes one string.
    """
    try:
        return json.loads(json.dumps(value, default=str, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return str(value)


class Numbering:
    """Gives out sequence numbers 1, 2, 3... and refuses past the count bound."""

    def __init__(self) -> None:
        self.last = 0

    def make(self, kind: RecordType, desc: object, value: object) -> Record:
        """Build the next record, or raise ``OdinLimitError`` without using a number."""
        if self.last >= MAX_RECORDS_PER_RUN:
            raise OdinLimitError(
                f"odin: more than MAX_RECORDS_PER_RUN ({MAX_RECORDS_PER_RUN}) records "
                f"in one run; {kind.value} {desc!s:.80} not recorded",
                bound="MAX_RECORDS_PER_RUN",
                limit=MAX_RECORDS_PER_RUN,
            )
        record = Record(self.last + 1, time.time(), kind, str(desc), plain_json(value))
        check_size(record)
        self.last = record.seq
        return record


def check_size(record: Record) -> None:
    size = len(record.to_json().encode("utf-8"))
    if size > MAX_RECORD_BYTES:
        raise OdinLimitError(
            f"odin: record {record.desc!r:.80} is {size} bytes of JSON, more than "
            f"MAX_RECORD_BYTES ({MAX_RECORD_BYTES})",
            bound="MAX_RECORD_BYTES",
            limit=MAX_RECORD_BYTES,
        )
