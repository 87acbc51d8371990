"""The cluster tests' shared fixture: three real engines on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine_harness import Cluster, Engine


@pytest.fixture
def cluster(world_dir: Path) -> Iterator[Cluster]:
    """A primary engine and two nodes added with ``odin nodes add``; all killed at the end."""
    primary = Engine(root=world_dir).start()
    made = Cluster(primary)
    try:
        made.add("worker1")
        made.add("worker2")
        yield made
    finally:
        made.stop_all()
