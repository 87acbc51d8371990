"""`make deb`'s package: its metadata and files, lintian, and a real apt install, remove and purge.

The package is built once for the module (packaging/deb/build.sh), or taken from $ODIN_DEB.
Installing it on this host would change the host (its group odin, /var/lib/odin, its dpkg
database), so the apt tests run in a ``Sandbox``: a root filesystem seen through a copy-on-write
overlay, in private mount, network and PID namespaces. apt-get, dpkg and the maintainer scripts
run there unmodified; everything they write goes to a tmpfs that vanishes with the namespaces,
even when a test fails, and each test checks that this host's odin group, data, /opt and dpkg
status are as they were. The root is either this host's own Debian, made fresh for Odin (no
odin package, group, data or files), for the whole life cycle (install, upgrade, remove,
install again, purge), or a minimal Debian of the same release (debootstrap minbase, the
dependencies fetched from Debian's mirror beforehand), which shows the package's Depends are
enough. What neither shows: the unit started by a running systemd (none is PID 1 there).
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from odin.cli.install_cmd import completion_sources
from odin.install.unit import DEFAULTS, render_unit

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "packaging" / "deb" / "build.sh"
BIN = Path(sys.executable).parent
ENGINE = Path("/opt/odin/bin/odin-engine")
PYTHON = f"python{sys.version_info[0]}.{sys.version_info[1]}"
COMPLETIONS = {
    "bash": "usr/share/bash-completion/completions/odin",
    "zsh": "usr/share/zsh/vendor-completions/_odin",
    "fish": "usr/share/fish/vendor_completions.d/odin.fish",
}
UNIT = "lib/systemd/system/odin-engine.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/odin-engine.service"
# What `odin install` lays out that the postinst must lay out the same way (path, kind).
DATA_LAYOUT = (
    ("var/lib/odin", "dir"),
    ("var/lib/odin/raft", "dir"),
    ("var/lib/odin/code", "dir"),
    ("var/lib/odin/builds", "dir"),
    ("var/lib/odin/cluster.secret", "file"),
    ("run/odin", "dir"),
)
MIRROR = os.environ.get("ODIN_DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEADLINE_S = 120.0
JOB_ID = "0deb0deb0deb"
JOB_YAML = f"""\
provider:
  name: odin
  version: 1.0.0
job:
  id: "{JOB_ID}"
  name: "hello"
  description: "a job run by the packaged engine"
  language: python
  file: hello.py
  schedule: "every day at 03:00"
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="building and installing a .deb needs root"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is missing"),
]


def run(*argv: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv}: {done.stderr}{done.stdout}"
    return done


def wait_for(check: str, condition: Callable[[], bool], detail: Callable[[], str] = str) -> None:
    """Poll ``condition()`` until it is true; fail with ``check`` and ``detail()`` after
    DEADLINE_S (generous: these tests share the machine with whatever else runs)."""
    end = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {check}: {detail()}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package: $ODIN_DEB if it names one, else built now (about a minute)."""
    given = os.environ.get("ODIN_DEB")
    if given:
        return Path(given).resolve()
    out = tmp_path_factory.mktemp("deb")
    done = run("bash", BUILD, out, timeout=900)
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tree(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's files and its DEBIAN/ control files, unpacked."""
    root = tmp_path_factory.mktemp("unpacked") / "root"
    run("dpkg-deb", "--raw-extract", deb, root)
    return root


def field(deb: Path, name: str) -> str:
    return run("dpkg-deb", "--field", deb, name).stdout.strip()


