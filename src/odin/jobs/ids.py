"""Job ids: 12 lowercase hex digits, as in the original Odin.

An id is chosen once, by ``odin generate``, and written into the job's YAML so
that redeploying the same file updates the same job. 48 random bits make a
clash between a user's jobs vanishingly unlikely; the engine still refuses one.
"""

from __future__ import annotations

import re
import secrets

JOB_ID_HEX_DIGITS = 12
_JOB_ID = re.compile(r"[0-9a-f]{12}")


def new_job_id() -> str:
    """A fresh random id from the operating system's secure source."""
    return secrets.token_hex(JOB_ID_HEX_DIGITS // 2)


def is_job_id(text: object) -> bool:
    """Whether ``text`` is exactly 12 lowercase hex digits."""
    return isinstance(text, str) and _JOB_ID.fullmatch(text) is not None
