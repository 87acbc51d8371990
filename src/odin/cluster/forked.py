"""Writing a big file in a forked child, so that the process's threads keep the GIL.

The Raft dump is the whole state: at 100,000 jobs, 57 MB of JSON. Encoded, hashed
and written on the raft thread, it took 0.25-0.4 s, most of it (the encoding)
holding the GIL: a thread sleeping 1 ms in a loop beside it was stopped for 90-170 ms
at a time, and so was the event loop that launches runs, once per compaction. PySyncObj forks for the dumps it pickles itself, not for a custom
serializer such as Odin's; this does the same for Odin's.

The writer forks (a few milliseconds, page tables only); the child, holding a
copy-on-write image of the process as it was at the fork, calls ``write`` on a file
of its own (``<final>.<pid>.part``) and exits; a later ``poll`` collects it and
renames the file into place. The caller forks between two changes of its state, on
the one thread that changes it, so the child's copy is whole. The child runs
nothing but ``write``: no lock that another thread held at the fork is ever
released in it, so ``write`` must take none.

What the child inherits is closed first thing (no socket or pipe of the parent is
held open by it; stdin and stdout become /dev/null, stderr is kept for its one
line of error), and it dies on the signals that stop the parent. A child that
fails or outlives ``timeout_s`` is reported ``FAILED`` (and killed), and the next
file is then written in-process, the slow way that cannot hang, once. A failure is
reported only ``retry_s`` after it happened (``WRITING`` until then): the caller
starts again as soon as it hears of one, and a lasting cause (a full disk) would
otherwise have it fork a child, or hold the GIL, over and over.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

_log = logging.getLogger(__name__)


class Progress(enum.Enum):
    IDLE = "idle"  # nothing written since the last DONE or FAILED was reported
    WRITING = "writing"
    DONE = "done"  # the file is in place
    FAILED = "failed"  # the file in place, if any, is the one from before


class ForkedWriter:
    """Writes one file at a time in a forked child; not thread-safe (one thread uses it)."""

    def __init__(self, timeout_s: float, retry_s: float) -> None:
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._quiet_until = 0.0  # a FAILED outcome is held back until then
        self._child = 0
        self._part: Path | None = None
        self._final: Path | None = None
        self._started = 0.0
        self._outcome: Progress | None = None  # to report at the next poll
        self._here_next = False

    def start(self, final: Path, write: Callable[[Path], None]) -> None:
        """Start writing ``final``: ``write(path)`` must create ``path`` whole (and fsync it).

        Runs ``write`` in-process instead if the fork fails or the last child failed.
        ``poll`` reports the outcome either way. Refused while a write is unreported.
        """
        if self._child or self._outcome is not None:
            raise RuntimeError("a file is still being written or its outcome not collected")
        if not self._here_next:
            try:
                pid = os.fork()
            except OSError as exc:
                _log.warning("cannot fork to write %s (%s): writing it in-process", final, exc)
            else:
                if pid == 0:
                    _child(_part_of(final, os.getpid()), write)
                self._child, self._started = pid, time.monotonic()
                self._part, self._final = _part_of(final, pid), final
                return
        self._here_next = False
        self._outcome = _write_here(final, write)
        if self._outcome is Progress.FAILED:
            self._quiet_until = time.monotonic() + self._retry_s

    def poll(self) -> Progress:
        """Where the write stands; DONE or FAILED is reported once, then IDLE."""
        if self._outcome is not None:
            if self._outcome is Progress.FAILED and time.monotonic() < self._quiet_until:
                return Progress.WRITING
            outcome, self._outcome = self._outcome, None
            return outcome
        if not self._child:
            return Progress.IDLE
        try:
            pid, status = os.waitpid(self._child, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: its exit status is lost
            self._end(False, "its exit status was taken by another waiter")
            return self.poll()
        if pid == 0:
            if time.monotonic() - self._started <= self._timeout_s:
                return Progress.WRITING
            self._kill()
            self._end(False, f"it took more than {self._timeout_s:g} s and was killed")
        else:
            code = os.waitstatus_to_exitcode(status)
            self._end(code == 0, f"it ended with status {code}")
        return self.poll()

    def cancel(self) -> None:
        """Stop a write in progress (its file is not put in place); ``poll`` reports FAILED
        at once."""
        if self._child:
            self._kill()
            self._drop_part()
            self._child = 0
            self._outcome, self._quiet_until = Progress.FAILED, 0.0

    def _end(self, ok: bool, why: str) -> None:
        """Collect the ended child's work into ``_outcome``."""
        part, final = self._part, self._final
        assert part is not None and final is not None
        self._child = 0
        if ok:
            try:
                _put_in_place(part, final)
            except OSError as exc:
                why = f"it could not be put in place ({exc})"
            else:
                self._outcome = Progress.DONE
                return
        _log.warning(
            "the child writing %s failed: %s; the next one is written in-process in %g s",
            final,
            why,
            self._retry_s,
        )
        self._drop_part()
        self._here_next = True
        self._outcome, self._quiet_until = Progress.FAILED, time.monotonic() + self._retry_s

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._child, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self._child, 0)

    def _drop_part(self) -> None:
        if self._part is not None:
            self._part.unlink(missing_ok=True)


def clear_parts(final: Path) -> None:
    """Remove the part files a killed process's children left beside ``final``."""
    for part in final.parent.glob(f"{final.name}.*.part"):
        part.unlink(missing_ok=True)


def _part_of(final: Path, pid: int) -> Path:
    return final.with_name(f"{final.name}.{pid}.part")


def _child(part: Path, write: Callable[[Path], None]) -> NoReturn:
    code = 1
    try:
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        null = os.open(os.devnull, os.O_RDWR)  # stdin and stdout may be a supervisor's pipes
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        with contextlib.suppress(ValueError):  # not the main thread: the parent's handlers stay
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
        gc.disable()  # a collection would touch (and so copy) every page of the heap
        write(part)
        code = 0
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"odin: writing {part} in a child failed: {exc!r}\n".encode())
    finally:
        os._exit(code)


def _write_here(final: Path, write: Callable[[Path], None]) -> Progress:
    part = _part_of(final, os.getpid())
    try:
        write(part)
        _put_in_place(part, final)
    except Exception:
        _log.exception("writing %s failed", final)
        part.unlink(missing_ok=True)
        return Progress.FAILED
    return Progress.DONE


def _put_in_place(part: Path, final: Path) -> None:
    os.replace(part, final)
    fd = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)  # the rename itself survives a power cut
    finally:
        os.close(fd)
