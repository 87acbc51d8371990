"""Free space on the disks the engine writes to: a reserve that writes may not eat into.

Below the reserve, deploys and new runs are refused (``LimitExceeded`` naming it) and the
run store keeps only output tails, so that the Raft journal, its term and vote file, and a
restart of the engine always find room: a full disk must never stop the engine. The reserve
is a fraction of the disk, bounded below and above (``odin.config``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

from odin import config
from odin.errors import LimitExceeded


@dataclasses.dataclass(frozen=True)
class Room:
    """The free and total bytes of the disk that holds ``path`` (as an unprivileged writer)."""

    path: Path
    free: int
    total: int


def reserve_for(total: int) -> int:
    """The bytes kept free on a disk of ``total`` bytes."""
    share = int(total * config.DISK_RESERVE_FRACTION)
    return min(config.DISK_RESERVE_BYTES, max(config.DISK_RESERVE_MIN_BYTES, share))


def _mib(size: int) -> str:
    return f"{size / config.MIB:.1f} MiB"


def shortage(room: Room) -> str | None:
    """What is short on ``room``'s disk (its free space below the reserve), or None."""
    reserve = reserve_for(room.total)
    if room.free >= reserve:
        return None
    share = f"{config.DISK_RESERVE_FRACTION:g}"
    return (
        f"the disk of {mount_point(room.path)} (holding {room.path}) has {_mib(room.free)} free, "
        f"below its reserve of {_mib(reserve)} (DISK_RESERVE_FRACTION {share} of the disk, "
        f"at least {_mib(config.DISK_RESERVE_MIN_BYTES)}, at most "
        f"{_mib(config.DISK_RESERVE_BYTES)})"
    )


def room_of(path: Path) -> Room:
    """The space left on ``path``'s disk (one ``statvfs``)."""
    stats = os.statvfs(path)
    return Room(path, stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize)


def short_of_room(paths: Iterable[Path], writing: int = 0) -> str | None:
    """What is short on the first of ``paths``' disks, were ``writing`` bytes written there,
    below its reserve; or None."""
    for path in paths:
        try:
            room = room_of(path)
        except OSError:
            continue  # not there (yet): nothing is written there either
        found = shortage(dataclasses.replace(room, free=room.free - writing))
        if found is not None:
            return found
    return None


def check_room(paths: Iterable[Path], what: str) -> None:
    """Refuse ``what`` (LimitExceeded, naming the reserve) if a disk of ``paths`` is short."""
    found = short_of_room(paths)
    if found is not None:
        raise LimitExceeded(f"{what} refused: {found}; free space on that disk and try again")


def mount_point(path: Path) -> Path:
    """The top of the filesystem holding ``path`` (the disk, in messages): its last
    ancestor on the same device."""
    current = Path(os.path.realpath(path))
    try:
        device = current.stat().st_dev
        while current != current.parent and current.parent.stat().st_dev == device:
            current = current.parent
    except OSError:
        pass
    return current
