"""A run this node is executing, as the launcher, the API and the dashboard see it."""

from __future__ import annotations

from dataclasses import dataclass, field

from odin.cluster.model import Record, Run
from odin.engine.liveoutput import LiveOutput, Watcher


@dataclass
class LiveRun:
    """A run this node is executing: its token, process group, what it reported and printed
    (it is stopped through the executor, by run id)."""

    run: Run
    token: str
    pgid: int | None = None
    started_at: float | None = None
    records: list[Record] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # each record's bytes (record_size)
    output: LiveOutput = field(default_factory=LiveOutput)

    @property
    def recent(self) -> bytearray:
        """The latest output, for a follower that comes late (``LiveOutput.recent``)."""
        return self.output.recent

    @property
    def watchers(self) -> list[Watcher]:
        """The followers of the output (``LiveOutput.watchers``)."""
        return self.output.watchers
