"""Sets of whole numbers written compactly as runs, for cron fields and systemd components."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MIN_RUN = 3  # two values read better as a list than as a range


@dataclass(frozen=True)
class Run:
    """``start``, ``start + step``, ... up to ``stop``; a lone value has ``start == stop``."""

    start: int
    stop: int
    step: int = 1


def runs(values: Iterable[int]) -> list[Run]:
    """Arithmetic runs covering the sorted distinct ``values``, longest first from the left."""
    ordered = sorted(set(values))
    found: list[Run] = []
    i = 0
    while i < len(ordered):
        j = i + 1
        if j < len(ordered):
            step = ordered[j] - ordered[i]
            while j + 1 < len(ordered) and ordered[j + 1] - ordered[j] == step:
                j += 1
            if j - i + 1 >= MIN_RUN:
                found.append(Run(ordered[i], ordered[j], step))
                i = j + 1
                continue
        found.append(Run(ordered[i], ordered[i]))
        i += 1
    return found


def cron_field(values: Iterable[int]) -> str:
    """``9-17``, ``0-22/2``, ``5,35``: a cron field that never starts with ``*``."""
    return ",".join(_write(run, "-", 1) for run in runs(values))


def systemd_component(values: Iterable[int], width: int = 2, top: int | None = None) -> str:
    """``09..17``, ``00/15``, ``05,35``: a systemd calendar component (``top``: the field's largest)."""
    return ",".join(_write(run, "..", width, top) for run in runs(values))


def _write(run: Run, through: str, width: int, top: int | None = None) -> str:
    start = f"{run.start:0{width}d}"
    if run.start == run.stop:
        return start
    if top is not None and run.step > 1 and run.stop + run.step > top:
        return f"{start}/{run.step}"  # stepping runs to the end of the field by itself
    text = f"{start}{through}{run.stop:0{width}d}"
    return text if run.step == 1 else f"{text}/{run.step}"
