"""The one exception tree of Odin.

Every error a user can meet is an ``OdinError``. The API maps each class to an
HTTP status in one table (``odin.api.errors``) and the CLI maps each class to an
exit code in one table (``odin.cli.errors``); nothing matches on message text.

    OdinError
    ├── InvalidInput            bad input from a user: nothing was changed
    │   ├── ScheduleError       a schedule string that does not parse
    │   └── JobFileError        a job YAML file that is not valid
    ├── NotFound                no such job, run, link or node (for this caller)
    ├── PermissionDenied        the caller may not do this
    │   ├── NotAMember          the caller is not root and not in group ``odin``
    │   └── NotAuthenticated    no valid credentials: an unknown, expired or revoked token
    ├── Conflict                the request clashes with what exists
    ├── LimitExceeded           a size or count bound was crossed
    ├── Unavailable             the engine or the cluster cannot answer now
    │   └── NotLeader           a write reached a node that is not the leader
    └── ExecutionError          a job could not be built or started
"""

from __future__ import annotations


class OdinError(Exception):
    """The root of every error Odin raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(OdinError):
    """Input that cannot be accepted; the request changed nothing."""


class ScheduleError(InvalidInput):
    """A schedule string that does not parse.

    ``position`` is the 0-based character offset of the offending word (or the
    end of the text when something is missing), ``expected`` says what would
    have been accepted there and ``suggestion`` is a near miss, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        text: str = "",
        position: int = 0,
        expected: str = "",
        suggestion: str | None = None,
    ) -> None:
        super().__init__(message)
        self.text = text
        self.position = position
        self.expected = expected
        self.suggestion = suggestion


class JobFileError(InvalidInput):
    """A job YAML file that is not valid; ``field`` and ``line`` locate it."""

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.line = line


class NotFound(OdinError):
    """No such object, or none that the caller may see."""


class PermissionDenied(OdinError):
    """The caller is known but may not do this."""


class NotAMember(PermissionDenied):
    """The caller is neither root nor a member of group ``odin``."""


class NotAuthenticated(PermissionDenied):
    """The request carries no valid credentials (an unknown, expired or revoked API token)."""


class Conflict(OdinError):
    """The request clashes with existing state (a file exists, a link cycles...)."""


class LimitExceeded(OdinError):
    """A bound was crossed; the message names the bound."""


class Unavailable(OdinError):
    """The engine or the cluster cannot serve the request now; retrying may help."""


class NotLeader(Unavailable):
    """A write met a change of leader; ``leader`` names the new one if known.

    ``maybe_applied`` is True when the write may still be committed (it reached a
    leader that lost office before answering), False when it surely was not.
    """

    def __init__(
        self, message: str, *, leader: str | None = None, maybe_applied: bool = False
    ) -> None:
        super().__init__(message)
        self.leader = leader
        self.maybe_applied = maybe_applied


class ExecutionError(OdinError):
    """A job could not be built or started."""


ERROR_TYPES: dict[str, type[OdinError]] = {
    cls.__name__: cls
    for cls in (
        OdinError,
        InvalidInput,
        ScheduleError,
        JobFileError,
        NotFound,
        PermissionDenied,
        NotAMember,
        NotAuthenticated,
        Conflict,
        LimitExceeded,
        Unavailable,
        NotLeader,
        ExecutionError,
    )
}
"""Wire name → class, so that a client can rebuild the error the engine raised."""
