"""``odin import crontab``: the real CLI on crontab files, standard input and ``crontab -l``;
then an imported job deployed to a real engine as odin-alice and run (that part needs root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine_harness import Engine, job_id_of, needs_root, odin, user_dir, wait_for
from odin.jobs.spec import load_job_yaml

ODIN = Path(sys.executable).parent / "odin"
ALICE = "odin-alice"

CRONTAB = """\
# m h dom mon dow command
SHELL=/bin/bash
MAILTO=ops@example.org
0 9 * * 1-5 /usr/local/bin/report.sh --daily > /tmp/report.log 2>&1
*/7 * * * * echo seven
CRON_TZ=America/New_York
30 2 * * * echo "it's 100\\% done"
"""


def run(
    *args: str,
    cwd: Path,
    stdin: str | None = None,
    path: str = "/usr/bin:/bin",
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "TZ": "Europe/Dublin", "LANG": "C.UTF-8"}
    return subprocess.run(
        [str(ODIN), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def fake_crontab(tmp_path: Path, script: str) -> str:
    """A folder holding a ``crontab`` program that runs ``script``; returned as a PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    program = folder / "crontab"
    program.write_text(f"#!/bin/sh\n{script}\n")
    program.chmod(0o755)
    return f"{folder}:/usr/bin:/bin"


def test_odin_help_lists_import(tmp_path: Path) -> None:
    done = run("--help", cwd=tmp_path)
    assert done.returncode == 0 and "import" in done.stdout
    done = run("import", "--help", cwd=tmp_path)
    assert done.returncode == 0 and "crontab" in done.stdout


def test_a_crontab_file_becomes_job_files_in_the_default_folder(tmp_path: Path) -> None:
    (tmp_path / "my.cron").write_text(CRONTAB)
    done = run("import", "crontab", "my.cron", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "crontab-jobs"
    assert sorted(p.name for p in folder.iterdir()) == [
        "echo.py",
        "echo.yml",
        "echo_2.py",
        "echo_2.yml",
        "report.py",
        "report.yml",
    ]
    report = load_job_yaml((folder / "report.yml").read_text())
    assert report.schedule == "every weekday at 09:00" and report.timezone == "Europe/Dublin"
    assert [entry.to for entry in report.notify] == ["mailto:ops@example.org"]
    seven = load_job_yaml((folder / "echo.yml").read_text())
    assert seven.schedule == "*/7 * * * *"
    late = load_job_yaml((folder / "echo_2.yml").read_text())
    assert (late.schedule, late.timezone) == ("every day at 02:30", "America/New_York")
    assert "COMMAND = 'echo \"it\\'s 100% done\"'" in (folder / "echo_2.py").read_text()
    for text in ("every weekday at 09:00", "*/7 * * * *", "stays cron", "crontab-jobs/report.yml"):
        assert text in done.stdout
    assert "odin deploy -f crontab-jobs/echo.yml" in done.stdout
    assert "Nothing was deployed" in done.stdout


def test_skipped_lines_are_listed_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "my.cron").write_text("@reboot echo boot\nnot cron at all\n0 9 * * * echo ok\n")
    done = run("import", "crontab", "my.cron", "-d", "out", cwd=tmp_path)
    assert done.returncode == 1
    assert "Skipped line(s) 1, 2" in done.stderr
    assert "@reboot is not supported" in done.stdout and "not a cron line" in done.stdout
    assert (tmp_path / "out" / "echo.yml").exists()


def test_existing_files_are_kept_unless_force(tmp_path: Path) -> None:
    (tmp_path / "my.cron").write_text("0 9 * * * echo ok\n")
    assert run("import", "crontab", "my.cron", "-d", "a/b", cwd=tmp_path).returncode == 0
    yaml_path = tmp_path / "a" / "b" / "echo.yml"
    first = yaml_path.read_text()
    again = run("import", "crontab", "my.cron", "-d", "a/b", cwd=tmp_path)
    assert again.returncode == 5 and "--force" in again.stderr
    assert yaml_path.read_text() == first
    forced = run("import", "crontab", "my.cron", "-d", "a/b", "--force", cwd=tmp_path)
    assert forced.returncode == 0
    assert load_job_yaml(yaml_path.read_text()).id != load_job_yaml(first).id


