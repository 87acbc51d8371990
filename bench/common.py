"""The figure type every benchmark returns, and the machine line of the report."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured number, with the goal it is judged against (if any)."""

    name: str
    value: float
    unit: str
    goal: str = ""
    note: str = ""

    def row(self) -> str:
        return f"| {self.name} | {self.value:.3f} {self.unit} | {self.goal} | {self.note} |"


def machine() -> str:
    cpus = os.cpu_count() or 0
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node()}: {cpus} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}"
