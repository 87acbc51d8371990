"""PySyncObj's file journal made durable before anything that depends on it leaves the node.

PySyncObj writes entries into an mmap'ed journal and stores term and vote with a write
and a rename, and syncs neither: a power cut of every node at once could lose entries
that a majority had acknowledged (so that the client was told "done"), or a vote. Here
the journal notes when it changed, and ``sync`` flushes it (``msync``) once for all the
changes since the last call: a follower calls it before it acknowledges entries, a
leader at the end of the tick that appended them (before any later tick counts it in a
commit). Term and vote are written to a temporary file, fsync'ed, renamed into place, and
the directory fsync'ed, before PySyncObj sends the message that reflects them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_CHANGING = ("add", "clear", "deleteEntriesFrom", "deleteEntriesTo")


@dataclass
class SyncStats:
    """How often the journal was flushed and how long that took (for ``bench/``)."""

    syncs: int = 0
    seconds: float = 0.0


class DurableJournal:
    """Wraps one PySyncObj ``FileJournal`` in place (its methods, on the instance)."""

    def __init__(self, journal: Any, enabled: bool = True) -> None:
        self._journal = journal
        self._enabled = enabled
        self._dirty = False
        self.stats = SyncStats()
        for name in _CHANGING:
            setattr(journal, name, self._noting(getattr(journal, name)))
        storer = journal._FileJournal__metaStorer
        storer.storeMeta = _durable_store(storer.getPath(), storer.storeMeta.__globals__["dumps"])

    def _noting(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def changed(*args: Any) -> Any:
            self._dirty = True
            return method(*args)

        return changed

    def sync(self) -> None:
        """Flush what changed since the last call; nothing when nothing did."""
        if not (self._dirty and self._enabled):
            return
        started = time.perf_counter()
        self._dirty = False
        self._journal.flush()
        self.stats.syncs += 1
        self.stats.seconds += time.perf_counter() - started


def _durable_store(path: str, dumps: Callable[[Any], bytes]) -> Callable[[Any], None]:
    """PySyncObj's ``storeMeta``, with the new file and its directory fsync'ed."""

    def store(meta: Any) -> None:
        temp = path + ".tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, dumps(meta))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        folder = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    return store
