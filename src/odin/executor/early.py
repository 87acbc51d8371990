"""Python jobs whose interpreter starts up before the instant (the prelude: ``pystart.py``).

A root engine makes each run's process a second ahead and holds it at the start gate.
For a Python job, the gate's ``--early`` form execs the interpreter as soon as the
process is in its run cgroup; the interpreter starts up (most of what a Python job's
start costs, before the first line of any job), runs the prelude, and waits there for
the go line. At the instant only the job's own code is left to run.

The prelude is installed once per engine start where every job user can read it, with
its bytecode made by the jobs' own interpreter, and the command line only loads that
bytecode: compiling it from its text on every run cost more CPU than many jobs do
(bench/limits.md, "Executor measurements").
The Python SDK's files get their bytecode there too, for the same reason (a job user
cannot write it beside the engine's copy, so each import compiled them again).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from odin.errors import ExecutionError
from odin.executor import interpreters
from odin.jobs.language import Language

_log = logging.getLogger(__name__)

PRELUDE = Path(__file__).with_name("pystart.py")
_COMPILE_TIMEOUT_S = 120.0


def install(directory: Path, also: tuple[Path, ...] = (), *, shared: bool = True) -> str | None:
    """Put the prelude in ``directory`` and make the bytecode of it and of every Python
    file under ``also`` with the jobs' interpreter; the prelude's path, or None (with the
    reason logged) where that fails: Python runs then wait at the gate before their exec.
    ``shared`` (a root engine, whose jobs run as other users): the prelude must also be
    readable by every user.
    """
    target = directory / PRELUDE.name
    try:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(directory, 0o755)
        shutil.copyfile(PRELUDE, target)
        os.chmod(target, 0o644)
        python = interpreters.python_path()
        trees = [str(directory), *(str(p) for p in also if p.is_dir())]
        subprocess.run(
            [python, "-I", "-m", "compileall", "-q", *trees],
            env={"PATH": "/usr/bin:/bin"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_COMPILE_TIMEOUT_S,
            check=True,
        )
        for tree in trees:  # readable by every job user, whatever the umask
            for root, dirs, files in os.walk(tree):
                for name in dirs:
                    os.chmod(os.path.join(root, name), 0o755)
                for name in files:
                    os.chmod(os.path.join(root, name), 0o644)
    except (OSError, ExecutionError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", None) or error
        _log.warning("Python jobs start at the gate, not early: %s", detail)
        return None
    if shared and not readable_by_all(target):
        _log.warning(
            "Python jobs start at the gate, not early: %s is not readable by every user "
            "(a folder above it is closed to others)",
            target,
        )
        return None
    return str(target)


def readable_by_all(path: Path) -> bool:
    """Whether any user may read ``path``: it is readable by others, every folder above
    it may be passed through by others."""
    try:
        if not path.stat().st_mode & 0o004:
            return False
        return all(parent.stat().st_mode & 0o001 for parent in path.resolve().parents)
    except OSError:
        return False


def command_for(language: Language, code_path: str, prelude: str | None) -> tuple[str, ...] | None:
    """The job as a program that starts up now and runs ``code_path`` at the go line on
    its stdin, or None where there is no such form (not Python, or no prelude)."""
    if language is not Language.PYTHON or prelude is None:
        return None
    load = (
        "exec(__import__('sys').modules['_frozen_importlib_external']"
        f".SourceFileLoader('__main__', {prelude!r}).get_code('__main__'))"
    )
    return (interpreters.python_path(), "-u", "-c", load, code_path)
