"""End to end on one node: real engine, real CLI, real users (needs root)."""

from __future__ import annotations

import itertools
import os
import pwd
from pathlib import Path

import pytest

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, wait_for, write_job

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root to create users and run jobs as them"),
    pytest.mark.slow,
]

ALICE, BOB, EVE = "odin-alice", "odin-bob", "odin-eve"

WHO_AM_I = (
    "import os\nprint('ids', os.getuid(), os.getgid(), sorted(os.getgroups()), os.getcwd())\n"
)


def finished_runs(engine: Engine, job_id: str, user: str = ALICE) -> list[dict[str, object]]:
    runs = odin("log", "-i", job_id, "-o", "json", "-n", "100", engine=engine, user=user).json()
    return [r for r in runs if r["status"] not in ("planned", "running")]


def test_member_full_lifecycle(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    yaml_path = write_job(home, "whoami", WHO_AM_I)
    job_id = job_id_of(yaml_path)

    deployed = odin("deploy", "-f", str(yaml_path), "-o", "json", engine=engine, user=ALICE).json()
    assert deployed["job"]["id"] == job_id and deployed["updated"] is False
    listed = odin("ls", "-o", "json", engine=engine, user=ALICE).json()
    assert [j["id"] for j in listed] == [job_id]

    odin("run", "-i", job_id, engine=engine, user=ALICE)
    runs = wait_for(lambda: finished_runs(engine, job_id), what="the run to finish")
    assert runs[0]["status"] == "succeeded"
    output = odin("log", "-i", job_id, "--output", engine=engine, user=ALICE).stdout
    entry = pwd.getpwnam(ALICE)
    groups = sorted(os.getgrouplist(ALICE, entry.pw_gid))
    assert f"ids {entry.pw_uid} {entry.pw_gid} {groups} {entry.pw_dir}" in output

    odin(
        "modify",
        "-i",
        job_id,
        "-n",
        "renamed",
        "-d",
        "new words",
        "-s",
        "every hour",
        engine=engine,
        user=ALICE,
    )
    described = odin("describe", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    assert (described["name"], described["description"], described["schedule"]) == (
        "renamed",
        "new words",
        "every hour",
    )
    assert len(described["next_runs"]) == 5

    other = write_job(home, "other", "print('other')\n")
    other_id = job_id_of(other)
    odin("add", "-f", str(other), engine=engine, user=ALICE)
    odin("link", "-f", job_id, "-t", other_id, engine=engine, user=ALICE)
    links = {
        j["id"]: j["links"] for j in odin("list", "-o", "json", engine=engine, user=ALICE).json()
    }
    assert links[job_id] == {other_id: "success"}
    cycle = odin("link", "-f", other_id, "-t", job_id, engine=engine, user=ALICE, check=False)
    assert cycle.returncode != 0 and "cycle" in cycle.stderr
    odin("unlink", "-f", job_id, "-t", other_id, engine=engine, user=ALICE)
    links = {
        j["id"]: j["links"] for j in odin("list", "-o", "json", engine=engine, user=ALICE).json()
    }
    assert links[job_id] == {}

    restore = user_dir(world_dir / "restore", ALICE)
    odin("recover", "-i", job_id, engine=engine, user=ALICE, cwd=restore)
    assert (restore / "whoami.py").read_text() == WHO_AM_I
    assert "renamed" in (restore / "whoami.yml").read_text()
    again = odin("recover", "-i", job_id, engine=engine, user=ALICE, cwd=restore, check=False)
    assert again.returncode == 5 and "--force" in again.stderr
    odin("recover", "-i", job_id, "--force", engine=engine, user=ALICE, cwd=restore)

    odin("rm", "-i", job_id, engine=engine, user=ALICE)
    remaining = [j["id"] for j in odin("list", "-o", "json", engine=engine, user=ALICE).json()]
    assert remaining == [other_id]


def test_non_member_is_refused(engine: Engine) -> None:
    result = odin("list", engine=engine, user=EVE, check=False)
    assert result.returncode == 4
    assert "odin" in result.stderr and "usermod -aG odin" in result.stderr
    assert "Traceback" not in result.stderr
    # Even with the socket opened to everyone, the engine itself refuses (kernel uid).
    os.chmod(engine.socket, 0o666)
    result = odin("list", engine=engine, user=EVE, check=False)
    assert result.returncode == 4
    assert "not a member of the 'odin' group" in result.stderr


def test_members_cannot_see_each_other(engine: Engine, world_dir: Path) -> None:
    yaml_path = write_job(user_dir(world_dir, ALICE), "private", "print('mine')\n")
    job_id = job_id_of(yaml_path)
    odin("deploy", "-f", str(yaml_path), engine=engine, user=ALICE)
    assert odin("list", "-o", "json", engine=engine, user=BOB).json() == []
    for args in (
        ("describe", "-i", job_id),
        ("run", "-i", job_id),
        ("rm", "-i", job_id),
        ("log", "-i", job_id),
        ("recover", "-i", job_id),
        ("stats", "-i", job_id),
        ("modify", "-i", job_id, "-n", "stolen"),
    ):
        result = odin(*args, engine=engine, user=BOB, cwd=world_dir, check=False)
        assert result.returncode == 3, (args, result.stderr)
    # Bob cannot take the id over by deploying a file with the same id.
    theft = write_job(user_dir(world_dir, BOB), "theft", "print('x')\n", job_id=job_id)
    result = odin("deploy", "-f", str(theft), engine=engine, user=BOB, check=False)
    assert result.returncode == 4
    # Root sees everything.
    assert job_id in [j["id"] for j in odin("list", "-o", "json", engine=engine).json()]


def test_link_fires_on_success_only(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    good = job_id_of(write_job(home, "good", "print('ok')\n"))
    bad = job_id_of(write_job(home, "bad", "raise SystemExit(3)\n"))
    after = job_id_of(write_job(home, "after", "print('after')\n"))
    for name in ("good", "bad", "after"):
        odin("deploy", "-f", str(home / f"{name}.yml"), engine=engine, user=ALICE)
    odin("link", "-f", good, "-t", after, engine=engine, user=ALICE)
    odin("link", "-f", bad, "-t", after, engine=engine, user=ALICE)

    odin("run", "-i", bad, engine=engine, user=ALICE)
    failed = wait_for(lambda: finished_runs(engine, bad), what="the failing run")
    assert failed[0]["status"] == "failed" and failed[0]["exit_code"] == 3
    odin("run", "-i", good, engine=engine, user=ALICE)
    wait_for(lambda: finished_runs(engine, good), what="the good run")
    linked = wait_for(lambda: finished_runs(engine, after), what="the linked run")
    assert len(linked) == 1 and linked[0]["reason"] == "link"
    assert str(linked[0]["trigger"]).startswith(good)


def test_timeout_kills_the_job_and_its_children(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    pidfile = home / "child.pid"
    code = (
        "import subprocess, time\n"
        f"child = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    job_id = job_id_of(write_job(home, "slow", code, extra="  timeout: 1s\n"))
    odin("deploy", "-f", str(home / "slow.yml"), engine=engine, user=ALICE)
    odin("run", "-i", job_id, engine=engine, user=ALICE)
    runs = wait_for(lambda: finished_runs(engine, job_id), timeout=30, what="the timed-out run")
    assert runs[0]["status"] == "timed_out"
    child = int(pidfile.read_text())
    wait_for(lambda: not Path(f"/proc/{child}").exists() or "Z" in _state(child), what="child gone")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "gone"


def test_output_flood_is_capped(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    code = "import sys\nfor _ in range(40000):\n    sys.stdout.write('x' * 99 + '\\n')\n"
    job_id = job_id_of(write_job(home, "flood", code))
    odin("deploy", "-f", str(home / "flood.yml"), engine=engine, user=ALICE)
    odin("run", "-i", job_id, engine=engine, user=ALICE)
    runs = wait_for(lambda: finished_runs(engine, job_id), what="the flood run")
    assert runs[0]["status"] == "succeeded"
    assert runs[0]["output_bytes"] == 4_000_000
    assert runs[0]["dropped_bytes"] == 4_000_000 - 1024 * 1024
    out = odin("log", "-i", job_id, "--output", engine=engine, user=ALICE).stdout
    assert "dropped" in out


def test_restart_keeps_everything(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    first = job_id_of(write_job(home, "first", "print('one')\n"))
    second = job_id_of(write_job(home, "second", "print('two')\n"))
    for name in ("first", "second"):
        odin("deploy", "-f", str(home / f"{name}.yml"), engine=engine, user=ALICE)
    odin("link", "-f", first, "-t", second, "--on", "always", engine=engine, user=ALICE)
    odin("run", "-i", first, engine=engine, user=ALICE)
    wait_for(lambda: finished_runs(engine, second), what="the linked run")
    before = odin("list", "-o", "json", engine=engine, user=ALICE).json()

    engine.kill()
    engine.start()
    after = odin("list", "-o", "json", engine=engine, user=ALICE).json()
    strip = lambda jobs: sorted((j["id"], j["name"], j["links"], j["last_status"]) for j in jobs)  # noqa: E731
    assert strip(after) == strip(before)
    assert len(finished_runs(engine, first)) == 1
    out = odin("log", "-i", first, "--output", engine=engine, user=ALICE).stdout
    assert "one" in out


def test_interval_job_fires_once_per_tick_across_restart(engine: Engine, world_dir: Path) -> None:
    home = user_dir(world_dir, ALICE)
    job_id = job_id_of(write_job(home, "tick", "print('tick')\n", schedule="every 2 seconds"))
    odin("deploy", "-f", str(home / "tick.yml"), engine=engine, user=ALICE)
    wait_for(lambda: len(finished_runs(engine, job_id)) >= 2, what="two ticks")
    engine.stop()
    engine.start()
    wait_for(lambda: len(finished_runs(engine, job_id)) >= 5, timeout=30, what="more ticks")
    runs = finished_runs(engine, job_id)
    ids = [r["id"] for r in runs]
    assert len(ids) == len(set(ids)), "a tick ran twice"
    instants = sorted(float(str(r["instant"])) for r in runs)
    assert all(int(t) % 2 == 0 for t in instants)
    assert len(instants) == len(set(instants))


def test_log_follow_streams_live_output_and_new_runs(engine: Engine, world_dir: Path) -> None:
    import subprocess

    from engine_harness import BIN

    home = user_dir(world_dir, ALICE)
    code = "import time\nprint('first line', flush=True)\ntime.sleep(2)\nprint('last line')\n"
    job_id = job_id_of(write_job(home, "live", code))
    odin("deploy", "-f", str(home / "live.yml"), engine=engine, user=ALICE)
    env = {"PATH": "/usr/bin:/bin", "ODIN_SOCKET": str(engine.socket)}
    follower = subprocess.Popen(
        [
            "/usr/sbin/runuser",
            "-u",
            ALICE,
            "--",
            "env",
            *(f"{k}={v}" for k, v in env.items()),
            str(BIN / "odin"),
            "log",
            "-i",
            job_id,
            "-f",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        odin("run", "-i", job_id, engine=engine, user=ALICE)
        assert follower.stdout is not None
        seen: list[str] = []
        for line in follower.stdout:
            seen.append(line)
            if "succeeded" in line or " exec " in line:
                break
        text = "".join(seen)
        assert "first line" in text and "last line" in text
        assert text.index("first line") < text.index("last line")
    finally:
        follower.kill()
        follower.wait()


def test_overlap_skip_never_runs_two_at_once(engine: Engine, world_dir: Path) -> None:
    """A run lasting 2.5 s under a 1 s schedule: the ticks that fall inside it are skipped,
    including those within the first second, before it is replicated as running."""
    home = user_dir(world_dir, ALICE)
    code = "import time\ntime.sleep(2.5)\n"
    path = write_job(home, "slow", code, schedule="every 1 second", extra="  overlap: skip\n")
    odin("deploy", "-f", str(path), engine=engine, user=ALICE)
    job_id = job_id_of(path)

    def enough() -> list[dict[str, object]]:
        runs = finished_runs(engine, job_id)
        return runs if sum(r["status"] == "succeeded" for r in runs) >= 2 else []

    runs = wait_for(enough, timeout=30, what="two finished runs and the skips between them")
    ran = sorted(
        (float(r["started_at"]), float(r["finished_at"]))  # type: ignore[arg-type]
        for r in runs
        if r["status"] == "succeeded"
    )
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(ran)), ran
    skipped = [r for r in runs if r["status"] == "skipped"]
    assert skipped and all("overlap: skip" in str(r["message"]) for r in skipped)
