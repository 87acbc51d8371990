"""Open a directory the CLI writes into without following other users' symlinks.

``odin recover`` (often run as root) writes files into a directory named on the
command line. Opening that path in one call would follow a symlink planted in
any of its components by whoever can write the directory holding it. Here the
path is walked one component at a time with ``openat(O_NOFOLLOW|O_DIRECTORY)``
from ``/`` or the working directory; a symlink met on the way is followed only
when root or the caller owns it (they made it), and refused otherwise. The
files are then made relative to the descriptor, so nothing can swap the
directory between the check and the write.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from pathlib import Path

from odin import config
from odin.cli.trust import describe_uid, trusted_uids
from odin.errors import InvalidInput, PermissionDenied

# O_PATH: passing through a directory needs search permission only, as for a path lookup.
DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _components(text: str) -> list[str]:
    """The names to walk in a path ('' and '.' mean no step; '..' is a real entry)."""
    return [part for part in text.split("/") if part not in ("", ".")]


def _start(text: str) -> int:
    """Where a walk of ``text`` starts: ``/`` for an absolute path, else the working directory."""
    return os.open("/" if text.startswith("/") else ".", DIR_FLAGS)


def _open_error(path: Path, name: str, error: OSError) -> InvalidInput:
    """The one-line error for a step of the walk that failed (missing, not allowed...)."""
    return InvalidInput(f"cannot open directory {path} at {name!r}: {error.strerror or error}")


def _link_target(path: Path, fd: int, name: str) -> str:
    """The target of the symlink ``name`` in ``fd``, if root or the caller owns it."""
    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    if not stat.S_ISLNK(info.st_mode):
        raise InvalidInput(f"cannot use {path}: {name!r} in it is not a directory")
    if info.st_uid not in trusted_uids():
        raise PermissionDenied(
            f"refusing to write into {path}: {name!r} in it is a symlink owned by "
            f"{describe_uid(info.st_uid)}, neither root nor you; it could point anywhere"
        )
    return os.readlink(name, dir_fd=fd)


def _step(path: Path, fd: int, name: str, todo: deque[str]) -> tuple[int, bool]:
    """Open ``name`` in ``fd``; a trusted symlink's target goes onto ``todo`` instead.

    Returns the next descriptor (``fd`` itself stays open) and whether a symlink was followed.
    """
    try:
        return os.open(name, DIR_FLAGS, dir_fd=fd), False
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise _open_error(path, name, error) from None
    try:
        target = _link_target(path, fd, name)
        next_fd = _start(target) if target.startswith("/") else os.dup(fd)
    except OSError as error:
        raise _open_error(path, name, error) from None
    todo.extendleft(reversed(_components(target)))
    return next_fd, True


def open_directory(path: Path) -> int:
    """A descriptor of directory ``path``, reached without following others' symlinks."""
    text = os.fspath(path)
    todo = deque(_components(text))
    try:
        fd = _start(text)
    except OSError as error:
        raise _open_error(path, "/" if text.startswith("/") else ".", error) from None
    followed = 0
    try:
        while todo:
            next_fd, was_link = _step(path, fd, todo.popleft(), todo)
            os.close(fd)
            fd, followed = next_fd, followed + was_link
            if followed > config.MAX_PATH_SYMLINKS:
                raise InvalidInput(f"cannot use {path}: too many levels of symlinks")
    except BaseException:
        os.close(fd)
        raise
    return fd
