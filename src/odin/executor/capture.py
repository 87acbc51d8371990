"""A bounded buffer for a run's output: the first half kept, a rolling tail of the rest.

Whatever a job writes, memory stays within ``max_bytes`` (plus one chunk while it is
being trimmed): a flood of gigabytes costs the engine no more than a quiet job.
"""

from __future__ import annotations


class OutputCapture:
    """Keeps the head and the tail of a byte stream and counts what falls between."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self._head_cap = max_bytes - max_bytes // 2
        self._tail_cap = max_bytes // 2
        self._head = bytearray()
        self._tail = bytearray()
        self.total_bytes = 0

    def feed(self, chunk: bytes) -> None:
        """Add ``chunk``: fill the head first, then roll the tail."""
        self.total_bytes += len(chunk)
        room = self._head_cap - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if not chunk or self._tail_cap == 0:
            return
        if len(chunk) >= self._tail_cap:
            self._tail[:] = chunk[-self._tail_cap :]
            return
        self._tail += chunk
        excess = len(self._tail) - self._tail_cap
        if excess > 0:
            del self._tail[:excess]

    @property
    def dropped_bytes(self) -> int:
        """Bytes written but kept neither in the head nor in the tail."""
        return self.total_bytes - len(self._head) - len(self._tail)

    def result(self) -> bytes:
        """The kept output, with a marker line where bytes were dropped."""
        dropped = self.dropped_bytes
        if dropped == 0:
            return bytes(self._head + self._tail)
        marker = f"\n[odin: {dropped} bytes dropped]\n".encode()
        return bytes(self._head) + marker + bytes(self._tail)
