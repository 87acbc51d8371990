"""The start gate as one compiled program, built from ``gate.c`` when the engine starts.

A root engine holds each run at a start gate (``odin.executor.cgroup``). Made of
stock tools, that gate is three programs exec'd one after the other: ``setpriv``
(the owner's ids), ``prlimit`` (the limits) and ``sh`` (wait for the go line, enter
the working directory, exec the job). Each exec loads a dynamically linked binary;
measured here, the three cost about 2.7 ms of CPU per run against 0.3 ms for this
one static program doing the same steps (200 launches of ``/bin/true`` each), 15-20%
of what a trivial Python job costs to start. At a high launch rate that CPU is what
limits the rate.

``build`` compiles ``gate.c`` with the host's C compiler into a directory only the
engine can write (the program runs as root until it switches), once per source
text. Without a compiler, or if the build fails, ``current()`` stays None and runs
use the stock-tool gate: same steps, same exit codes, more CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

from odin import config

_log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("gate.c")
# Static only: no dynamic loader runs at each start (the cheapest form), and none runs
# as root with the job's environment (LD_PRELOAD and the like mean nothing here).
_FLAGS: tuple[tuple[str, ...], ...] = (("-O2", "-static"),)
_current: Path | None = None


def current() -> Path | None:
    """The compiled gate this engine uses, or None for the stock-tool gate."""
    return _current


def use(path: Path | None) -> None:
    """Make ``path`` (a built gate, or None) the gate of every run from now on."""
    global _current
    _current = path


def argv(
    gate: Path,
    *,
    uid: int,
    gid: int,
    groups: Sequence[int],
    limits: Sequence[int],
    cwd: str,
    command: Sequence[str],
) -> tuple[str, ...]:
    """The gate's command line for one run (``limits``: nofile, nproc, as, core)."""
    listed = ",".join(str(g) for g in sorted(set(groups))) or "-"
    return (str(gate), str(uid), str(gid), listed, *map(str, limits), cwd, "--", *command)


def build(bin_dir: Path) -> Path | None:
    """Compile the gate into ``bin_dir`` (or find it there), or None, with the reason logged."""
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    target = bin_dir / f"odin-gate-{digest}"
    try:
        _private_dir(bin_dir)
        if _trusted(target):
            return target
        compiler = next((c for c in config.C_COMPILERS if os.access(c, os.X_OK)), None)
        if compiler is None:
            _log.info("no C compiler (%s): runs use the stock-tool start gate", config.C_COMPILERS)
            return None
        return _compile(compiler, target)
    except OSError as error:
        _log.warning("cannot build the start gate (%s): runs use the stock-tool gate", error)
        return None


def _compile(compiler: str, target: Path) -> Path | None:
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    reason = ""
    for flags in _FLAGS:
        try:
            done = subprocess.run(
                [compiler, *flags, "-o", str(partial), str(SOURCE)],
                capture_output=True,
                timeout=config.GATE_BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            reason = "the compiler timed out"
            continue
        if done.returncode == 0:
            os.chmod(partial, 0o755)
            os.replace(partial, target)
            return target
        reason = done.stderr.decode(errors="replace").strip()[-300:]
    with contextlib.suppress(OSError):
        partial.unlink()
    _log.warning("the start gate did not build (%s): runs use the stock-tool gate", reason)
    return None


def _private_dir(path: Path) -> None:
    """``path`` exists, belongs to this engine's user and no one else may write in it."""
    path.mkdir(mode=0o755, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise OSError(f"{path} is not a directory of this engine's user")
    if info.st_mode & 0o022:
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o022)


def _trusted(path: Path) -> bool:
    """A file this engine built earlier: a regular file of ours that no one else may change."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o022
