"""The bounded summary of a run's SDK records that the replicated state keeps: pure decisions.

A run may make ``MAX_RECORDS_PER_RUN`` records of ``MAX_RECORD_BYTES`` each; all of them go
to the run store of the node that ran it, and only a summary of at most a byte budget travels
in its ``FinishRun`` (kept on every node for the last runs of each job). The summary is all
the records when they fit; otherwise the last record of each series (type and description),
the results first, then the others newest first, as many as fit, in their original order; a
record too big to fit is kept with a note in place of its value when that fits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import orjson

from odin.cluster.model import Record, fields_of


def record_size(record: Record) -> int:
    """The bytes a record takes as JSON (the same count on every node)."""
    return len(orjson.dumps(fields_of(record)))


def sizes_of(records: Sequence[Record]) -> list[int]:
    """Each record's size, in order."""
    return [record_size(record) for record in records]


CLIPPED = "[odin: a value of {size} bytes, whole in odin stats]"


def _fitting(record: Record, size: int, left: int) -> Record | None:
    """``record`` if it fits in ``left`` bytes, else with the note for its value, else None."""
    if size <= left:
        return record
    clipped = dataclasses.replace(record, value=CLIPPED.format(size=size))
    return clipped if record_size(clipped) <= left else None


def _fits_whole(sizes: Sequence[int], budget: int) -> bool:
    """Whether all the records fit in ``budget`` (stops counting once they do not)."""
    total = 0
    for size in sizes:
        total += size
        if total > budget:
            return False
    return True


def _last_of_each_series(records: Sequence[Record]) -> list[int]:
    """The index of the last record of each (type, desc), results first, newest first."""
    last: dict[tuple[str, str], int] = {}
    for index, record in enumerate(records):
        last[(record.type, record.desc)] = index
    newest_first = sorted(last.values(), reverse=True)
    return sorted(newest_first, key=lambda i: records[i].type != "result")


def summarize(records: Sequence[Record], sizes: Sequence[int], budget: int) -> tuple[Record, ...]:
    """The records a run's replicated summary keeps, within ``budget`` bytes, from their
    ``sizes`` as counted already (the launcher counts each record as it arrives)."""
    if _fits_whole(sizes, budget):
        return tuple(records)
    kept: dict[int, Record] = {}
    left = budget
    for index in _last_of_each_series(records):
        fitting = _fitting(records[index], sizes[index], left)
        if fitting is not None:
            kept[index] = fitting
            left -= sizes[index] if fitting is records[index] else record_size(fitting)
    return tuple(kept[i] for i in sorted(kept))
