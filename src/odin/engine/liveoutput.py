"""A live run's output as it comes: the latest of it kept for new followers, and the followers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from odin import config

Watcher = Callable[[str, bytes | None], None]
"""A follower of a run's output: called with each chunk as it comes, then with None at the end."""


@dataclass(eq=False)
class LiveOutput:
    """The latest ``kept`` bytes a live run printed (``recent``, replayed to a follower that
    comes late) and its followers (``watchers``), fed every chunk as it comes."""

    recent: bytearray = field(default_factory=bytearray)
    watchers: list[Watcher] = field(default_factory=list)
    kept: int = config.LIVE_OUTPUT_KEPT_BYTES

    def add(self, run_id: str, chunk: bytes) -> None:
        """Keep ``chunk`` (dropping what is older than the last ``kept`` bytes) and pass it on."""
        self.recent += chunk
        if len(self.recent) > self.kept:
            del self.recent[: len(self.recent) - self.kept]
        for watcher in list(self.watchers):
            watcher(run_id, chunk)

    def close(self, run_id: str) -> None:
        """The run ended: tell each follower (with None)."""
        for watcher in list(self.watchers):
            watcher(run_id, None)
