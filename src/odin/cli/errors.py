"""Exit codes of the ``odin`` CLI: one table, keyed by error class."""

from __future__ import annotations

from odin import errors as e

EXIT_OK = 0
EXIT_FAILURE = 1

EXIT_CODES: dict[type[e.OdinError], int] = {
    e.InvalidInput: 2,
    e.ScheduleError: 2,
    e.JobFileError: 2,
    e.NotFound: 3,
    e.PermissionDenied: 4,
    e.NotAMember: 4,
    e.Conflict: 5,
    e.LimitExceeded: 6,
    e.Unavailable: 7,
    e.NotLeader: 7,
    e.ExecutionError: 8,
}


def exit_code_for(error: e.OdinError) -> int:
    """The exit code of the nearest class of ``error`` in the table (1 if none)."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_FAILURE