def test_control_names_the_version_the_architecture_and_the_dependencies(deb: Path) -> None:
    with (REPO / "pyproject.toml").open("rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    arch = run("dpkg", "--print-architecture").stdout.strip()
    assert deb.name == f"odin_{version}_{arch}.deb"
    assert field(deb, "Package") == "odin"
    assert field(deb, "Version") == version
    assert field(deb, "Architecture") == arch  # compiled wheels: not "all"
    python = PYTHON  # the tests run on the python3.X the package's venv is built with
    depends = [d.strip() for d in field(deb, "Depends").split(",")]
    assert depends[0] == python and "passwd" in depends and "libpam0g" in depends
    assert any(d.startswith("python3 (>= 3.") for d in depends)  # what Python jobs run on
    assert any(d.startswith("libc6 (>= 2.") for d in depends)
    assert "systemd" in field(deb, "Recommends")
    assert int(field(deb, "Installed-Size")) > 10_000  # KiB: the whole venv is in it


def test_conffiles_md5sums_and_maintainer_scripts(tree: Path) -> None:
    control = tree / "DEBIAN"
    assert (control / "conffiles").read_text().split() == ["/etc/default/odin"]
    for script in ("postinst", "prerm", "postrm"):
        path = control / script
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, script
        run("bash", "-n", path)
    sums = {}
    for line in (control / "md5sums").read_text().splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    files = {
        str(p.relative_to(tree))
        for p in tree.rglob("*")
        if p.is_file() and not p.is_symlink() and p.relative_to(tree).parts[0] != "DEBIAN"
    }
    assert set(sums) == files
    for name, digest in sums.items():
        assert hashlib.md5((tree / name).read_bytes()).hexdigest() == digest, name


def test_ships_what_odin_install_writes(tree: Path) -> None:
    """The unit, the engine options and the completions come from Odin's own code."""
    unit = (tree / UNIT).read_text()
    expected = render_unit(ENGINE)
    assert unit.split("\n", 1)[1] == expected.split("\n", 1)[1]
    assert unit.startswith("# Installed by the odin Debian package")
    assert (tree / "etc/default/odin").read_text() == DEFAULTS
    for shell, source in completion_sources().items():
        assert (tree / COMPLETIONS[shell]).read_text() == source, shell
    for name in ("odin", "odin-engine"):
        assert os.readlink(tree / "usr/bin" / name) == f"/opt/odin/bin/{name}"


def test_venv_is_built_at_its_final_path_without_bytecode_or_pip(tree: Path) -> None:
    venv = tree / "opt/odin"
    python = PYTHON
    assert os.readlink(venv / "bin" / python) == f"/usr/bin/{python}"
    assert (venv / "bin/odin").read_text().startswith(f"#!/opt/odin/bin/{python}\n")
    assert "home = /usr/bin" in (venv / "pyvenv.cfg").read_text()
    assert not list(venv.rglob("__pycache__"))  # the postinst compiles it; the prerm removes it
    assert not (venv / "bin/pip").exists()
    site = venv / "lib" / python / "site-packages"
    assert (site / "odin/_sdk").is_dir() and not list(site.glob("pip-*.dist-info"))
    assert not list(site.glob("odin_scheduler-*.dist-info/direct_url.json"))


@pytest.mark.skipif(shutil.which("lintian") is None, reason="lintian is not installed")
def test_lintian_reports_no_error(deb: Path) -> None:
    """Intentional findings (/opt, the venv's interpreter...) are overridden, with reasons."""
    done = subprocess.run(
        ["lintian", "--fail-on", "error", str(deb)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors = [line for line in done.stdout.splitlines() if line.startswith("E:")]
    assert done.returncode == 0 and not errors, done.stdout + done.stderr


# --- a real apt install, in a sandbox -------------------------------------------------------

SANDBOX_SETUP = r"""
set -euo pipefail
base=$1 lower=$2 watched=$3
mount -t tmpfs -o mode=0755 odin-sandbox "$base"
mkdir "$base/upper" "$base/work" "$base/root"
mount -t overlay -o "lowerdir=$lower,upperdir=$base/upper,workdir=$base/work" odin-sandbox \
  "$base/root"
mount -t proc proc "$base/root/proc"
mount --rbind /dev "$base/root/dev"
mount -t tmpfs -o mode=0755 odin-sandbox "$base/root/run"
mount -t tmpfs -o mode=1777 odin-sandbox "$base/root/tmp"
ip link set lo up
echo ready
# PID 1 of the namespace: its end ends every process in it and frees every mount above.
while [ -d "/proc/$watched" ]; do sleep 1; done
"""

# This host as a fresh Debian would be for Odin: no odin package, group, data or files.
MAKE_FRESH = """
dpkg --purge odin >/dev/null 2>&1 || true
rm -rf /opt/odin /var/lib/odin /etc/odin /etc/default/odin /run/odin \
  /etc/systemd/system/odin-engine.service /etc/bash_completion.d/odin \
  /usr/local/bin/odin /usr/local/bin/odin-engine
if getent group odin >/dev/null; then groupdel --force odin; fi
"""


class Sandbox:
    """A root filesystem, copy-on-write, in its own mount, network and PID namespaces."""

    def __init__(self, base: Path, lower: Path) -> None:
        self.base = base
        unshare = ["unshare", "--mount", "--propagation", "private", "--net", "--pid", "--fork"]
        setup = ["bash", "-c", SANDBOX_SETUP, "_", str(base), str(lower), str(os.getpid())]
        self.unshare = subprocess.Popen(
            [*unshare, "--kill-child", *setup],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.unshare.stdout is not None
        if self.unshare.stdout.readline().strip() != "ready":
            _, errors = self.unshare.communicate(timeout=30)
            raise RuntimeError(f"no sandbox: {errors.strip()}")
        children = Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children")
        self.pid = int(children.read_text().split()[0])

    def sh(self, script: str, *, check: bool = True, stdin: bytes | None = None) -> str:
        """Run ``script`` as root inside, with a clean environment; its output."""
        argv = ["nsenter", "-t", str(self.pid), "-m", "-n", "-p", "--", "chroot"]
        argv += [f"{self.base}/root", "/usr/bin/env", "-i", "HOME=/root", "LANG=C.UTF-8"]
        argv += ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive"]
        done = subprocess.run(
            [*argv, "sh", "-c", script], input=stdin, capture_output=True, timeout=300, check=False
        )
        out = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        assert done.returncode == 0 or not check, f"{script}: {out}"
        return out

    def path(self, absolute: str) -> Path:
        """``absolute`` inside, as this process can read it (through the namespace's root)."""
        return Path(f"/proc/{self.pid}/root{self.base}/root{absolute}")

    def group(self, name: str) -> str | None:
        for line in self.path("/etc/group").read_text().splitlines():
            if line.split(":", 1)[0] == name:
                return line
        return None

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)  # PID 1 inside: the kernel ends all the rest
        self.unshare.wait(timeout=30)
        self.base.rmdir()


def host_state() -> dict[str, object]:
    """What the sandbox must leave as it was on this host."""
    secret = Path("/var/lib/odin/cluster.secret")
    try:
        group: object = grp.getgrnam("odin")[2:]
    except KeyError:
        group = None
    status = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}", "odin"], capture_output=True, text=True
    )
    return {
        "group": group,
        "secret": secret.read_text() if secret.exists() else None,
        "opt": sorted(os.listdir("/opt")) if Path("/opt").is_dir() else None,
        "unit": Path("/lib/systemd/system/odin-engine.service").exists(),
        "wants": os.path.lexists(WANTS),
        "package": status.stdout,
        "usr_bin": os.path.lexists("/usr/bin/odin"),
    }


@contextlib.contextmanager
def open_sandbox(base: Path, lower: Path, deb: Path) -> Iterator[Sandbox]:
    """A sandbox over ``lower`` with the package as /root/odin.deb; this host unchanged after."""
    for tool in ("unshare", "nsenter", "chroot", "apt-get", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing")
    before = host_state()
    base.mkdir()
    try:
        box = Sandbox(base, lower)
    except RuntimeError as error:  # no overlayfs or namespaces here (an unprivileged container)
        base.rmdir()
        pytest.skip(str(error))
    try:
        box.sh("cat > /root/odin.deb", stdin=deb.read_bytes())
        yield box
    finally:
        box.close()
    assert host_state() == before


@pytest.fixture
def sandbox(tmp_path: Path, deb: Path) -> Iterator[Sandbox]:
    """This host's Debian, made fresh for Odin."""
    with open_sandbox(tmp_path / "sandbox", Path("/"), deb) as box:
        box.sh(MAKE_FRESH)
        yield box


@pytest.fixture(scope="module")
def minimal_debian(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A minimal Debian of this host's release (debootstrap --variant=minbase), with the
    packages the odin package depends on downloaded (not installed) into apt's cache."""
    release = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().split() if "=" in line
    )
    if release.get("ID") != "debian" or shutil.which("debootstrap") is None:
        pytest.skip("needs Debian's debootstrap on a Debian host")
    root = tmp_path_factory.mktemp("debian") / "root"
    codename = release["VERSION_CODENAME"]
    run("debootstrap", "--variant=minbase", codename, root, MIRROR, timeout=900)
    shutil.copy(deb, root / "root/odin.deb")
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    download = (
        f"mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev && "
        f"chroot {root} /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "
        "DEBIAN_FRONTEND=noninteractive sh -c 'apt-get update -q && "
        "apt-get install -y -q --download-only --no-install-recommends /root/odin.deb'"
    )
    run("unshare", "--mount", "--propagation", "private", "sh", "-c", download, timeout=900)
    yield root
    shutil.rmtree(root)  # a few hundred MB


def apt_install(box: Sandbox) -> None:
    box.sh("apt-get install -y -q --no-install-recommends /root/odin.deb")


def start_engine(box: Sandbox) -> str:
    """The unit's own ExecStart, started by hand (no systemd inside); the engine's pid."""
    unit = box.path("/lib/systemd/system/odin-engine.service").read_text()
    start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    command = start.removeprefix("ExecStart=").replace("$ODIN_ENGINE_ARGS", "")
    pid = box.sh(f"{command} >/tmp/engine.log 2>&1 & echo $!").strip()
    wait_for("the engine's socket", box.path("/run/odin/odin.sock").exists, engine_log(box))
    return pid


def engine_log(box: Sandbox) -> Callable[[], str]:
    return lambda: box.sh("cat /tmp/engine.log", check=False)


def stop_engine(box: Sandbox, pid: str) -> None:
    box.sh(f"kill {pid}")
    wait_for("the engine to stop", lambda: "gone" in box.sh(f"kill -0 {pid} || echo gone"))


def run_job(box: Sandbox) -> dict[str, object]:
    """Deploy the hello job as root, run it now and wait for the run to end; the run."""
    box.sh(
        "mkdir -p /root/job && cd /root/job && cat > hello.yml && "
        "echo 'print(\"hello from the package\")' > hello.py && odin deploy -f hello.yml && "
        f"odin run -i {JOB_ID}",
        stdin=JOB_YAML.encode(),
    )
    runs: list[dict[str, object]] = []

    def ended() -> bool:
        runs[:] = json.loads(box.sh(f"odin log -i {JOB_ID} -o json"))
        return bool(runs) and runs[-1]["status"] not in ("planned", "running", "waiting")

    wait_for("the run to end", ended, lambda: f"{runs}\n{engine_log(box)()}")
    return runs[-1]


def package_status(box: Sandbox) -> str:
    """dpkg's word for the odin package inside: installed, config-files, not-installed..."""
    out = box.sh("dpkg-query -W -f '${db:Status-Status}' odin 2>/dev/null || echo unknown")
    return out.strip()


def kind_and_mode(path: Path) -> tuple[str, int, int, int]:
    info = path.lstat()
    kind = "dir" if stat.S_ISDIR(info.st_mode) else "file"
    return kind, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


def test_apt_install_gives_the_commands_group_data_unit_and_completion(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    apt_install(sandbox)
    assert package_status(sandbox) == "installed"
    version = sandbox.sh("dpkg-query -W -f '${Version}' odin").strip()
    assert sandbox.sh("odin --version").strip() == f"odin, version {version}"
    assert "odin-engine, version" in sandbox.sh("odin-engine --version")
    assert sandbox.sh("getent group odin").startswith("odin:x:")
    # The data directory exactly as `odin install` lays it out (run here into a fake root).
    fake = tmp_path / "fake"
    run(BIN / "odin", "install", "--root", fake)
    for relative, kind in DATA_LAYOUT:
        packaged = kind_and_mode(sandbox.path(f"/{relative}"))
        assert packaged == kind_and_mode(fake / relative), relative
        assert packaged[0] == kind, relative
    assert len(sandbox.path("/var/lib/odin/cluster.secret").read_text()) == 64
    assert sandbox.path("/lib/systemd/system/odin-engine.service").is_file()
    assert os.readlink(sandbox.path(WANTS)) == "/lib/systemd/system/odin-engine.service"
    assert sandbox.path("/usr/share/bash-completion/completions/odin").is_file()
    assert sandbox.path("/etc/default/odin").read_text() == DEFAULTS
    assert list(sandbox.path("/opt/odin/lib").rglob("odin/__pycache__/*.pyc"))  # compiled
    if shutil.which("systemd-analyze"):
        sandbox.sh("systemd-analyze verify /lib/systemd/system/odin-engine.service")
    engine = start_engine(sandbox)
    finished = run_job(sandbox)
    assert finished["status"] == "succeeded", finished
    assert finished["output_tail"] == "hello from the package\n"
    stop_engine(sandbox, engine)


def test_upgrade_and_remove_keep_the_jobs_and_purge_deletes_them(sandbox: Sandbox) -> None:
    apt_install(sandbox)
    secret = sandbox.path("/var/lib/odin/cluster.secret").read_text()
    engine = start_engine(sandbox)
    assert run_job(sandbox)["status"] == "succeeded"
    stop_engine(sandbox, engine)
    sandbox.sh("cat >> /etc/default/odin", stdin=b"# kept\n")

    sandbox.sh("dpkg -i /root/odin.deb")  # the upgrade path: prerm upgrade, postinst configure V
    assert sandbox.path("/var/lib/odin/cluster.secret").read_text() == secret
    assert sandbox.path("/etc/default/odin").read_text().endswith("# kept\n")

    sandbox.sh("apt-get remove -y -q odin")
    for gone in ("/usr/bin/odin", "/usr/bin/odin-engine", "/opt/odin", "/" + UNIT):
        assert not os.path.lexists(sandbox.path(gone)), gone
    assert sandbox.path("/var/lib/odin/cluster.secret").read_text() == secret
    assert sandbox.path("/etc/default/odin").read_text().endswith("# kept\n")
    assert sandbox.group("odin") is not None

    apt_install(sandbox)
    engine = start_engine(sandbox)
    assert JOB_ID in sandbox.sh("odin list")  # the jobs came back with the data
    stop_engine(sandbox, engine)

    sandbox.sh("apt-get purge -y -q odin")
    purged = ("/var/lib/odin", "/etc/default/odin", "/opt/odin", "/usr/bin/odin", WANTS)
    for gone in (*purged, "/etc/systemd/system/odin-engine.service"):  # nor a mask left
        assert not os.path.lexists(sandbox.path(gone)), gone
    assert sandbox.group("odin") is None
    assert package_status(sandbox) in ("not-installed", "unknown")


def test_installs_and_runs_a_job_on_a_minimal_debian(
    minimal_debian: Path, deb: Path, tmp_path: Path
) -> None:
    """On a minbase Debian, the package's dependencies are all it needs (what this host's
    sandbox cannot show: this host has much more installed)."""
    with open_sandbox(tmp_path / "sandbox", minimal_debian, deb) as box:
        apt_install(box)  # offline: the sandbox has no network, apt's cache has the rest
        assert package_status(box) == "installed"
        assert "odin-engine, version" in box.sh("odin-engine --version")
        engine = start_engine(box)
        finished = run_job(box)
        assert finished["status"] == "succeeded", finished
        assert finished["output_tail"] == "hello from the package\n"
        stop_engine(box, engine)
