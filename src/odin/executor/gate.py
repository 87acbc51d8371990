"""A run's start gate, in its two forms.

A root engine holds each run at a start gate (``odin.executor.cgroup`` says why): the
process, already its owner and under its limits, waits for the go line, then enters
its working directory as the owner and execs the job with stdin on /dev/null.

The compiled form is ``gate.c``, which ``build`` compiles (static) with the host's C
compiler when the engine starts, into a directory only the engine can write (it runs
as root until it switches), once per source text and compiler; the engine's
``Executor`` holds the path. musl's compiler comes first where it is installed: its
static programs skip glibc's CPU-feature probing at start, which traps to the
hypervisor in a VM. The stock-tool form, used where there is no compiler or the build
failed, is three programs exec'd one after the other: ``setpriv`` (the owner's ids),
``prlimit`` (the limits) and ``sh`` (``stock_argv``). Same steps, same exit codes, at
several times the CPU per run (bench/limits.md, "Executor measurements").
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from odin import config

_log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("gate.c")
# Static only: no dynamic loader runs at each start (the cheapest form), and none runs
# as root with the job's environment (LD_PRELOAD and the like mean nothing here).
_FLAGS: tuple[tuple[str, ...], ...] = (("-O2", "-static"),)

GO_LINE = b"go\n"
PLACED_LINE = b"\n"  # to an --early gate: its process is in its run cgroup, start up now


# What the C library reads from the environment of a program it loads and trusts only
# when the program is not privileged (glibc's list for setuid programs, unsecvars.h): a
# library to preload, where to find libraries, locales, message catalogs, its tunables...
# Every gate starts as root with the run's environment (``setpriv``, or the compiled gate:
# a static glibc still reads GLIBC_TUNABLES and the MALLOC_ names of its tunables), so
# these must not reach it as they are.
_LOADER_VARS = frozenset(
    {
        "GCONV_PATH",
        "GETCONF_DIR",
        "GLIBC_TUNABLES",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "LOCPATH",
        "MALLOC_TRACE",
        "NIS_PATH",
        "NLSPATH",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
        "TMPDIR",
        "TZDIR",
    }
)
_LOADER_PREFIXES = ("LD_", "MALLOC_")
_KEPT_PREFIX = "ODIN_GATE_"  # users cannot name ODIN_ variables: no clash (also in gate.c)


def _unsafe_as_root(name: str) -> bool:
    return name.startswith(_LOADER_PREFIXES) or name in _LOADER_VARS


def gate_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment a gate of either form starts with: the run's, with every variable
    the C library would obey in a root process renamed out of its way; the gate, as the
    owner, gives them their names back before it execs the job (``stock_argv``, gate.c)."""
    return {(_KEPT_PREFIX + k if _unsafe_as_root(k) else k): v for k, v in env.items()}


def stock_argv(cwd: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """The stock-tool gate (after setpriv and prlimit): wait for the go line, enter ``cwd``
    as the owner, exec the job.

    It runs as the job's owner, so ``cd`` is checked by the kernel with the owner's
    rights (a workdir the owner may not enter, through any symlink, fails the run
    with sh's message) instead of root's, as a chdir before the switch would be.
    ``sh`` exports PWD and OLDPWD of its own; those the job's environment did not
    set are removed again, and the variables ``gate_env`` renamed get their names
    back, so the job sees exactly the environment it was given.
    """
    extra = " ".join(name for name in ("PWD", "OLDPWD") if name not in env)
    unset = f"unset {extra}; " if extra else ""
    restore = "".join(
        f'export {k}="${_KEPT_PREFIX}{k}"; unset {_KEPT_PREFIX}{k}; '
        for k in sorted(env)
        if _unsafe_as_root(k)
    )
    refuse = 'echo "odin: the job\'s owner may not enter its working directory $0" >&2; exit 112'
    script = (
        f'read _go || exit 111; cd -- "$0" 2>/dev/null || {{ {refuse}; }}; '
        f'umask {config.JOB_UMASK:04o}; {unset}{restore}exec "$@" </dev/null'
    )
    return (config.SH_PATH, "-c", script, cwd)


def argv(
    gate: Path,
    *,
    uid: int,
    gid: int,
    groups: Sequence[int],
    limits: Sequence[int],
    cwd: str,
    command: Sequence[str],
    early: bool = False,
) -> tuple[str, ...]:
    """The gate's command line for one run (``limits``: nofile, nproc, as, core); with
    ``early`` it execs ``command`` at the ``PLACED_LINE`` and ``command`` waits for the go
    line itself."""
    listed = ",".join(str(g) for g in sorted(set(groups))) or "-"
    mark = "--early" if early else "--"
    return (str(gate), str(uid), str(gid), listed, *map(str, limits), cwd, mark, *command)


def compilers() -> list[str]:
    """The host's C compilers for the gate (those of ``config.C_COMPILERS`` present), in order."""
    return [c for c in config.C_COMPILERS if os.access(c, os.X_OK)]


def build(bin_dir: Path) -> Path | None:
    """Compile the gate into ``bin_dir`` (or find it there), or None, with the reason logged.

    Each compiler's gate has its own name (source and compiler digested), so the first
    compiler that builds it is the one used, even where an earlier start had only a later
    one; a compiler that fails is skipped for the next. The gate used is the only one kept.
    """
    source = SOURCE.read_bytes()
    try:
        _private_dir(bin_dir)
        found = compilers()
        if not found:
            _log.info("no C compiler (%s): runs use the stock-tool start gate", config.C_COMPILERS)
            return None
        reasons = []
        for compiler in found:
            digest = hashlib.sha256(source + b"\0" + compiler.encode()).hexdigest()[:16]
            target = bin_dir / f"odin-gate-{digest}"
            reason = None if _trusted(target) else _compile(compiler, target)
            if reason is None:
                _clear_others(bin_dir, target)
                return target
            reasons.append(f"{compiler}: {reason}")
        _log.warning(
            "the start gate did not build (%s): runs use the stock-tool gate", "; ".join(reasons)
        )
        return None
    except OSError as error:
        _log.warning("cannot build the start gate (%s): runs use the stock-tool gate", error)
        return None


def _compile(compiler: str, target: Path) -> str | None:
    """Build ``target`` with ``compiler``: None when built, else why not."""
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
            return None
        reason = done.stderr.decode(errors="replace").strip()[-300:] or f"exit {done.returncode}"
    with contextlib.suppress(OSError):
        partial.unlink()
    return reason


def _clear_others(bin_dir: Path, kept: Path) -> None:
    """Remove the gates of other sources or compilers (and parts a crash left) but ``kept``."""
    for path in [*bin_dir.glob("odin-gate-*"), *bin_dir.glob(".odin-gate-*")]:
        if path != kept:
            with contextlib.suppress(OSError):
                path.unlink()


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