def test_standard_input_and_json(tmp_path: Path) -> None:
    done = run("import", "crontab", "-", "-o", "json", cwd=tmp_path, stdin="*/15 * * * * date\n")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (job,) = report["jobs"]
    assert (job["line"], job["cron"], job["schedule"], job["form"]) == (
        1,
        "*/15 * * * *",
        "every 15 minutes",
        "english",
    )
    assert job["yaml"] == "crontab-jobs/date.yml" and report["skipped"] == []
    assert "odin deploy -f crontab-jobs/date.yml" in report["deploy"]


def test_without_a_crontab_command_it_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run("import", "crontab", cwd=tmp_path, path=str(empty))
    assert done.returncode == 3
    assert "crontab command is not installed" in done.stderr and "Traceback" not in done.stderr


def test_without_a_crontab_it_says_so(tmp_path: Path) -> None:
    path = fake_crontab(tmp_path, 'echo "no crontab for tester" >&2; exit 1')
    done = run("import", "crontab", cwd=tmp_path, path=path)
    assert done.returncode == 3
    assert "you have no crontab" in done.stderr and "no crontab for tester" in done.stderr
    assert not (tmp_path / "crontab-jobs").exists()


def test_your_own_crontab_by_default(tmp_path: Path) -> None:
    path = fake_crontab(tmp_path, '[ "$1" = -l ] || exit 2\necho "0 9 * * 1-5 echo mine"')
    done = run("import", "crontab", cwd=tmp_path, path=path)
    assert done.returncode == 0, done.stderr
    spec = load_job_yaml((tmp_path / "crontab-jobs" / "echo.yml").read_text())
    assert spec.description == "0 9 * * 1-5 echo mine"


@pytest.mark.slow
@pytest.mark.skipif(needs_root, reason="needs root to run jobs as odin-alice")
def test_an_imported_job_deploys_and_runs_as_cron_ran_it(
    engine: Engine, world_dir: Path, alice: object
) -> None:
    home = user_dir(world_dir, ALICE)
    crontab = home / "alice.cron"
    crontab.write_text(
        "SHELL=/bin/bash\n"
        'GREETING="hello from cron"\n'
        "MAILTO=alice@example.org\n"
        '0 9 * * 1-5 echo "$GREETING" via $SHELL ${BASH_VERSION:+bash}; '
        'echo "it\'s 100\\% done"; cat; exit 7%first line%second line\n'
    )
    os.chown(crontab, *_owner(home))
    done = odin(
        "import", "crontab", str(crontab), "-d", "jobs", engine=engine, user=ALICE, cwd=home
    )
    assert "every weekday at 09:00" in done.stdout
    yaml_path = home / "jobs" / "echo.yml"
    job_id = job_id_of(yaml_path)
    odin("deploy", "-f", str(yaml_path), engine=engine, user=ALICE)
    described = odin("describe", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    assert described["schedule"] == "every weekday at 09:00"

    odin("run", "-i", job_id, engine=engine, user=ALICE)

    def finished() -> list[dict[str, object]]:
        runs = odin("log", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
        return [r for r in runs if r["status"] not in ("planned", "running")]

    runs = wait_for(finished, what="the imported job's run")
    assert runs[0]["status"] == "failed" and runs[0]["exit_code"] == 7
    output = odin("log", "-i", job_id, "--output", engine=engine, user=ALICE).stdout
    assert "hello from cron via /bin/bash bash" in output
    assert "it's 100% done" in output
    assert "first line\nsecond line" in output


def _owner(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid
