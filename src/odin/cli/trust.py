"""Whether a socket may be the engine: the checks the CLI makes before it sends anything.

A member's CLI hands the engine their YAML and code, so it must not talk to a
socket someone else set up (say ``/tmp/odin-<uid>/``, made first by another
user while root's engine restarts). Before connecting, the socket's directory
must be a real directory (not a symlink) that belongs to root or the caller and
that only its owner can write; after connecting, the kernel (``SO_PEERCRED``)
must say that the process serving the socket runs as root or as the caller.
Either failure is a ``PermissionDenied`` naming the path and the owner found,
raised before a byte is sent.
"""

from __future__ import annotations

import os
import pwd
import socket
import stat
import struct
from pathlib import Path

from odin.errors import PermissionDenied

UCRED = "3i"  # struct ucred: pid, uid, gid


def trusted_uids() -> frozenset[int]:
    """Who may serve the caller's engine socket: root and the caller themselves."""
    return frozenset({0, os.geteuid()})


def describe_uid(uid: int) -> str:
    """A uid as 'name (uid N)' for messages, or 'uid N' when it has no account here."""
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _problem(info: os.stat_result) -> str | None:
    """What makes a directory (from lstat) unfit to hold the engine's socket, if anything."""
    if stat.S_ISLNK(info.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid not in trusted_uids():
        return "belongs to neither root nor you"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "is writable by group or others"
    return None


def directory_problem(directory: Path) -> str | None:
    """Why ``directory`` may not hold the engine's socket (owner and mode named), or None.

    A directory that cannot be examined (missing, not reachable) is not refused
    here: connecting then fails with the usual 'no engine is answering'.
    """
    try:
        info = os.lstat(directory)
    except OSError:
        return None
    problem = _problem(info)
    if problem is None:
        return None
    mode = stat.S_IMODE(info.st_mode)
    return f"{problem}: it is owned by {describe_uid(info.st_uid)}, mode {mode:04o}"


def check_socket_dir(path: Path) -> None:
    """Refuse ``path`` when its directory could have been set up by someone else."""
    problem = directory_problem(path.parent)
    if problem is not None:
        raise PermissionDenied(
            f"refusing to use {path}: its directory {path.parent} {problem}; an engine's "
            "socket lives in a real directory of root's or yours that only its owner can "
            "write, so someone may be posing as the engine (nothing was sent)"
        )


def check_peer(sock: socket.socket, path: Path) -> None:
    """Refuse a connected socket unless the kernel says root or the caller serves it."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(UCRED))
    pid, uid, _gid = struct.unpack(UCRED, raw)
    if uid not in trusted_uids():
        raise PermissionDenied(
            f"refusing to talk to {path}: the process serving it (pid {pid}) runs as "
            f"{describe_uid(uid)}, not as root or you, so someone may be posing as the engine "
            "(nothing was sent)"
        )
