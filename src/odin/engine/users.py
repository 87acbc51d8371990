"""The owner of a job as the host knows them now: uid, gid, groups and home."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from odin.cluster.model import Job
from odin.errors import ExecutionError


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    user: str
    home: str
    groups: tuple[int, ...]


def owner_of(job: Job) -> Owner:
    """The job's owner by uid; a job whose owner no longer exists does not run."""
    try:
        entry = pwd.getpwuid(job.owner_uid)
    except KeyError:
        raise ExecutionError(
            f"the owner of job {job.id} (uid {job.owner_uid}) no longer exists"
        ) from None
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    home = entry.pw_dir if os.path.isdir(entry.pw_dir) else "/"
    return Owner(entry.pw_uid, entry.pw_gid, entry.pw_name, home, groups)
