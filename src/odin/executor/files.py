"""Writing a job's code where its owner, and only its owner, can read it.

Layout: ``root/<uid>/<job_id>/<filename>``, directories 0700 and the file 0600, all
owned by the job's user. The engine runs as root and the user owns the directories it
writes into, so every step works on directory file descriptors opened with
O_NOFOLLOW and checked with fstat: a symlink or a foreign file planted anywhere on the
path is refused, never followed. The file is replaced atomically (a fresh temporary
file renamed over it), so a run never sees half a file, and an existing entry,
whatever it is, is replaced rather than written through.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from odin.errors import ExecutionError, InvalidInput

_DIR_MODE = 0o700
_FILE_MODE = 0o600
_ROOT_MODE = 0o711  # others may traverse to their own directory, not list
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def check_plain_name(name: str, what: str) -> None:
    """Refuse anything but a single, visible path component."""
    bad = (
        not name
        or name.startswith(".")
        or any(ch in name for ch in "/\0\n\r")
        or len(name.encode()) > 255
    )
    if bad:
        raise InvalidInput(
            f"{what} {name!r} must be a plain file name: no '/', no NUL or newline, "
            "not starting with '.', at most 255 bytes"
        )


def materialize(code: str, filename: str, *, root: Path, uid: int, gid: int, job_id: str) -> Path:
    """Write ``code`` to ``root/<uid>/<job_id>/<filename>``; same content → no rewrite."""
    check_plain_name(job_id, "job id")
    return write_user_file(
        code.encode(), root=root, uid=uid, gid=gid, dirs=(job_id,), name=filename
    )


_Seen = tuple[str, int, int, int, int, int, int]  # code hash, then the file's stat fields


def _seen(code_sha: str, info: os.stat_result) -> _Seen:
    return (
        code_sha,
        info.st_dev,
        info.st_ino,
        info.st_size,
        info.st_mtime_ns,
        info.st_uid,
        info.st_mode,
    )


class CodeFiles:
    """``materialize`` that remembers what it wrote, so a run of unchanged code costs a stat.

    For each code file it wrote (or found right), the engine keeps the code's hash and
    the file's device, inode, size, modification time, owner and mode. The next run of
    the same code whose file still stats the same is not walked, read and compared
    again, and takes no thread. Anything else (new code, a file the owner edited,
    replaced or removed) goes through ``materialize``. Nothing is written on the fast
    path, so no link the owner plants can lead it anywhere; an owner who edits their
    own file and puts its time back runs their edit, as themselves, as they could
    anyway by changing the file between the check and the exec.
    """

    def __init__(self, root: Path, limit: int = 10_000) -> None:
        self.root = root
        self._limit = limit
        self._seen: dict[str, _Seen] = {}  # by path as text: pathlib costs more than the stat

    def _path(self, filename: str, uid: int, job_id: str) -> str:
        return f"{self.root}/{uid}/{job_id}/{filename}"  # where ``materialize`` writes

    def known(self, code_sha: str, filename: str, *, uid: int, job_id: str) -> str | None:
        """The file's path if it is as this memory left it with this code, else None."""
        path = self._path(filename, uid, job_id)
        seen = self._seen.get(path)
        if seen is None or seen[0] != code_sha:
            return None
        try:
            info = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        return path if _seen(code_sha, info) == seen else None

    def write(
        self, code: str, code_sha: str, filename: str, *, uid: int, gid: int, job_id: str
    ) -> str:
        """``materialize``, then remember the file (blocking: call it from a thread)."""
        materialize(code, filename, root=self.root, uid=uid, gid=gid, job_id=job_id)
        path = self._path(filename, uid, job_id)
        info = os.stat(path, follow_symlinks=False)
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen[path] = _seen(code_sha, info)
        return path


def write_user_file(
    data: bytes, *, root: Path, uid: int, gid: int, dirs: tuple[str, ...], name: str
) -> Path:
    """Write ``data`` to ``root/<uid>/<dirs...>/<name>``, everything below root the user's."""
    for part in (*dirs, name):
        check_plain_name(part, "file name")
    _check_can_own(uid)
    try:
        root.mkdir(parents=True, exist_ok=True, mode=_ROOT_MODE)
        with _user_dirs(root, (str(uid), *dirs), uid, gid) as dir_fd:
            if not _same_file(dir_fd, name, data, uid):
                _replace(dir_fd, name, data, uid, gid)
    except OSError as exc:  # ENOSPC, EROFS...: the run fails with a reason, the engine goes on
        raise ExecutionError(f"cannot write {name!r} under {root}: {exc.strerror or exc}") from exc
    return root.joinpath(str(uid), *dirs, name)


def stat_user_file(
    root: Path, *, uid: int, dirs: tuple[str, ...], name: str
) -> os.stat_result | None:
    """fstat of ``root/<uid>/<dirs...>/<name>`` if every step is the user's and not a link."""
    try:
        with _user_dirs(root, (str(uid), *dirs), uid, None) as dir_fd:
            fd = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
            )
    except (OSError, ExecutionError):
        return None
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    return info if info.st_uid == uid and stat.S_ISREG(info.st_mode) else None


def _check_can_own(uid: int) -> None:
    if os.geteuid() != 0 and uid != os.geteuid():
        raise ExecutionError(f"an engine not running as root cannot write files for uid {uid}")


@contextlib.contextmanager
def _user_dirs(root: Path, names: tuple[str, ...], uid: int, gid: int | None) -> Iterator[int]:
    """Walk (creating when ``gid`` is given) directories below ``root``; yield the last fd."""
    with contextlib.ExitStack() as stack:
        fd = os.open(root, _DIR_FLAGS)
        stack.callback(os.close, fd)
        for name in names:
            fd = _owned_dir(fd, name, uid, gid)
            stack.callback(os.close, fd)
        yield fd


def _owned_dir(parent_fd: int, name: str, uid: int, gid: int | None) -> int:
    """Open directory ``name`` that must belong to ``uid``; create it if ``gid`` is given."""
    if gid is not None:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, _DIR_MODE, dir_fd=parent_fd)
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:  # ELOOP/ENOTDIR: a symlink or a file is in the way
        raise ExecutionError(f"cannot use {name!r} as a job directory: {exc.strerror}") from exc
    try:
        _claim(fd, name, uid, gid, _DIR_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _claim(fd: int, name: str, uid: int, gid: int | None, mode: int) -> None:
    """Give a directory we created to the user; refuse one that someone else owns."""
    info = os.fstat(fd)
    if gid is not None and info.st_uid == os.geteuid() and info.st_uid != uid:
        os.fchown(fd, uid, gid)
    elif info.st_uid != uid:
        raise ExecutionError(f"{name!r} belongs to uid {info.st_uid}, not to uid {uid}")
    if gid is not None and stat.S_IMODE(info.st_mode) != mode:
        os.fchmod(fd, mode)


def _same_file(dir_fd: int, name: str, data: bytes, uid: int) -> bool:
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != uid or info.st_size != len(data):
            return False
        if stat.S_IMODE(info.st_mode) != _FILE_MODE:
            return False
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read() == data
    finally:
        os.close(fd)


def _replace(dir_fd: int, name: str, data: bytes, uid: int, gid: int) -> None:
    temp = f".{name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temp, flags, _FILE_MODE, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), _FILE_MODE)
            if os.geteuid() != uid:
                os.fchown(fh.fileno(), uid, gid)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
        raise
