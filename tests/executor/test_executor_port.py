"""The executor's port: the start-path table, the real executor and the in-memory fake
both filling the ``ExecutorPort``, the fake's behaviour, and no state in executor modules."""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import itertools
import os
import pkgutil
import re
from collections import deque
from concurrent.futures import Executor as ThreadPool
from enum import Enum
from pathlib import Path

import pytest

import odin.executor
from fake_executor import FakeExecutor, FakeHeld, Script
from odin.errors import Conflict, ExecutionError
from odin.executor import Executor, ExecutorPort, HeldRun, LaunchSpec, RunOutcome
from odin.executor.runner import Held
from odin.executor.startpath import StartPath, start_path

FACTS = ("root", "compiled_gate", "python", "nursery", "early")


def table() -> list[tuple[dict[str, bool | None], StartPath]]:
    """The rows of the table in ``start_path``'s docstring: facts (None: any) and path."""
    rows = []
    for line in (start_path.__doc__ or "").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != len(FACTS) + 1 or cells[0] not in ("yes", "no"):
            continue
        facts = {
            name: None if cell == "any" else cell == "yes"
            for name, cell in zip(FACTS, cells, strict=False)
        }
        rows.append((facts, StartPath[cells[-1]]))
    return rows


ROWS = table()


def test_the_table_has_its_six_rows_and_names_each_path() -> None:
    assert len(ROWS) == 6
    assert {path for _, path in ROWS} == set(StartPath)


@pytest.mark.parametrize(
    ("facts", "path"), ROWS, ids=[f"row{n}-{path.name}" for n, (_, path) in enumerate(ROWS)]
)
def test_each_row_of_the_table_is_what_start_path_decides(
    facts: dict[str, bool | None], path: StartPath
) -> None:
    free = [name for name, value in facts.items() if value is None]
    for values in itertools.product((False, True), repeat=len(free)):
        case = {name: bool(value) for name, value in facts.items() if value is not None}
        case.update(zip(free, values, strict=True))
        assert start_path(**case) is path, case


def test_every_case_is_in_exactly_one_row() -> None:
    for values in itertools.product((False, True), repeat=len(FACTS)):
        case = dict(zip(FACTS, values, strict=True))
        matching = [
            path
            for facts, path in ROWS
            if all(want is None or want == case[name] for name, want in facts.items())
        ]
        assert len(matching) == 1, (case, matching)


SPEC = LaunchSpec("job@1", ("/bin/true",), os.geteuid(), os.getegid(), (), {}, "/", None)


def plain_executor() -> Executor:
    """A real executor holding nothing that needs closing (no spawner threads, no cgroups)."""
    return Executor(
        uid=os.geteuid(), gate=None, containment=None, spawner=None, early_max=0, nursed_max=0
    )


def test_the_real_executor_and_the_fake_both_fill_the_port() -> None:
    real, fake = plain_executor(), FakeExecutor()
    ports: list[ExecutorPort] = [real, fake]  # a typed assignment: mypy checks the shapes
    held: list[HeldRun] = [Held(real, SPEC), FakeHeld(fake, SPEC, Script(), 1)]
    assert all(isinstance(port, ExecutorPort) for port in ports)
    assert all(isinstance(run, HeldRun) for run in held)


def test_the_fake_plays_its_script_and_records_each_call() -> None:
    fake = FakeExecutor(
        script=lambda spec: Script(
            chunks=(b"a", b"b"), exit_code=3, until_killed=spec.run_id == "slow@1"
        )
    )
    seen: list[object] = []

    async def body() -> tuple[RunOutcome, RunOutcome]:
        quick = await fake.prepare(SPEC)
        slow = await fake.prepare(LaunchSpec("slow@1", ("/bin/true",), 0, 0, (), {}, "/", None))
        dropped = await fake.prepare(LaunchSpec("gone@1", ("/bin/true",), 0, 0, (), {}, "/", None))
        await dropped.discard()
        ended = await quick.open(
            on_start=lambda pid, at: seen.append(("start", pid)), on_output=seen.append
        )
        going = asyncio.ensure_future(slow.open())
        await asyncio.sleep(0)
        assert fake.kill("slow@1") and not fake.kill("nobody@1")
        return ended, await going

    ended, killed = asyncio.run(body())
    assert seen == [("start", ended.pid), b"a", b"b"]
    assert (ended.exit_code, ended.output, ended.cancelled) == (3, b"ab", False)
    assert killed.cancelled and killed.signal == 15 and killed.exit_code is None
    assert [s.run_id for s in fake.prepared] == ["job@1", "slow@1", "gone@1"]
    assert (fake.opened, fake.discarded) == (["job@1", "slow@1"], ["gone@1"])
    assert fake.killed == ["slow@1", "nobody@1"]


def test_the_fake_refuses_as_the_real_one_does() -> None:
    async def body() -> None:
        refused = FakeExecutor(script=Script(refused="cannot start"))
        with pytest.raises(ExecutionError, match="cannot start"):
            await refused.prepare(SPEC)
        fake = FakeExecutor(script=Script(until_killed=True))
        first, twin = await fake.prepare(SPEC), await fake.prepare(SPEC)
        going = asyncio.ensure_future(first.open())
        await asyncio.sleep(0)
        with pytest.raises(Conflict):  # one launch per run id at a time
            await twin.open()
        fake.kill(SPEC.run_id)
        await going
        with pytest.raises(ExecutionError, match="already used"):
            await first.open()

    asyncio.run(body())


MUTABLE = (list, dict, set, bytearray, deque, ThreadPool, ctypes.CDLL)


def mutable(value: object) -> bool:
    """A container, a thread pool, a library handle, or an object of Odin's own (not an enum)."""
    ours = type(value).__module__.startswith("odin.") and not isinstance(value, Enum)
    return isinstance(value, MUTABLE) or (ours and not isinstance(value, type))


def test_no_executor_module_holds_mutable_state() -> None:
    """Constants, loggers and immutable tables only: what changes lives in an ``Executor``."""
    found = []
    for info in pkgutil.iter_modules(odin.executor.__path__, "odin.executor."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if not re.fullmatch(r"__\w+__", name) and mutable(value):
                found.append(f"{info.name}.{name}")
        source = Path(module.__file__ or "").read_text()
        if re.search(r"^\s+global\s", source, re.MULTILINE):
            found.append(f"{info.name}: a global statement")
    assert not found, found
