"""Spawning runs as their owners, capturing their output, limiting and reaping them.

The engine's entry points:

- ``Runner.run(spec)`` / ``Runner.kill(run_id)`` (or ``execute(spec)`` for one run):
  a ``LaunchSpec`` in, a ``RunOutcome`` out (``runner``, ``spec``);
- ``Reaper().start()`` once at engine start: makes the engine a child subreaper and
  collects orphaned job processes (``reaper``);
- ``command_for`` and ``job_env``: the fixed interpreter table and the fresh
  environment (``interpreters``);
- ``materialize``: the job's code written for its owner only (``files``);
- ``build_go``: a Go job compiled once, offline, as its owner (``gobuild``).
"""

from __future__ import annotations

from odin.executor.files import materialize
from odin.executor.gobuild import build_go
from odin.executor.interpreters import command_for, job_env
from odin.executor.reaper import Reaper, set_child_subreaper
from odin.executor.runner import Runner, execute
from odin.executor.spec import LaunchSpec, RunOutcome

__all__ = [
    "LaunchSpec",
    "Reaper",
    "RunOutcome",
    "Runner",
    "build_go",
    "command_for",
    "execute",
    "job_env",
    "materialize",
    "set_child_subreaper",
]
