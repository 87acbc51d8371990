"""The fixed interpreter table and the fresh environment a job starts with.

Interpreters never come from the job's YAML or from the engine's own environment:
``sys.executable`` may be a virtualenv under /root that job users cannot read, and a
PATH lookup would let whoever controls PATH choose what runs. Only the system paths
below are considered.

The environment is built from nothing. The job's own variables may set anything,
``PATH`` included (a job may want its own tools first), except the reserved ``ODIN_*``
names, which always carry the engine's values: the SDKs trust them to find the engine
and to identify the run. Identity variables (HOME, USER, LOGNAME) are also reserved,
so that what a job reads about itself matches the uid it runs as.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from odin import config
from odin.errors import ExecutionError
from odin.jobs.language import Language

PYTHON_CANDIDATES: tuple[str, ...] = (
    "/usr/bin/python3",
    "/usr/local/bin/python3",
    "/bin/python3",
)
NODE_CANDIDATES: tuple[str, ...] = ("/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs")

RESERVED_PREFIX = "ODIN_"
RESERVED_NAMES: frozenset[str] = frozenset({"HOME", "USER", "LOGNAME"})


def _first_executable(candidates: tuple[str, ...], what: str) -> str:
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise ExecutionError(f"{what} is not installed (looked for {', '.join(candidates)})")


def python_path() -> str:
    return _first_executable(PYTHON_CANDIDATES, "python3")


def node_path() -> str:
    return _first_executable(NODE_CANDIDATES, "node")


def command_for(language: Language, code_path: str) -> tuple[str, ...]:
    """The argv that runs the job at ``code_path`` (for Go: the compiled binary).

    Python runs unbuffered (``-u``) so that live output and the order of stdout and
    stderr lines in the merged pipe are what the job wrote.
    """
    if language is Language.PYTHON:
        return (python_path(), "-u", code_path)
    if language is Language.NODE:
        return (node_path(), code_path)
    if language is Language.GO:
        return (code_path,)
    raise ExecutionError(f"unknown language {language!r}: expected one of python, go, node")


def job_env(
    *,
    user: str,
    home: str,
    uid: int,
    extra: Mapping[str, str],
    odin_vars: Mapping[str, str],
    sdk_python_path: str | None,
    sdk_node_path: str | None,
) -> dict[str, str]:
    """The complete environment of a run; nothing is inherited from the engine.

    Precedence, lowest first: the fixed defaults, the SDK paths, the job's ``extra``
    (minus reserved names), then ``odin_vars`` (every key must start with ``ODIN_``).
    A job's own PYTHONPATH/NODE_PATH is kept after the SDK directory, not instead.
    """
    env = {"PATH": config.JOB_PATH, "LANG": "C.UTF-8", "ODIN_UID": str(uid)}
    for name, value in extra.items():
        if not _reserved(name):
            env[name] = value
    _prepend(env, "PYTHONPATH", sdk_python_path)
    _prepend(env, "NODE_PATH", sdk_node_path)
    for name, value in odin_vars.items():
        if not name.startswith(RESERVED_PREFIX):
            raise ExecutionError(f"engine variable {name!r} must start with {RESERVED_PREFIX}")
        env[name] = value
    env.update(HOME=home, USER=user, LOGNAME=user)
    return env


def _reserved(name: str) -> bool:
    return name.startswith(RESERVED_PREFIX) or name in RESERVED_NAMES


def _prepend(env: dict[str, str], name: str, directory: str | None) -> None:
    if directory is None:
        return
    current = env.get(name)
    env[name] = f"{directory}{os.pathsep}{current}" if current else directory
