"""The values that cross the executor's boundary: what to launch and what happened.

The engine builds a ``LaunchSpec`` (argv from the interpreter table, identity from the
job's owner, a fresh environment) and gets back a ``RunOutcome``. Neither holds a live
resource, so both can be logged, compared and sent anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from odin import config


@dataclass(frozen=True)
class LaunchSpec:
    """One process to start as ``uid``/``gid``/``groups`` with exactly ``env`` in ``cwd``.

    ``argv[0]`` must be an absolute path: nothing is looked up on a PATH. ``timeout_s``
    of ``None`` means no timeout; on expiry the process group gets SIGTERM and, after
    ``grace_s``, SIGKILL. At most ``max_output_bytes`` of output are kept (head and tail).
    ``early_argv``, where the language has one, is the same job as a program that may
    start before the instant and waits for the go line itself (``odin.executor.pystart``);
    a root engine's held run uses it, within ``config.EARLY_HELD_MAX``.
    """

    run_id: str
    argv: tuple[str, ...]
    uid: int
    gid: int
    groups: tuple[int, ...]
    env: Mapping[str, str]
    cwd: str
    timeout_s: float | None
    grace_s: float = config.DEFAULT_TIMEOUT_GRACE_S
    max_output_bytes: int = config.MAX_OUTPUT_BYTES
    early_argv: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended.

    Exactly one of ``exit_code`` and ``signal`` is set (the signal that killed the
    leader). ``output`` is the kept output: the head, a marker line naming how many
    bytes were dropped, and the tail; ``output_bytes`` counts every byte the run wrote
    and ``dropped_bytes`` those not kept. ``timed_out`` and ``cancelled`` say why the
    executor killed the run, if it did.
    """

    exit_code: int | None
    signal: int | None
    timed_out: bool
    started_at: float
    finished_at: float
    pid: int
    output: bytes
    output_bytes: int
    dropped_bytes: int
    cancelled: bool = field(default=False)

    @property
    def ok(self) -> bool:
        """True when the run exited by itself with status 0."""
        return self.exit_code == 0

    @property
    def duration_s(self) -> float:
        """Wall-clock seconds from spawn to the end of the run."""
        return self.finished_at - self.started_at
