"""The figure type every benchmark returns, and the machine line of the report."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured number, with the goal it is judged against (if any).

    ``met`` is None when there is no goal or it could not be judged (skipped);
    a NaN ``value`` means the figure was not measured (the note says why).
    """

    name: str
    value: float
    unit: str
    goal: str = ""
    note: str = ""
    met: bool | None = None

    def row(self) -> str:
        value = "n/a" if math.isnan(self.value) else f"{self.value:.3f} {self.unit}"
        verdict = {True: " (met)", False: " (**missed**)", None: ""}[self.met]
        goal = f"{self.goal}{verdict}" if self.goal else ""
        return f"| {self.name} | {value} | {goal} | {self.note} |"


def skipped(name: str, unit: str, goal: str, why: str) -> Figure:
    """A figure that could not be measured on this run, with the reason."""
    return Figure(name, math.nan, unit, goal, f"skipped: {why}")


def machine() -> str:
    cpus = os.cpu_count() or 0
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node()}: {cpus} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}"
