"""The owner of a job as the host knows them: uid, gid, groups and home.

A launch looks its owner up in the host's user and group databases; the answer is kept for
``config.OWNER_CACHE_S`` seconds (a burst of runs of one user reads ``/etc/group`` once, not
once per run), so a change to a user's groups applies to runs prepared after that.
"""

from __future__ import annotations

import os
import pwd
import time
from dataclasses import dataclass

from odin import config
from odin.cluster.model import Job
from odin.errors import ExecutionError


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    user: str
    home: str
    groups: tuple[int, ...]


class Owners:
    """The owners of jobs, looked up by uid and kept ``config.OWNER_CACHE_S`` seconds."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[float, Owner]] = {}

    def of(self, job: Job) -> Owner:
        """The job's owner by uid; a job whose owner no longer exists does not run."""
        now = time.monotonic()
        seen = self._known.get(job.owner_uid)
        if seen is not None and now - seen[0] < config.OWNER_CACHE_S:
            return seen[1]
        try:
            entry = pwd.getpwuid(job.owner_uid)
        except KeyError:
            raise ExecutionError(
                f"the owner of job {job.id} (uid {job.owner_uid}) no longer exists"
            ) from None
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        home = entry.pw_dir if os.path.isdir(entry.pw_dir) else "/"
        owner = Owner(entry.pw_uid, entry.pw_gid, entry.pw_name, home, groups)
        self._known[job.owner_uid] = (now, owner)
        return owner
