"""`odin install` / `odin uninstall` into a fake root: files, owners, modes, the unit."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from odin.install.layout import Layout
from odin.install.unit import render_unit

BIN = Path(sys.executable).parent
# Runs the real `odin` group; adds the install commands if main.py does not list them yet.
CLI = (
    "import sys; from odin.cli import main as m; "
    "m.COMMANDS.setdefault('install', ('odin.cli.install_cmd', 'install', 'Install.')); "
    "m.COMMANDS.setdefault('uninstall', ('odin.cli.install_cmd', 'uninstall', 'Uninstall.')); "
    "m.main(sys.argv[1:])"
)
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="install writes root-owned files")


def odin(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", CLI, *args]
    if user is not None:
        command = ["/usr/sbin/runuser", "-u", user, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def install(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = odin("install", "--root", str(root), *extra)
    assert done.returncode == 0, done.stderr + done.stdout
    return done


def tree(root: Path) -> dict[str, tuple[str, int, int, int]]:
    """Every path under root → (kind, mode, uid, gid)."""
    found: dict[str, tuple[str, int, int, int]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
        found[str(path.relative_to(root))] = (
            kind,
            stat.S_IMODE(info.st_mode),
            info.st_uid,
            info.st_gid,
        )
    return found


@pytest.fixture
def root(tmp_path: Path) -> Path:
    fake = tmp_path / "root"
    (fake / "usr/share/zsh/vendor-completions").mkdir(parents=True)
    return fake


EXPECTED = {
    "var/lib/odin": ("dir", 0o755),
    "var/lib/odin/raft": ("dir", 0o700),
    "var/lib/odin/code": ("dir", 0o711),
    "var/lib/odin/builds": ("dir", 0o711),
    "var/lib/odin/cluster.secret": ("file", 0o600),
    "run/odin": ("dir", 0o755),
    "etc/default/odin": ("file", 0o644),
    "etc/systemd/system/odin-engine.service": ("file", 0o644),
    "etc/bash_completion.d/odin": ("file", 0o644),
    "usr/share/zsh/vendor-completions/_odin": ("file", 0o644),
}


@pytest.mark.slow
@ROOT_ONLY
def test_install_creates_every_file_root_owned_with_its_mode(root: Path) -> None:
    install(root)
    found = tree(root)
    for path, (kind, mode) in EXPECTED.items():
        assert found[path] == (kind, mode, 0, 0), path
    assert not (root / "etc/fish").exists()  # fish is not installed here: no file for it
    group = (root / "etc/group").read_text().splitlines()
    assert any(line.startswith("odin:x:") for line in group)
    secret = (root / "var/lib/odin/cluster.secret").read_text()
    assert len(secret) == 64 and int(secret, 16) >= 0


@pytest.mark.slow
@ROOT_ONLY
def test_unit_runs_the_installed_engine_and_links_point_at_it(root: Path) -> None:
    install(root)
    unit = (root / "etc/systemd/system/odin-engine.service").read_text()
    engine = BIN / "odin-engine"
    assert f"ExecStart={engine} --data-dir /var/lib/odin --socket /run/odin/odin.sock" in unit
    assert "Restart=on-failure" in unit and "RuntimeDirectory=odin" in unit
    for needed in ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_SYS_RESOURCE"):
        assert needed in unit
    for inherited_by_jobs in ("ProtectHome=", "PrivateTmp=", "NoNewPrivileges="):
        assert f"\n{inherited_by_jobs}" not in unit
    assert os.readlink(root / "usr/local/bin/odin-engine") == str(engine)
    assert os.readlink(root / "usr/local/bin/odin") == str(BIN / "odin")
    bash = (root / "etc/bash_completion.d/odin").read_text()
    assert "_ODIN_COMPLETE=bash_complete" in bash


@pytest.mark.slow
@ROOT_ONLY
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_installed_unit_passes_systemd_analyze_verify(root: Path) -> None:
    """ExecStart names the host's real odin-engine, so verify can check it is executable."""
    install(root)
    unit = root / "etc/systemd/system/odin-engine.service"
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_would_catch_a_bad_unit(tmp_path: Path) -> None:
    """The check above can fail: a missing engine or a misspelt option is reported."""
    unit = tmp_path / "odin-engine.service"
    text = render_unit(tmp_path / "missing-engine").replace("OOMPolicy=", "OOMPolicee=")
    unit.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert "missing-engine" in done.stderr and "OOMPolicee" in done.stderr


@pytest.mark.slow
@ROOT_ONLY
def test_engine_keeps_the_layout_and_secret_that_install_made(root: Path) -> None:
    from odin import daemon

    install(root)
    before = tree(root / "var/lib/odin")
    secret = (root / "var/lib/odin/cluster.secret").read_text()
    daemon._prepare_dirs(root / "var/lib/odin")
    assert daemon._secret(root / "var/lib/odin") == secret
    after = tree(root / "var/lib/odin")
    assert {path: after[path] for path in before} == before  # the engine may add more


