"""What a run is launched with: its program on disk, its owner's identity, its environment.

``SpecBuilder.build`` turns a job and one of its runs into the executor's
``LaunchSpec``: the job's code written once per version where its owner can read it
(a Go job built), the owner looked up, and a fresh environment carrying the
``ODIN_*`` variables its SDK needs, the run's token among them (``SpecBuilder.new_token``).
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from odin.cluster.model import Job, Run
from odin.engine.users import Owners
from odin.executor import early, interpreters
from odin.executor.files import CodeFiles
from odin.executor.spec import LaunchSpec
from odin.jobs.spec import Language

GoBuilder = Callable[[Job], Awaitable[Path]]


@dataclass(frozen=True)
class LaunchContext:
    socket_path: str
    code_root: Path
    sdk_python: str | None
    sdk_node: str | None
    build_go: GoBuilder
    python_start: str | None = None  # the installed prelude (odin.executor.early)


class _Tokens:
    """Run tokens as ``secrets.token_urlsafe(24)`` makes them (24 bytes of ``os.urandom``,
    URL-safe base64), with the random bytes read 4 KiB at a time: one system call per
    170 runs instead of one per run (it showed in the engine's profile)."""

    _SIZE = 24
    _COUNT = 4096 // _SIZE

    def __init__(self) -> None:
        self._pool = b""
        self._next = 0

    def take(self) -> str:
        if self._next >= len(self._pool):
            self._pool, self._next = os.urandom(self._COUNT * self._SIZE), 0
        raw = self._pool[self._next : self._next + self._SIZE]
        self._next += self._SIZE
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class SpecBuilder:
    """Builds the ``LaunchSpec`` of runs on node ``node``, with the engine's ``context``."""

    def __init__(self, context: LaunchContext, node: str, owners: Owners) -> None:
        self.context = context
        self.node = node
        self.owners = owners
        self._code = CodeFiles(context.code_root)
        self._tokens = _Tokens()

    def new_token(self) -> str:
        """A fresh run token: what the run's SDK presents to add records (``engine.records``)."""
        return self._tokens.take()

    async def build(self, job: Job, run: Run, token: str) -> LaunchSpec:
        owner = self.owners.of(job)
        program = await self._program(job, owner.uid, owner.gid)
        env = interpreters.job_env(
            user=owner.user,
            home=owner.home,
            uid=owner.uid,
            extra=job.env,
            odin_vars=self._odin_vars(job, run, token),
            sdk_python_path=self.context.sdk_python,
            sdk_node_path=self.context.sdk_node,
        )
        return LaunchSpec(
            run_id=run.id,
            argv=interpreters.command_for(job.language, program),
            early_argv=early.command_for(job.language, program, self.context.python_start),
            uid=owner.uid,
            gid=owner.gid,
            groups=owner.groups,
            env=env,
            cwd=job.workdir or owner.home,
            timeout_s=job.timeout_s,
        )

    async def _program(self, job: Job, uid: int, gid: int) -> str:
        """The path of the job's program: its code file, or the binary built from it."""
        if job.language == Language.GO:
            return str(await self.context.build_go(job))
        known = self._code.known(job.code_sha, job.filename, uid=uid, job_id=job.id)
        if known is not None:
            return known
        return await asyncio.to_thread(
            self._code.write,
            job.code,
            job.code_sha,
            job.filename,
            uid=uid,
            gid=gid,
            job_id=job.id,
        )

    def _odin_vars(self, job: Job, run: Run, token: str) -> dict[str, str]:
        return {
            "ODIN_SOCKET": self.context.socket_path,
            "ODIN_JOB_ID": job.id,
            "ODIN_JOB_NAME": job.name,
            "ODIN_RUN_ID": run.id,
            "ODIN_RUN_TOKEN": token,
            "ODIN_NODE": self.node,
        }
