"""The errors pyodin raises on purpose.

pyodin runs inside jobs, under the system Python, without Odin installed, so it
cannot use ``odin.errors``; it keeps its own small tree instead:

    OdinSDKError
    ├── OdinConfigError     the job's YAML file is missing or unreadable (outside Odin)
    └── OdinLimitError      a record crossed a bound (also a ValueError)
"""

from __future__ import annotations


class OdinSDKError(Exception):
    """The root of every error pyodin raises on purpose."""


class OdinConfigError(OdinSDKError):
    """The job's YAML file cannot be read and no engine gave the job's identity."""


class OdinLimitError(OdinSDKError, ValueError):
    """A record crossed a bound; ``bound`` names it (``MAX_RECORD_BYTES``...)."""

    def __init__(self, message: str, *, bound: str, limit: int) -> None:
        super().__init__(message)
        self.bound = bound
        self.limit = limit
