"""The runs this node has started, kept on local disk until the cluster hears of them.

A run is replicated as running only once it has lasted ``START_REPORT_DELAY_S``
(most runs end sooner, and their ``FinishRun`` says everything). An engine
killed inside that second would find the run still *planned* after a restart,
and start it a second time. So each start is first appended to a local file
(one small write, which outlives the process in the page cache); at restart a
planned run found there was started already and is marked lost instead.

The file only grows by one line per run and is rewritten, keeping the runs
still going, once it passes ``STARTED_FILE_MAX_BYTES``. A start that cannot be
noted (a full disk) raises: such a run must not start, or a restart could start
it again.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable
from pathlib import Path

from odin import config
from odin.disk import mount_point
from odin.errors import ExecutionError

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW


class StartedFile:
    """Append-only run ids of this node's starts; ``before`` holds what a previous life left."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        self.before: frozenset[str] = frozenset(line for line in text.splitlines() if line)
        self._fd = os.open(path, _FLAGS, 0o600)
        self._size = os.fstat(self._fd).st_size

    def add(self, run_id: str) -> None:
        """Note a start; ExecutionError, naming the disk, if it cannot be noted whole."""
        line = f"{run_id}\n".encode()
        try:
            written = os.write(self._fd, line)
        except OSError as error:
            raise ExecutionError(self._unwritable(error.strerror or str(error))) from None
        if written < len(line):  # the disk filled up in the middle of the line
            self._take_back(written)
            raise ExecutionError(self._unwritable(os.strerror(errno.ENOSPC)))
        self._size += written

    def _take_back(self, written: int) -> None:
        """Cut a partial line off the end, so that the next start is noted on a line of its own."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)

    def _unwritable(self, reason: str) -> str:
        return (
            f"the start could not be noted in {self.path} on the disk of "
            f"{mount_point(self.path)} ({reason}); a run this node cannot note is not started, "
            "so that a restart never starts it twice: free space on that disk"
        )

    def due(self) -> bool:
        return self._size > config.STARTED_FILE_MAX_BYTES

    def rewrite(self, keep: Iterable[str]) -> None:
        """Replace the file with ``keep`` (the runs still going), atomically."""
        temp = self.path.with_name(self.path.name + ".new")
        data = "".join(f"{run_id}\n" for run_id in keep).encode()
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(temp, self.path)
        except OSError:
            return  # keep appending to the old file; the next start tries again
        os.close(self._fd)
        self._fd = os.open(self.path, _FLAGS, 0o600)
        self._size = len(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
