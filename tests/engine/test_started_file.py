"""The local file of started runs: what a restart finds, and how it is kept small."""

from __future__ import annotations

from pathlib import Path

import pytest

from odin import config
from odin.engine.started import StartedFile


def test_a_new_life_sees_what_the_previous_one_started(tmp_path: Path) -> None:
    first = StartedFile(tmp_path / "started")
    assert first.before == frozenset()
    first.add("a@1")
    first.add("b@2")
    # no close: a killed engine does not close its files either
    second = StartedFile(tmp_path / "started")
    assert second.before == {"a@1", "b@2"}
    second.rewrite({"b@2"})
    assert StartedFile(tmp_path / "started").before == {"b@2"}


def test_it_is_rewritten_with_what_is_still_unsettled_once_too_big(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "STARTED_FILE_MAX_BYTES", 64)
    started = StartedFile(tmp_path / "started")
    for k in range(20):
        started.add(f"job@{k}")
    assert started.due()
    started.rewrite(["job@19"])
    assert not started.due()
    started.add("job@20")
    assert StartedFile(tmp_path / "started").before == {"job@19", "job@20"}
    assert (tmp_path / "started").stat().st_mode & 0o777 == 0o600


def test_a_symlink_in_its_place_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("")
    (tmp_path / "started").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        StartedFile(tmp_path / "started")