@pytest.mark.slow
@ROOT_ONLY
def test_second_install_changes_nothing_and_repairs_what_drifted(root: Path) -> None:
    install(root)
    secret = (root / "var/lib/odin/cluster.secret").read_text()
    again = install(root).stdout.splitlines()
    assert again and all(line.split()[0] in ("ok", "note:") for line in again), again
    (root / "etc/default/odin").write_text('ODIN_ENGINE_ARGS="--name n2"\n')
    (root / "etc/systemd/system/odin-engine.service").write_text("edited\n")
    os.chmod(root / "var/lib/odin/raft", 0o755)
    third = install(root).stdout
    assert "done  file" in third and "odin-engine.service" in third
    assert stat.S_IMODE((root / "var/lib/odin/raft").stat().st_mode) == 0o700
    assert (root / "etc/default/odin").read_text() == 'ODIN_ENGINE_ARGS="--name n2"\n'
    assert (root / "var/lib/odin/cluster.secret").read_text() == secret
    unit = (root / "etc/systemd/system/odin-engine.service").read_text()
    assert unit == render_unit(BIN / "odin-engine")


@pytest.mark.slow
@ROOT_ONLY
def test_dry_run_prints_the_plan_and_writes_nothing(root: Path) -> None:
    before = tree(root)
    done = install(root, "--dry-run")
    assert tree(root) == before
    lines = done.stdout.splitlines()
    assert any(line.startswith("would  directory") and "var/lib/odin" in line for line in lines)
    assert any("odin-engine.service" in line for line in lines)


@pytest.mark.slow
@ROOT_ONLY
def test_uninstall_removes_what_install_made_and_keeps_data(root: Path) -> None:
    install(root)
    secret = (root / "var/lib/odin/cluster.secret").read_text()
    done = odin("uninstall", "--root", str(root))
    assert done.returncode == 0, done.stderr
    left = tree(root)
    for gone in (
        "etc/systemd/system/odin-engine.service",
        "etc/bash_completion.d/odin",
        "usr/share/zsh/vendor-completions/_odin",
        "usr/local/bin/odin",
        "usr/local/bin/odin-engine",
        "run/odin",
    ):
        assert gone not in left, gone
    assert (root / "var/lib/odin/cluster.secret").read_text() == secret
    assert (root / "etc/default/odin").exists()
    assert "odin uninstall --purge" in done.stdout


@pytest.mark.slow
@ROOT_ONLY
def test_uninstall_purge_removes_data_config_and_group(root: Path) -> None:
    install(root)
    done = odin("uninstall", "--root", str(root), "--purge")
    assert done.returncode == 0, done.stderr
    assert not (root / "var/lib/odin").exists()
    assert not (root / "etc/default/odin").exists()
    group = (root / "etc/group").read_text().splitlines()
    assert not any(line.startswith("odin:") for line in group)
    again = odin("uninstall", "--root", str(root), "--purge")
    assert again.returncode == 0 and "done" not in again.stdout


@pytest.mark.slow
@ROOT_ONLY
def test_install_leaves_a_real_file_in_the_bin_dir_alone(root: Path) -> None:
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "usr/local/bin/odin").write_text("#!/bin/sh\n")
    done = install(root)
    assert "is a file, not a link: left alone" in done.stdout
    assert (root / "usr/local/bin/odin").read_text() == "#!/bin/sh\n"
    odin("uninstall", "--root", str(root))
    assert (root / "usr/local/bin/odin").read_text() == "#!/bin/sh\n"


@pytest.mark.slow
@ROOT_ONLY
def test_non_root_is_refused_with_a_clear_message(root: Path) -> None:
    for command in ("install", "uninstall"):
        done = odin(command, "--root", str(root), user="nobody")
        assert done.returncode == 4, done.stderr
        assert f"must run as root: sudo odin {command}" in done.stderr
    assert not (root / "var").exists()


def test_a_fake_root_never_calls_systemctl(tmp_path: Path) -> None:
    assert not Layout(tmp_path).systemd_running()
    assert Layout(Path("/")).is_host


def test_packaged_unit_matches_what_install_writes() -> None:
    """packaging/odin-engine.service is the unit for a distribution package."""
    packaged = Path(__file__).parents[2] / "packaging" / "odin-engine.service"
    assert packaged.read_text() == render_unit(Path("/usr/bin/odin-engine"))


class SystemdHost(Layout):
    """A fake root that claims systemd runs: to read the plan, never to apply it."""

    def systemd_running(self) -> bool:
        return True


def test_plan_enables_and_starts_the_unit_only_where_systemd_runs(tmp_path: Path) -> None:
    from odin.install.actions import Systemctl
    from odin.install.plan import Programs, install_plan, uninstall_plan

    programs = Programs(engine=BIN / "odin-engine", odin=BIN / "odin")
    shells = {"bash": "", "zsh": "", "fish": ""}

    def calls(layout: Layout, start: bool = True) -> list[tuple[str, ...]]:
        plan = install_plan(layout, programs, shells, start=start)
        return [a.args for a in plan.actions if isinstance(a, Systemctl)]

    assert calls(Layout(tmp_path)) == []
    host = SystemdHost(tmp_path)
    assert calls(host) == [("daemon-reload",), ("enable", "--now", "odin-engine.service")]
    assert calls(host, start=False)[-1] == ("enable", "odin-engine.service")
    host.unit.parent.mkdir(parents=True)
    host.unit.write_text("")
    undo = [a.args for a in uninstall_plan(host, False).actions if isinstance(a, Systemctl)]
    assert undo == [("disable", "--now", "odin-engine.service"), ("daemon-reload",)]
