"""Spawning runs as their owners, capturing their output, limiting and reaping them.

The engine's entry points:

- ``ExecutorPort`` (``port``): what the engine asks of the executor: ``prepare`` a run
  (a ``LaunchSpec`` in, a ``HeldRun`` out), ``HeldRun.open`` (a ``RunOutcome`` out) or
  ``HeldRun.discard``, and ``kill``; ``Executor`` (``runner``) is the real one, built
  once by the daemon (``Executor.for_host``) and closed when the engine stops;
- ``Reaper(followed=executor.followed).start()`` once at engine start: makes the engine a
  child subreaper and collects orphaned job processes (``reaper``);
- ``command_for`` and ``job_env``: the fixed interpreter table and the fresh
  environment (``interpreters``); ``early_command_for`` and ``install_prelude``: a
  Python job's early form and its prelude (``early``);
- ``CodeFiles``: the job's code written for its owner only (``files``);
- ``build_go``: a Go job compiled once, offline, as its owner (``gobuild``).
"""

from __future__ import annotations

from odin.executor.early import command_for as early_command_for
from odin.executor.early import install as install_prelude
from odin.executor.files import CodeFiles
from odin.executor.gobuild import build_go
from odin.executor.interpreters import command_for, job_env
from odin.executor.port import ExecutorPort, HeldRun, OnOutput, OnStart
from odin.executor.reaper import Reaper
from odin.executor.runner import Executor
from odin.executor.spec import LaunchSpec, RunOutcome
from odin.executor.startpath import StartPath

__all__ = [
    "CodeFiles",
    "Executor",
    "ExecutorPort",
    "HeldRun",
    "LaunchSpec",
    "OnOutput",
    "OnStart",
    "Reaper",
    "RunOutcome",
    "StartPath",
    "build_go",
    "command_for",
    "early_command_for",
    "install_prelude",
    "job_env",
]
