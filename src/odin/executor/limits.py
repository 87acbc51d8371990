"""The resource limits every run starts under, applied by a ``prlimit`` wrapper.

Why a wrapper: the limits must be in force before any user code runs, and the engine
is multi-threaded (Raft, HTTP), where ``preexec_fn`` is documented as unsafe (the child
of a threaded parent may deadlock before exec). ``prlimit(pid)`` after spawn races the
job's first instructions and needs CAP_SYS_RESOURCE. ``prlimit ARGS -- argv`` sets the
limits on itself and execs the job in place, so the pid is the job's. The wrapper costs
one extra exec and nothing in safety (bench/limits.md, "Executor measurements"); the
compiled gate (``odin.executor.gate``) sets the limits itself.

``RLIMIT_NPROC`` counts every process of the job's *real uid*, not only this run's:
a fork bomb stops at the limit, but it also starves that user's other processes. Root
(or a holder of CAP_SYS_ADMIN/CAP_SYS_RESOURCE) is exempt from it.
"""

from __future__ import annotations

import os

from odin import config
from odin.errors import ExecutionError

RLIMITS: tuple[tuple[str, int], ...] = (
    ("nofile", config.RLIMIT_NOFILE),
    ("nproc", config.RLIMIT_NPROC),
    ("as", config.RLIMIT_AS_BYTES),
    ("core", config.RLIMIT_CORE),
)
"""prlimit option name → value, applied as both the soft and the hard limit."""


def prlimit_prefix() -> tuple[str, ...]:
    """The argv prefix that runs a command under ``RLIMITS``."""
    if not os.access(config.PRLIMIT_PATH, os.X_OK):
        raise ExecutionError(
            f"cannot apply resource limits: {config.PRLIMIT_PATH} is missing (install util-linux)"
        )
    options = tuple(f"--{name}={value}:{value}" for name, value in RLIMITS)
    return (config.PRLIMIT_PATH, *options, "--")
