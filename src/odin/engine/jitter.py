"""A job's ``jitter:``: how long after its tick a scheduled run starts, drawn once when planned.

The leader draws it as it plans the run and the value travels in the replicated plan
(``Run.jitter_s``): every node starts the run at the same moment, and a new leader never
draws it again (the run is planned already, its tick is in the ledger). The run keeps its
tick as its instant, so its id stays ``<job>@<tick>``. The draw is in whole milliseconds,
from 0 up to but not including both the jitter and the time to the job's next tick: a run
never starts before its tick, nor at or after the next one. Pure: the randomness is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from odin.cluster.model import RunReason

MS = 1000


def draw_jitter(
    jitter_s: float | None,
    reason: RunReason,
    instant: float,
    following: float | None,
    below: Callable[[int], int],
) -> float:
    """Seconds after ``instant`` a run starts; ``below(n)`` picks a whole number from 0 to
    ``n - 1`` (``random.Random.randrange``). Only scheduled runs are jittered: a catch-up,
    a manual, a linked or a retried run starts when it is planned for."""
    if not jitter_s or jitter_s <= 0 or reason is not RunReason.SCHEDULE:
        return 0.0
    choices = math.floor(jitter_s * MS)
    if following is not None:
        choices = min(choices, math.floor((following - instant) * MS))
    if choices <= 1:
        return 0.0
    return below(choices) / MS
