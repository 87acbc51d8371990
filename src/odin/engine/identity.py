"""Who is calling: a kernel-verified uid turned into a user Odin may serve.

Only root and members of group ``odin`` get in. Membership is read from the
group database at each call, so ``usermod -aG odin USER`` takes effect at once.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from odin import config
from odin.errors import NotAMember


@dataclass(frozen=True)
class Caller:
    uid: int
    gid: int
    user: str
    home: str
    groups: tuple[int, ...]
    pid: int | None = None

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    def may_see(self, owner_uid: int) -> bool:
        return self.is_root or owner_uid == self.uid


def odin_gid() -> int | None:
    try:
        return grp.getgrnam(config.ODIN_GROUP).gr_gid
    except KeyError:
        return None


def caller_from_uid(uid: int, pid: int | None = None) -> Caller:
    """The caller with this uid, if root, a member of group odin or the engine's own user.

    (A private engine started by a user who is not in the group serves that user alone.)
    """
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        raise NotAMember(f"uid {uid} has no user account on the engine's host") from None
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    gid = odin_gid()
    if uid not in (0, os.geteuid()) and (gid is None or gid not in groups):
        raise NotAMember(
            f"user {entry.pw_name} is not a member of the '{config.ODIN_GROUP}' group; "
            f"an administrator can add them with: sudo usermod -aG {config.ODIN_GROUP} "
            f"{entry.pw_name} (then log in again)"
        )
    return Caller(
        uid=uid,
        gid=entry.pw_gid,
        user=entry.pw_name,
        home=entry.pw_dir,
        groups=groups,
        pid=pid,
    )
