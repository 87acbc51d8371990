"""Per-user quotas on what a deploy adds to the replicated state: pure decisions.

The proposer puts the quotas in the ``PutJob`` it proposes (as it puts times and ids), so
that the state machine checks them against the state it holds, the same on every node and
with no race between two deploys of one user; an entry written before the quotas existed
carries none and is applied as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Self

from odin import config


class Quota(StrEnum):
    """The name of each per-user quota, as ``odin.config`` spells it (messages name it)."""

    JOBS = "MAX_JOBS_PER_USER"
    CODE_BYTES = "MAX_CODE_BYTES_PER_USER"


@dataclasses.dataclass(frozen=True)
class UserQuotas:
    """How many jobs and how many bytes of code (all their jobs together) a user may have."""

    jobs: int
    code_bytes: int

    @classmethod
    def configured(cls) -> Self:
        """The quotas ``odin.config`` sets."""
        return cls(jobs=config.MAX_JOBS_PER_USER, code_bytes=config.MAX_CODE_BYTES_PER_USER)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(jobs=int(data["jobs"]), code_bytes=int(data["code_bytes"]))


def code_bytes(code: str) -> int:
    """The size a job's code counts for: its UTF-8 bytes (ASCII is told at once, no copy)."""
    return len(code) if code.isascii() else len(code.encode())


def human_bytes(size: int) -> str:
    """``size`` in the largest binary unit that divides it, for messages (32 MiB, 4 KiB)."""
    for unit, scale in (("GiB", config.MIB * 1024), ("MiB", config.MIB), ("KiB", config.KIB)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def deploy_verdict(
    quotas: UserQuotas, jobs_owned: int, code_owned: int, new: bool, code_change: int
) -> str | None:
    """Why a deploy is over its owner's quotas (given what they own, whether it adds a job
    and how much it grows their code), or None; a total it does not grow never refuses it."""
    if new and jobs_owned + 1 > quotas.jobs:
        return (
            f"over the quota of {quotas.jobs} jobs per user ({Quota.JOBS}): you have "
            f"{jobs_owned}; remove one (odin rm) to deploy another"
        )
    total = code_owned + code_change
    if code_change > 0 and total > quotas.code_bytes:
        return (
            f"over the quota of {quotas.code_bytes} bytes ({human_bytes(quotas.code_bytes)}) "
            f"of code per user ({Quota.CODE_BYTES}): your jobs' code would total {total} bytes"
        )
    return None


def batch_verdict(
    quotas: UserQuotas, jobs_owned: int, code_owned: int, jobs_added: int, code_change: int
) -> str | None:
    """Why a batch of changes (``odin apply``: jobs added less jobs removed, and the code's
    net growth) is over its owner's quotas, or None; a total it does not grow never refuses."""
    if jobs_added > 0 and jobs_owned + jobs_added > quotas.jobs:
        return (
            f"over the quota of {quotas.jobs} jobs per user ({Quota.JOBS}): you have "
            f"{jobs_owned} and this would add {jobs_added}"
        )
    total = code_owned + code_change
    if code_change > 0 and total > quotas.code_bytes:
        return (
            f"over the quota of {quotas.code_bytes} bytes ({human_bytes(quotas.code_bytes)}) "
            f"of code per user ({Quota.CODE_BYTES}): your jobs' code would total {total} bytes"
        )
    return None
