"""The runs this node has started, kept on local disk until the cluster hears of them.

A run is replicated as running only once it has lasted ``START_REPORT_DELAY_S``
(most runs end sooner, and their ``FinishRun`` says everything). An engine
killed inside that second would find the run still *planned* after a restart,
and start it a second time. So each start is first appended to a local file
(one small write, which outlives the process in the page cache); at restart a
planned run found there was started already and is marked lost instead.

The file only grows by one line per run and is rewritten, keeping the runs
still going, once it passes ``STARTED_FILE_MAX_BYTES``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from odin import config

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
        line = f"{run_id}\n".encode()
        with contextlib.suppress(OSError):  # a full disk must not stop the run
            os.write(self._fd, line)
            self._size += len(line)

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
