"""odin apply: a folder of N small Python jobs, applied with the real CLI, end to end.

Three applies of the same folder, each timed from the command's start to its exit: the
first creates every job (one Raft entry), the second finds them all unchanged (nothing
is proposed), the third after one job file changed updates that one. For comparison,
the same number of jobs deployed one request each through the API, four at a time (the
CLI's ``odin deploy`` adds a process start to each). On three nodes the first apply is
timed again: its one entry is replicated to a majority before the command returns.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.common import Figure, skipped
from bench.harness import (
    BenchError,
    Engine,
    JobDef,
    deploy,
    engines,
    job_id,
    job_yaml,
    odin_cli,
)

FULL = 1000
QUICK = 200
GROUP = 0xA7
GOAL_S = 5.0
SCHEDULE = "every day at 03:00"


def _folder(count: int) -> Path:
    """A fresh folder of ``count`` job files and their code."""
    folder = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    for index in range(count):
        name = f"job{index:05d}"
        text = job_yaml(job_id(GROUP, index), name, SCHEDULE)
        (folder / f"{name}.yml").write_text(text)
        (folder / f"{name}.py").write_text(f"print({index})\n")
    return folder


def run(quick: bool = False) -> list[Figure]:
    count = QUICK if quick else FULL
    figures: list[Figure] = []
    folder = _folder(count)
    try:
        with engines(1, "apply") as nodes:
            figures += _one_node(nodes[0], folder, count)
        if not quick:
            figures.append(_three_nodes(folder, count))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def _one_node(engine: Engine, folder: Path, count: int) -> list[Figure]:
    apply = ("apply", "-f", str(folder), "--yes")
    first = odin_cli(engine, *apply)
    again = odin_cli(engine, *apply)
    changed = folder / "job00000.yml"
    changed.write_text(changed.read_text().replace("03:00", "04:00"))
    one = odin_cli(engine, *apply)
    others = [
        JobDef(job_id(GROUP + 1, i), f"dep{i:05d}", SCHEDULE, f"print({i})\n") for i in range(count)
    ]
    rate = deploy(engine, others)
    label = f"{count} jobs"
    return [
        Figure(
            f"odin apply, {label}: all created",
            first,
            "s",
            f"<= {GOAL_S:.0f} s",
            "one Raft entry",
            met=first <= GOAL_S,
        ),
        Figure(
            f"odin apply, {label}: all unchanged",
            again,
            "s",
            f"<= {GOAL_S:.0f} s",
            "nothing proposed",
            met=again <= GOAL_S,
        ),
        Figure(
            f"odin apply, {label}: one changed", one, "s", f"<= {GOAL_S:.0f} s", met=one <= GOAL_S
        ),
        Figure(
            f"deploy, {label} one request each (4 at a time), for comparison",
            count / rate,
            "s",
            note=f"{rate:.0f} deploys/s through the API",
        ),
    ]


def _three_nodes(folder: Path, count: int) -> Figure:
    name = f"odin apply, {count} jobs on three nodes: all created"
    try:
        with engines(3, "apply3") as nodes:
            elapsed = odin_cli(nodes[0], "apply", "-f", str(folder), "--yes")
    except BenchError as error:
        return skipped(name, "s", f"<= {GOAL_S:.0f} s", str(error))
    return Figure(
        name, elapsed, "s", f"<= {GOAL_S:.0f} s", "one entry, replicated", met=elapsed <= GOAL_S
    )
