"""How a run's process starts: the one decision, from facts the executor knows.

A pure function of a few facts (``start_path``) names one of the five ways
(``StartPath``); the executor (``odin.executor.runner``) carries it out: the path picks
the command line (``odin.executor.gate``) or the nursery (``odin.executor.nursery``),
and the way a process is made is the spawner's, chosen once when the executor is built
(``odin.executor.spawn``).
"""

from __future__ import annotations

from enum import Enum


class StartPath(Enum):
    """The ways a run's process starts."""

    PLAIN = "plain"
    """Not root: no gate; made at the instant as the engine's own user, under ``prlimit``."""
    STOCK_GATE = "stock gate"
    """Root without a compiled gate: ``setpriv``, ``prlimit`` and ``sh``, held at ``sh``."""
    GATE = "gate"
    """Root with the compiled gate: held at it; the job is exec'd at the go line."""
    EARLY = "early"
    """The compiled gate's ``--early``: it execs the interpreter once in the run's cgroup,
    which starts up and waits for the go line in the prelude (``odin.executor.early``)."""
    NURSED = "nursed"
    """Forked by its owner's nursery (``odin.executor.nursery``), waiting in the prelude."""


def start_path(
    *, root: bool, compiled_gate: bool, python: bool, nursery: bool, early: bool
) -> StartPath:
    """The way a run starts, from what holds for it (one row of the table applies):

    ``root``: the engine runs as root (it switches users, so it holds runs at a gate);
    ``compiled_gate``: the compiled gate was built; ``python``: the run has an early
    form (a Python job, with the prelude installed); ``nursery``: the executor has
    nurseries and a place for one more run held by one; ``early``: a place for one more
    run held with its interpreter started.

    | root | compiled_gate | python | nursery | early | path       |
    |------|---------------|--------|---------|-------|------------|
    | no   | any           | any    | any     | any   | PLAIN      |
    | yes  | no            | any    | any     | any   | STOCK_GATE |
    | yes  | yes           | no     | any     | any   | GATE       |
    | yes  | yes           | yes    | yes     | any   | NURSED     |
    | yes  | yes           | yes    | no      | yes   | EARLY      |
    | yes  | yes           | yes    | no      | no    | GATE       |

    A run for NURSED whose nursery cannot make it after all (none could start, it is
    too busy, it failed) is asked again with ``nursery`` False.
    """
    if not root:
        return StartPath.PLAIN
    if not compiled_gate:
        return StartPath.STOCK_GATE
    if not python:
        return StartPath.GATE
    if nursery:
        return StartPath.NURSED
    return StartPath.EARLY if early else StartPath.GATE
