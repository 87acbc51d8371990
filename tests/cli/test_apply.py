"""``odin apply`` end to end: a real engine, the real CLI, as the real user odin-alice.

One engine serves the whole module (each test works on jobs of its own, with fresh ids);
every apply that must change nothing is checked against the jobs' versions.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine_harness import BIN, Engine, job_id_of, needs_root, odin, user_dir, write_job

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root to run the CLI as test users"),
    pytest.mark.slow,
]

ALICE, BOB = "odin-alice", "odin-bob"


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Engine, Path]]:
    """One engine for the module, in a folder the test users can traverse."""
    base = Path(tempfile.mkdtemp(prefix="odin-apply-"))
    os.chmod(base, 0o755)
    engine = Engine(root=base).start()
    try:
        yield engine, base
    finally:
        engine.stop()
        shutil.rmtree(base, ignore_errors=True)


def _folder(base: Path, name: str, jobs: int) -> tuple[Path, list[str]]:
    """A folder of Alice's with ``jobs`` small Python jobs (one in a subfolder) and a YAML
    file that is no job."""
    folder = user_dir(base / name, ALICE)
    sub = folder / "sub"
    sub.mkdir()
    os.chown(sub, *_ids(folder))
    ids = [
        job_id_of(write_job(sub if i == jobs - 1 else folder, f"job{i}", f"print({i})\n"))
        for i in range(jobs)
    ]
    other = folder / "compose.yaml"
    other.write_text("services:\n  web: {}\n")
    os.chown(other, *_ids(folder))
    return folder, ids


def _ids(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_uid, stat.st_gid


def apply(engine: Engine, *args: str, check: bool = True) -> Any:
    return odin("apply", *args, engine=engine, user=ALICE, check=check)


def as_alice(engine: Engine, *args: str) -> list[str]:
    """The command line of ``odin ARGS`` as Alice, for a test that gives it its own stdin."""
    env = {"PATH": "/usr/bin:/bin", "ODIN_SOCKET": str(engine.socket), "LANG": "C.UTF-8"}
    setting = [f"{key}={value}" for key, value in env.items()]
    return ["/usr/sbin/runuser", "-u", ALICE, "--", "env", *setting, str(BIN / "odin"), *args]


def versions(engine: Engine, ids: list[str]) -> dict[str, tuple[int, str]]:
    """Each job's version and last update (an apply that changes nothing leaves both)."""
    found = {}
    for job_id in ids:
        job = odin("describe", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
        found[job_id] = (job["version"], job["updated_at"])
    return found


def listed(engine: Engine, user: str = ALICE) -> set[str]:
    return {j["id"] for j in odin("list", "-o", "json", engine=engine, user=user).json()}


def test_apply_creates_then_leaves_alone_updates_and_prunes(
    shared: tuple[Engine, Path],
) -> None:
    engine, base = shared
    folder, ids = _folder(base, "lifecycle", 3)

    first = apply(engine, "-f", str(folder), "--yes")
    assert "Plan: 3 to create, 0 to update, 0 unchanged, 0 to remove" in first.stdout
    assert "Applied in one change: 3 created" in first.stdout
    assert "compose.yaml: not a job file" in first.stderr
    assert set(ids) <= listed(engine)
    before = versions(engine, ids)

    again = apply(engine, "-f", str(folder), "--yes", "-o", "json").json()
    assert again["counts"] == {"create": 0, "update": 0, "unchanged": 3, "remove": 0}
    assert again["applied"] is False  # nothing was proposed
    assert versions(engine, ids) == before

    yaml_path = folder / "job1.yml"
    yaml_path.write_text(yaml_path.read_text().replace('"never"', '"every day at 03:00"'))
    changed = apply(engine, "-f", str(folder), "--yes")
    assert "Plan: 0 to create, 1 to update, 2 unchanged, 0 to remove" in changed.stdout
    assert f"~ update  {ids[1]}" in changed.stdout and "(same code)" in changed.stdout
    assert '-  schedule: "never"' in changed.stdout
    assert '+  schedule: "every day at 03:00"' in changed.stdout
    after = versions(engine, ids)
    assert after[ids[1]][0] == before[ids[1]][0] + 1
    assert {i: after[i] for i in (ids[0], ids[2])} == {i: before[i] for i in (ids[0], ids[2])}

    (folder / "job0.yml").unlink()
    pruned = apply(engine, "-f", str(folder), "--prune", "--yes", "-o", "json").json()
    removed = [item for item in pruned["items"] if item["action"] == "remove"]
    assert ids[0] in [item["id"] for item in removed] and pruned["counts"]["update"] == 0
    assert ids[0] not in listed(engine) and {ids[1], ids[2]} <= listed(engine)


def test_dry_run_changes_nothing(shared: tuple[Engine, Path]) -> None:
    engine, base = shared
    folder, ids = _folder(base, "dry", 2)
    plan = apply(engine, "-f", str(folder), "--dry-run")
    assert "Plan: 2 to create" in plan.stdout and "Dry run: nothing changed." in plan.stdout
    assert not set(ids) & listed(engine)


def test_a_bad_file_among_good_ones_changes_nothing(shared: tuple[Engine, Path]) -> None:
    engine, base = shared
    folder, ids = _folder(base, "bad", 2)
    bad = write_job(folder, "broken", "print('x')\n", schedule="evry hour")
    result = apply(engine, "-f", str(folder), "--yes", check=False)
    assert result.returncode == 2, result.stderr
    assert f"{bad}: line 10: job.schedule" in result.stderr
    assert not set(ids) & listed(engine)

    bad.unlink()
    missing = write_job(folder, "nocode", "print('x')\n")
    (folder / "nocode.py").unlink()
    result = apply(engine, "-f", str(folder), "--yes", check=False)
    assert result.returncode == 2 and f"{missing}: job.file" in result.stderr
    assert not set(ids) & listed(engine)

    missing.unlink()
    twin = write_job(folder, "twin", "print('x')\n", job_id=ids[0])
    result = apply(engine, "-f", str(folder), "--yes", check=False)
    assert result.returncode == 2 and "job.id" in result.stderr and str(twin) in result.stderr
    assert not set(ids) & listed(engine)


def test_a_job_id_of_another_user_is_refused_naming_it(shared: tuple[Engine, Path]) -> None:
    engine, base = shared
    bobs = write_job(user_dir(base / "bob", BOB), "bobs", "print('bob')\n")
    bob_id = job_id_of(bobs)
    odin("deploy", "-f", str(bobs), engine=engine, user=BOB)
    folder, ids = _folder(base, "theft", 1)
    theft = write_job(folder, "theft", "print('mine')\n", job_id=bob_id)
    result = apply(engine, "-f", str(folder), "--yes", check=False)
    assert result.returncode == 4, result.stderr
    assert str(theft) in result.stderr and bob_id in result.stderr
    assert "another user" in result.stderr
    assert not set(ids) & listed(engine)
    assert bob_id in listed(engine, BOB)


def test_without_a_terminal_or_yes_it_refuses(shared: tuple[Engine, Path]) -> None:
    engine, base = shared
    folder, ids = _folder(base, "noterm", 1)
    done = subprocess.run(
        as_alice(engine, "apply", "-f", str(folder)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--yes" in done.stderr and "not a terminal" in done.stderr
    assert not set(ids) & listed(engine)


def test_on_a_terminal_it_shows_the_plan_and_asks(shared: tuple[Engine, Path]) -> None:
    engine, base = shared
    folder, ids = _folder(base, "terminal", 1)
    main, child = pty.openpty()
    command = as_alice(engine, "apply", "-f", str(folder))
    proc = subprocess.Popen(command, stdin=child, stdout=child, stderr=child)
    os.close(child)
    try:
        seen = _read_until(main, b"Apply these changes?")
        assert b"Plan: 1 to create" in seen
        os.write(main, b"y\n")
        seen += _read_until(main, b"Applied")
        assert proc.wait(timeout=30) == 0, seen
    finally:
        proc.kill()
        proc.wait()
        os.close(main)
    assert ids[0] in listed(engine)


def _read_until(fd: int, marker: bytes, timeout: float = 30.0) -> bytes:
    """What a terminal shows, up to ``marker``."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the other side closed
                break
    return seen


def test_a_batch_over_the_request_bound_goes_in_several_requests(
    shared: tuple[Engine, Path],
) -> None:
    engine, base = shared
    folder = user_dir(base / "big", ALICE)
    code = "#" * 999_000 + "\nprint('big')\n"  # 9 of them are over the 8 MiB bound
    ids = [job_id_of(write_job(folder, f"big{i}", code)) for i in range(10)]
    first = apply(engine, "-f", str(folder), "--yes")
    assert "they go in 2 requests" in first.stderr
    assert "Applied in 2 requests: 10 created" in first.stdout
    assert set(ids) <= listed(engine)

    (folder / "big3.yml").unlink()  # a prune, told of the other request's jobs, removes one
    pruned = apply(engine, "-f", str(folder), "--yes", "--prune", "-o", "json").json()
    assert pruned["requests"] == 2
    removed = {item["id"] for item in pruned["items"] if item["action"] == "remove"}
    assert ids[3] in removed and not removed & (set(ids) - {ids[3]})
    assert set(ids) - {ids[3]} <= listed(engine) and ids[3] not in listed(engine)
