"""Python runs whose interpreter starts while they are held (odin.executor.early, pystart).

Real processes as a real user behind the compiled gate: the interpreter must start only
once the process is in its run cgroup, the job's code only at the go line, and the job
must see exactly what ``python3 -u job.py`` gives it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from executor_kit import Kit
from odin import config
from odin.executor import Executor, early, gate, nursery
from odin.executor.cgroup import cgroup2_mount
from odin.executor.interpreters import command_for, job_env
from odin.executor.runner import Held
from odin.executor.spawn import Child
from odin.executor.spec import LaunchSpec, RunOutcome
from odin.executor.startpath import StartPath
from odin.jobs.language import Language

ROOT = os.geteuid() == 0
pytestmark = pytest.mark.skipif(not ROOT, reason="needs root to run jobs as other users")

# What the job sees of itself; printed by the job, compared between the two ways to start.
VIEW = '''"""the job's docstring"""
import json, os, sys
print(json.dumps({
    "name": __name__, "file": __file__, "doc": __doc__, "argv": sys.argv,
    "path0": sys.path[0], "globals": sorted(globals()), "cwd": os.getcwd(),
    "stdin": os.readlink("/proc/self/fd/0"), "policy": os.sched_getscheduler(0),
    "loader": type(__loader__).__name__, "spec": __spec__, "cached": __cached__,
    "modules": "odin" in sys.modules or "pystart" in sys.modules,
}), flush=True)
'''

# Imported at the interpreter's start-up (PYTHONPATH comes first): when and where it ran.
STARTUP = """import os, time
unified = [l[3:].strip() for l in open("/proc/self/cgroup") if l.startswith("0::")]
with open(os.environ["STARTUP_LOG"], "a") as log:
    log.write(f"{time.time()} {unified[0] if unified else '-'}\\n")
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not gate.compilers():
        pytest.skip("no C compiler: no compiled gate, so no early start")
    built = gate.build(tmp_path_factory.mktemp("gate") / "bin")
    assert built is not None
    return built


@pytest.fixture(scope="module")
def prelude() -> Iterator[str]:
    """The prelude installed where every user may read it, as in an engine's data dir."""
    sdk = Path(tempfile.mkdtemp(prefix="odin-sdk-"))
    sdk.chmod(0o755)
    installed = early.install(sdk / "start")
    assert installed is not None, "the prelude did not install"
    yield installed
    shutil.rmtree(sdk, ignore_errors=True)


@pytest.fixture
def kit(compiled: Path) -> Kit:
    """Executors with the compiled gate, whose Python runs start early (exec'd: no
    nursery, unless the test asks for ``nursing``)."""
    return Kit(gate=compiled, early_max=config.EARLY_HELD_MAX, nursed_max=0)


@pytest.fixture
def place(alice: pwd.struct_passwd) -> Iterator[Path]:
    """A job directory of alice's, with a start-up hook."""
    path = Path(tempfile.mkdtemp(prefix="odin-early-"))
    (path / "hook").mkdir()
    (path / "hook" / "sitecustomize.py").write_text(STARTUP)
    for item in (path, path / "hook", path / "hook" / "sitecustomize.py"):
        os.chown(item, alice.pw_uid, alice.pw_gid)
    path.chmod(0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_job(place: Path, user: pwd.struct_passwd, code: str, name: str = "job.py") -> Path:
    job = place / name
    job.write_text(code)
    os.chown(job, user.pw_uid, user.pw_gid)
    return job


def spec(
    user: pwd.struct_passwd,
    place: Path,
    job: Path,
    prelude: str | None,
    run_id: str = "job@1",
    timeout_s: float = 20.0,
    extra: dict[str, str] | None = None,
) -> LaunchSpec:
    hook = {"PYTHONPATH": str(place / "hook"), "STARTUP_LOG": str(place / "startup.log")}
    env = job_env(
        user=user.pw_name,
        home=user.pw_dir,
        uid=user.pw_uid,
        extra={**hook, **(extra or {})},
        odin_vars={"ODIN_RUN_ID": run_id},
        sdk_python_path=None,
        sdk_node_path=None,
    )
    return LaunchSpec(
        run_id=run_id,
        argv=command_for(Language.PYTHON, str(job)),
        uid=user.pw_uid,
        gid=user.pw_gid,
        groups=tuple(os.getgrouplist(user.pw_name, user.pw_gid)),
        env=env,
        cwd=str(place),
        timeout_s=timeout_s,
        early_argv=early.command_for(Language.PYTHON, str(job), prelude),
    )


def startups(place: Path) -> list[tuple[float, str]]:
    log = place / "startup.log"
    if not log.exists():
        return []
    return [
        (float(t), rest)
        for t, rest in (line.split(" ", 1) for line in log.read_text().splitlines())
    ]


# Jobs that end badly, each in its own way (None: the file is gone by the go line).
BAD_ENDS: dict[str, str | None] = {
    "raises.py": "def f():\n    raise ValueError('boom')\nf()\n",
    "exits.py": "import sys\nprint('bye', flush=True)\nsys.exit(7)\n",
    "broken.py": "x = (\n",
    "missing.py": None,
}


def ended_badly(
    kit: Kit, user: pwd.struct_passwd, place: Path, prelude: str, way: StartPath
) -> Iterator[tuple[str, Path, RunOutcome, RunOutcome]]:
    """Each of BAD_ENDS run the ``way`` under test (EARLY or NURSED) and plainly."""

    async def both(job: Path) -> tuple[RunOutcome, RunOutcome]:
        async with kit.executor() as executor:
            held = await executor.prepare(spec(user, place, job, prelude))
            assert held.path is way, f"{held.path}, not {way}"
            plain = await executor.prepare(spec(user, place, job, None))
            return await held.open(), await plain.open()

    for name, code in BAD_ENDS.items():
        job = place / name if code is None else write_job(place, user, code, name)
        yield (name, job, *asyncio.run(both(job)))


class Reaped(Protocol):
    @property
    def returncode(self) -> int | None: ...


async def exit_code_of(process: Reaped) -> int | None:
    """Wait (up to 2 s) for a held process that was let go or discarded to be reaped."""
    for _ in range(200):
        if process.returncode is not None:
            break
        await asyncio.sleep(0.01)
    return process.returncode


async def held_for(executor: Executor, s: LaunchSpec, seconds: float) -> tuple[Held, float]:
    held = await executor.prepare(s)
    await asyncio.sleep(seconds)
    return held, time.time()


@pytest.mark.slow
def test_the_interpreter_starts_in_the_run_cgroup_while_held_and_the_job_sees_a_plain_start(
    kit: Kit, alice: pwd.struct_passwd, place: Path, prelude: str
) -> None:
    job = write_job(place, alice, VIEW)

    async def body() -> tuple[Held, Path | None, float, RunOutcome, RunOutcome]:
        async with kit.executor() as executor:
            held, released = await held_for(executor, spec(alice, place, job, prelude), 1.0)
            cgroup = None if held.cgroup is None else held.cgroup.path  # given back after it
            outcome = await held.open()
            plain = await (await executor.prepare(spec(alice, place, job, None))).open()
            return held, cgroup, released, outcome, plain

    cgroup_root = cgroup2_mount()
    held, cgroup, released, outcome, plain = asyncio.run(body())
    assert outcome.ok and plain.ok, (outcome.output, plain.output)
    assert held.path is StartPath.EARLY
    (early_start, where), (plain_start, _) = startups(place)
    assert early_start < released < plain_start, "the interpreter did not start while held"
    if cgroup is not None and cgroup_root is not None:  # it started in the run's cgroup
        assert "/" + str(cgroup.relative_to(cgroup_root)) == where
    early_view = json.loads(outcome.output.decode().splitlines()[-1])
    plain_view = json.loads(plain.output.decode().splitlines()[-1])
    assert early_view == plain_view
    assert early_view["argv"] == [str(job)] and early_view["stdin"] == "/dev/null"
    assert early_view["policy"] == os.SCHED_OTHER and not early_view["modules"]


@pytest.mark.slow
def test_an_error_exit_or_syntax_error_ends_an_early_run_as_it_ends_a_plain_one(
    kit: Kit, alice: pwd.struct_passwd, place: Path, prelude: str
) -> None:
    for name, job, with_prelude, plain in ended_badly(kit, alice, place, prelude, StartPath.EARLY):
        assert with_prelude.exit_code == plain.exit_code != 0, name
        assert with_prelude.output == plain.output, name
        if name == "raises.py":  # the traceback begins in the job's file: no prelude frame
            lines = with_prelude.output.decode().splitlines()
            assert lines[:2] == [
                "Traceback (most recent call last):",
                f'  File "{job}", line 3, in <module>',
            ]


@pytest.mark.slow
def test_a_discarded_early_run_never_runs_the_job(
    kit: Kit, alice: pwd.struct_passwd, place: Path, prelude: str
) -> None:
    marker = place / "ran"
    job = write_job(place, alice, f"open({str(marker)!r}, 'w').write('x')\n")

    async def body() -> int | None:
        async with kit.executor() as executor:
            held, _ = await held_for(executor, spec(alice, place, job, prelude), 0.8)
            assert held.path is StartPath.EARLY and held.process is not None
            process = held.process
            await held.discard()
            return await exit_code_of(process)

    code = asyncio.run(body())
    assert startups(place), "the interpreter did not start while held"
    assert not marker.exists(), "a discarded run's code ran"
    assert code in (111, -9)


@pytest.mark.slow
def test_the_job_file_bytecode_is_cached_and_checked_against_its_source(
    kit: Kit, alice: pwd.struct_passwd, place: Path, prelude: str
) -> None:
    """An edit that keeps the size, within the same second, is still seen: the cache is
    checked by the source's hash, not its time."""
    job = write_job(place, alice, "print('one', flush=True)\n")

    async def run_once() -> RunOutcome:
        return await kit.run(spec(alice, place, job, prelude))

    first = asyncio.run(run_once())
    caches = list((place / "__pycache__").glob("job.*.pyc"))
    assert first.output == b"one\n" and len(caches) == 1
    cache = caches[0]
    assert cache.stat().st_uid == alice.pw_uid
    assert int.from_bytes(cache.read_bytes()[4:8], "little") == 3  # checked hash (PEP 552)
    stamp = job.stat()
    job.write_text("print('two', flush=True)\n")  # same size
    os.utime(job, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # and the same time
    assert asyncio.run(run_once()).output == b"two\n"


@pytest.mark.slow
def test_at_most_the_configured_number_of_held_runs_start_early(
    kit: Kit, alice: pwd.struct_passwd, place: Path, prelude: str
) -> None:
    kit.early_max = 1
    job = write_job(place, alice, "print('ran', flush=True)\n")

    async def body() -> tuple[StartPath, StartPath, StartPath, list[RunOutcome]]:
        async with kit.executor() as executor:
            first = await executor.prepare(spec(alice, place, job, prelude, "job@1"))
            second = await executor.prepare(spec(alice, place, job, prelude, "job@2"))
            outcomes = [await first.open()]
            # the first one's place is free
            third = await executor.prepare(spec(alice, place, job, prelude, "job@3"))
            outcomes += [await second.open(), await third.open()]
            return first.path, second.path, third.path, outcomes

    first, second, third, outcomes = asyncio.run(body())
    assert (first, second, third) == (StartPath.EARLY, StartPath.GATE, StartPath.EARLY)
    assert all(o.ok and o.output == b"ran\n" for o in outcomes)


def test_without_a_prelude_or_for_another_language_there_is_no_early_form(tmp_path: Path) -> None:
    assert early.command_for(Language.PYTHON, "/x/job.py", None) is None
    assert early.command_for(Language.NODE, "/x/job.js", "/p/pystart.py") is None
    argv = early.command_for(Language.PYTHON, "/x/job.py", "/p/it's/pystart.py")
    assert argv is not None and argv[-1] == "/x/job.py"
    assert repr("/p/it's/pystart.py") in argv[3]  # a path with a quote stays one literal


@pytest.mark.slow
def test_a_prelude_that_not_every_user_may_read_is_not_used(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    assert early.install(closed / "start") is None
    assert not early.readable_by_all(closed / "start" / "pystart.py")
    # an engine that is not root runs its jobs as itself: its own folder will do
    assert early.install(closed / "start", shared=False) == str(closed / "start" / "pystart.py")


@pytest.mark.slow
def test_install_compiles_the_prelude_and_the_sdk_for_job_users() -> None:
    base = Path(tempfile.mkdtemp(prefix="odin-sdk-"))
    try:
        base.chmod(0o755)
        sdk = base / "python" / "odin"
        sdk.mkdir(parents=True)
        (sdk / "__init__.py").write_text("X = 1\n")
        installed = early.install(base / "start", (base / "python",))
        assert installed == str(base / "start" / "pystart.py")
        for where in (base / "start", sdk):
            caches = list((where / "__pycache__").glob("*.pyc"))
            assert caches and all(c.stat().st_mode & 0o777 == 0o644 for c in caches)
            assert (where / "__pycache__").stat().st_mode & 0o777 == 0o755
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- Runs forked by their owner's nursery (odin.executor.nursery) ---------------------

# What a run sees of its process, beyond VIEW: who it is, where, and its parent.
WHO = """import json, os
print(json.dumps({
    "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
    "groups": sorted(os.getgroups()), "ppid": os.getppid(),
    "session": os.getsid(0) == os.getpid(), "group": os.getpgrp() == os.getpid(),
    "env": dict(os.environ), "envb": {k.decode(): v.decode() for k, v in os.environb.items()},
    "cgroup": [l[3:].strip() for l in open("/proc/self/cgroup") if l.startswith("0::")],
}), flush=True)
"""


@pytest.fixture
def nursing(kit: Kit) -> None:
    """Runs go through a nursery, as in the engine."""
    kit.nursed_max = 1024


def nurseries(executor: Executor) -> list[nursery.Nursery]:
    assert executor.nurseries is not None
    return list(executor.nurseries._open.values())


@pytest.mark.slow
def test_a_nursed_run_is_the_engines_child_as_its_owner_and_sees_a_plain_start(
    kit: Kit, alice: pwd.struct_passwd, place: Path, prelude: str, nursing: None
) -> None:
    view, who = write_job(place, alice, VIEW), write_job(place, alice, WHO, "who.py")

    async def body() -> tuple[list[Held], list[Path | None], list[RunOutcome], RunOutcome]:
        async with kit.executor() as executor:
            held = [
                await executor.prepare(spec(alice, place, job, prelude, f"job@{n}"))
                for n, job in enumerate((view, who, who))
            ]
            await asyncio.sleep(0.3)
            cgroups = [None if h.cgroup is None else h.cgroup.path for h in held]
            outcomes = [await h.open() for h in held]
            plain = await (await executor.prepare(spec(alice, place, view, None))).open()
            return held, cgroups, outcomes, plain

    held, cgroups, outcomes, plain = asyncio.run(body())
    assert all(o.ok for o in outcomes) and plain.ok, [o.output for o in outcomes]
    assert all(h.path is StartPath.NURSED for h in held)
    assert len(startups(place)) == 2, "one interpreter start for the three nursed runs"
    nursed_view = json.loads(outcomes[0].output.decode().splitlines()[-1])
    assert nursed_view == json.loads(plain.output.decode().splitlines()[-1])
    assert nursed_view["argv"] == [str(view)] and nursed_view["stdin"] == "/dev/null"
    cgroup_root = cgroup2_mount()
    for n, outcome in enumerate(outcomes[1:], start=1):
        seen = json.loads(outcome.output.decode().splitlines()[-1])
        expected = dict(spec(alice, place, who, prelude, f"job@{n}").env)
        assert seen["env"] == expected and seen["envb"] == expected  # its own run id too
        assert seen["ids"] == [alice.pw_uid] * 2 + [alice.pw_gid] * 2
        assert seen["groups"] == sorted(set(os.getgrouplist(alice.pw_name, alice.pw_gid)))
        assert seen["ppid"] == os.getpid() and seen["session"] and seen["group"]
        if cgroups[n] is not None and cgroup_root is not None:  # in its run's cgroup
            assert seen["cgroup"] == ["/" + str(cgroups[n].relative_to(cgroup_root))]


@pytest.mark.slow
def test_an_error_exit_a_timeout_or_a_discard_ends_a_nursed_run_as_a_plain_one(
    kit: Kit, alice: pwd.struct_passwd, place: Path, prelude: str, nursing: None
) -> None:
    for name, _job, nursed, plain in ended_badly(kit, alice, place, prelude, StartPath.NURSED):
        assert nursed.exit_code == plain.exit_code != 0, name
        assert nursed.output == plain.output, name

    marker = place / "ran"
    sleeper = write_job(place, alice, "import time\nprint('up', flush=True)\ntime.sleep(30)\n")
    ran = write_job(place, alice, f"open({str(marker)!r}, 'w').write('x')\n", "marks.py")

    async def timeout_and_discard() -> tuple[RunOutcome, int | None]:
        async with kit.executor() as executor:
            sleeping = await executor.prepare(spec(alice, place, sleeper, prelude, timeout_s=0.5))
            late = await sleeping.open()
            held = await executor.prepare(spec(alice, place, ran, prelude))
            assert held.path is StartPath.NURSED and held.process is not None
            process = held.process
            await held.discard()
            return late, await exit_code_of(process)

    late, code = asyncio.run(timeout_and_discard())
    assert late.timed_out and late.output == b"up\n"
    assert code in (111, -9) and not marker.exists(), "a discarded run's code ran"


@pytest.mark.slow
def test_a_burst_of_runs_is_forked_by_one_nursery_beyond_what_its_socket_holds(
    kit: Kit,
    alice: pwd.struct_passwd,
    place: Path,
    prelude: str,
    nursing: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config, "NURSERY_QUEUE_S", 600.0)  # none may go through the gate
    job = write_job(place, alice, "import os\nprint(os.environ['ODIN_RUN_ID'], flush=True)\n")
    count = 250  # the socket's send buffer holds about a hundred requests: more must wait

    async def body() -> tuple[list[Held], list[RunOutcome]]:
        specs = [spec(alice, place, job, prelude, f"job@{n}") for n in range(count)]
        async with kit.executor() as executor:
            held = list(await asyncio.gather(*(executor.prepare(s) for s in specs)))
            return held, list(await asyncio.gather(*(h.open() for h in held)))

    held, outcomes = asyncio.run(body())
    nursed = sum(h.path is StartPath.NURSED for h in held)
    assert nursed == count, "some runs went through the gate"
    assert [o.output for o in outcomes] == [f"job@{n}\n".encode() for n in range(count)]
    assert len(startups(place)) == 1


@pytest.mark.slow
def test_a_run_still_starts_when_its_nursery_was_killed(
    kit: Kit, alice: pwd.struct_passwd, place: Path, prelude: str, nursing: None
) -> None:
    job = write_job(place, alice, "print('ran', flush=True)\n")

    async def body() -> list[RunOutcome]:
        async with kit.executor() as executor:
            first = await (await executor.prepare(spec(alice, place, job, prelude))).open()
            (found,) = nurseries(executor)
            os.kill(found.process.pid, 9)  # as the owner's own jobs could
            await asyncio.sleep(0.2)
            second = await (await executor.prepare(spec(alice, place, job, prelude))).open()
            third = await (await executor.prepare(spec(alice, place, job, prelude))).open()
            return [first, second, third]

    assert all(o.ok and o.output == b"ran\n" for o in asyncio.run(body()))


@pytest.mark.slow
def test_an_unused_nursery_exits_and_the_next_run_starts_another(
    kit: Kit,
    alice: pwd.struct_passwd,
    place: Path,
    prelude: str,
    nursing: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config, "NURSERY_IDLE_S", 0.5)
    job = write_job(place, alice, "print('ran', flush=True)\n")

    async def body() -> tuple[int | None, int, list[RunOutcome], bool]:
        async with kit.executor() as executor:
            first = await (await executor.prepare(spec(alice, place, job, prelude))).open()
            (found,) = nurseries(executor)
            await asyncio.sleep(1.5)
            left = len(nurseries(executor))
            held = await executor.prepare(spec(alice, place, job, prelude))
            nursed = held.path is StartPath.NURSED
            return found.process.returncode, left, [first, await held.open()], nursed

    code, left, outcomes, nursed = asyncio.run(body())
    assert code == 0 and left == 0, "the unused nursery did not exit"
    assert nursed and all(o.ok and o.output == b"ran\n" for o in outcomes)


@pytest.mark.slow
def test_a_stalled_nursery_is_ended_and_the_run_starts_through_the_gate(
    kit: Kit, alice: pwd.struct_passwd, place: Path, prelude: str, nursing: None
) -> None:
    job = write_job(place, alice, "print('ran', flush=True)\n")

    async def body() -> tuple[Held, RunOutcome, int | None]:
        async with kit.executor() as executor:
            await (await executor.prepare(spec(alice, place, job, prelude))).open()
            (found,) = nurseries(executor)
            os.kill(found.process.pid, signal.SIGSTOP)
            held = await executor.prepare(spec(alice, place, job, prelude))
            outcome = await held.open()
            return held, outcome, await exit_code_of(found.process)

    held, outcome, code = asyncio.run(body())
    assert held.path is StartPath.EARLY, "the run did not fall back to the gate"
    assert outcome.ok and outcome.output == b"ran\n"
    assert code == -signal.SIGKILL, "the stalled nursery was not ended"


@pytest.mark.slow
def test_only_a_child_of_the_engine_running_as_the_owner_is_taken_for_a_run(
    alice: pwd.struct_passwd,
) -> None:
    as_alice = subprocess.Popen(
        [
            config.SETPRIV_PATH,
            f"--reuid={alice.pw_uid}",
            f"--regid={alice.pw_gid}",
            "--clear-groups",
            "sleep",
            "30",
        ]
    )
    as_root = subprocess.Popen(["sleep", "30"])
    try:
        for _ in range(100):  # until setpriv has switched and exec'd
            if nursery._ours(as_alice.pid, alice.pw_uid, ()):
                break
            time.sleep(0.01)
        assert nursery._ours(as_alice.pid, alice.pw_uid, ())
        assert not nursery._ours(as_alice.pid, alice.pw_uid, {as_alice.pid})  # a run already
        claimed = nursery._claim(as_alice.pid, alice.pw_uid, ())
        assert claimed is not None, "the owner's child was not claimed"
        signal.pidfd_send_signal(claimed, signal.SIGKILL)  # the pidfd is that very process
        assert as_alice.wait() == -signal.SIGKILL
        os.close(claimed)
        assert nursery._claim(as_alice.pid, alice.pw_uid, ()) is None  # reaped: gone
        assert not nursery._ours(as_root.pid, alice.pw_uid, ())  # not the owner
        assert not nursery._ours(os.getpid(), alice.pw_uid, ())  # the engine itself
        assert not nursery._ours(1, alice.pw_uid, ())
        assert not nursery._ours(os.getppid(), os.getuid(), ())  # not a child
    finally:
        for process in (as_alice, as_root):
            process.kill()
            process.wait()


def test_runs_share_a_nursery_only_with_the_same_owner_groups_and_environment() -> None:
    def made(uid: int = 1000, run: str = "a@1", **extra: str) -> LaunchSpec:
        env = {"PATH": "/usr/bin", "ODIN_RUN_ID": run, **extra}
        return LaunchSpec(
            run,
            ("/usr/bin/python3", "/j/job.py"),
            uid,
            uid,
            (uid,),
            env,
            "/j",
            None,
            early_argv=("/usr/bin/python3", "-u", "-c", "x", "/j/job.py"),
        )

    assert nursery.Key.of(made()) == nursery.Key.of(made(run="b@2"))
    assert nursery.Key.of(made()) != nursery.Key.of(made(uid=1001))
    assert nursery.Key.of(made()) != nursery.Key.of(made(PYTHONPATH="/x"))
    plain = LaunchSpec("a@1", ("/usr/bin/python3", "/j/job.py"), 0, 0, (), {}, "/j", None)
    assert nursery.Key.of(plain) is None


def as_user(user: pwd.struct_passwd) -> subprocess.Popen[bytes]:
    """A child of this process (the engine here) running ``sleep`` as ``user``."""
    return subprocess.Popen(["sleep", "30"], user=user.pw_uid, group=user.pw_gid, extra_groups=[])


def at_pid(pid: int, user: pwd.struct_passwd) -> subprocess.Popen[bytes] | None:
    """A child running as ``user`` that takes ``pid`` (just freed), as the kernel hands out
    pids again once they wrap; None if another process of the machine took it first."""
    for _ in range(20):
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        child = as_user(user)
        if child.pid == pid:
            return child
        child.kill()
        child.wait()
    return None


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_pid_reused_around_the_pidfd_open_is_never_followed(
    alice: pwd.struct_passwd, when: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run a nursery names dies and is reaped, and its pid goes to another process,
    just before the engine opens its pidfd (bob's: it was checked by pid before the
    pidfd was opened, and the pidfd was his), or just after (alice's: it passes every
    check by pid, but the pidfd is the dead one's). Neither is followed. The window is a
    few microseconds: the reuse is made to fall in it (ns_last_pid) at the pidfd's open."""
    last_pid = Path("/proc/sys/kernel/ns_last_pid")
    if not os.access(last_pid, os.W_OK):
        pytest.skip("this kernel does not let root choose the next pid")
    taker = pwd.getpwnam("odin-bob") if when == "before" else alice
    named = as_user(alice)
    took: list[subprocess.Popen[bytes]] = []
    real_open = os.pidfd_open

    def reuse() -> None:
        named.kill()
        named.wait()
        found = at_pid(named.pid, taker)
        took.extend([found] if found is not None else [])

    def opening(pid: int, flags: int = 0) -> int:
        if pid != named.pid or named.returncode is not None:
            return real_open(pid, flags)
        if when == "before":
            reuse()
        fd = real_open(pid, flags)
        if when == "after":
            reuse()
        return fd

    monkeypatch.setattr(os, "pidfd_open", opening)
    claimed = None
    try:
        claimed = nursery._claim(named.pid, alice.pw_uid, ())
        assert took, "another process took the freed pid first: not reproduced, run again"
        assert claimed is None, f"pid {named.pid} was followed: not the process checked"
    finally:
        for process in (named, *took):
            process.kill()
            process.wait()
        if claimed is not None:
            os.close(claimed)


@pytest.mark.slow
@pytest.mark.parametrize("way", ["nursed", "early"])
def test_a_python_run_in_a_workdir_missing_or_closed_to_its_owner_fails_alike(
    kit: Kit,
    alice: pwd.struct_passwd,
    place: Path,
    prelude: str,
    nursing: None,
    way: str,
) -> None:
    """Forked by the nursery or exec'd early, a run under /root (closed to a member) ends
    the same whether its workdir exists: exit 112, one message, as at the gate."""
    if way == "early":
        kit.nursed_max = 0
    job = write_job(place, alice, "print('ran', flush=True)\n")
    existing = Path(tempfile.mkdtemp(prefix="odin-exists-", dir="/root"))
    places = {"existing": existing, "missing": Path("/root") / f"odin-missing-{existing.name}"}

    async def body() -> dict[str, tuple[bool, int | None, bytes]]:
        ends = {}
        async with kit.executor() as executor:
            for kind, where in places.items():
                launch = dataclasses.replace(spec(alice, place, job, prelude), cwd=str(where))
                held = await executor.prepare(launch)
                end = await held.open()
                said = end.output.replace(os.fsencode(where), b"<workdir>")
                ends[kind] = (held.path is StartPath[way.upper()], end.exit_code, said)
        return ends

    try:
        ends = asyncio.run(body())
    finally:
        existing.rmdir()
    ways, code, said = ends["existing"]
    assert ways and code == 112 and b"may not enter its working directory" in said, ends
    assert ends["missing"] == ends["existing"], ends


# Variables the C library obeys, a static glibc's included (GLIBC_TUNABLES, MALLOC_...).
LOADER_ENV = {
    "GLIBC_TUNABLES": "glibc.malloc.arena_max=2",
    "LD_LIBRARY_PATH": "/nonexistent/lib",
    "MALLOC_ARENA_MAX": "2",
    "TMPDIR": "/tmp",
}


@pytest.mark.slow
@pytest.mark.parametrize("way", ["nursed", "early"])
def test_a_python_run_sees_what_the_c_library_obeys_exactly_as_set(
    kit: Kit,
    alice: pwd.struct_passwd,
    place: Path,
    prelude: str,
    nursing: None,
    way: str,
) -> None:
    """The gate starts without them (renamed) and gives them back as the owner, before
    it execs the interpreter (early) or the nursery (forked runs take theirs from it)."""
    if way == "early":
        kit.nursed_max = 0
    job = write_job(place, alice, "import json, os\nprint(json.dumps(dict(os.environ)))\n")
    launch = spec(alice, place, job, prelude, extra=LOADER_ENV)

    async def body() -> tuple[bool, RunOutcome]:
        async with kit.executor() as executor:
            held = await executor.prepare(launch)
            return held.path is StartPath[way.upper()], await held.open()

    ways, outcome = asyncio.run(body())
    assert ways and outcome.ok, outcome.output
    assert json.loads(outcome.output) == dict(launch.env)


@pytest.mark.slow
def test_one_users_many_environments_end_only_their_own_nurseries(
    kit: Kit,
    alice: pwd.struct_passwd,
    place: Path,
    prelude: str,
    nursing: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alice's runs with more distinct environments than she may have nurseries end her
    least recently used ones, never take bob's place: his run is still forked by his own
    (with the host's room just enough for her share and his)."""
    monkeypatch.setattr(config, "NURSERY_MAX", config.NURSERY_USER_MAX + 1)
    bob = pwd.getpwnam("odin-bob")
    bobs = Path(tempfile.mkdtemp(prefix="odin-early-bob-"))
    os.chown(bobs, bob.pw_uid, bob.pw_gid)
    bobs.chmod(0o700)
    job = write_job(place, alice, "print('ran', flush=True)\n")
    bobs_job = write_job(bobs, bob, "print('ran', flush=True)\n")
    flavours = config.NURSERY_USER_MAX + 3

    async def one(executor: Executor, launch: LaunchSpec) -> tuple[bool, RunOutcome]:
        held = await executor.prepare(launch)
        return held.path is StartPath.NURSED, await held.open()

    async def body() -> tuple[list[bool], list[int], bool, list[RunOutcome], list[int | None]]:
        nursed: list[bool] = []
        hers: list[int] = []
        outcomes: list[RunOutcome] = []
        made: set[Child] = set()
        async with kit.executor() as executor:
            for n in range(flavours):
                flavour = {"FLAVOUR": str(n)}
                launch = spec(alice, place, job, prelude, f"a@{n}", extra=flavour)
                was, outcome = await one(executor, launch)
                nursed.append(was)
                outcomes.append(outcome)
                hers.append(sum(found.key.uid == alice.pw_uid for found in nurseries(executor)))
                made.update(found.process for found in nurseries(executor))
            his, outcome = await one(executor, spec(bob, bobs, bobs_job, prelude, "b@1"))
            still = {f.process for f in nurseries(executor)}
            ended = [process for process in made if process not in still]
            await asyncio.sleep(0.5)  # the ended ones are killed and reaped meanwhile
            return nursed, hers, his, [*outcomes, outcome], [p.returncode for p in ended]

    try:
        nursed, hers, his, outcomes, ended = asyncio.run(body())
    finally:
        shutil.rmtree(bobs, ignore_errors=True)
    assert all(o.ok and o.output == b"ran\n" for o in outcomes), [o.output for o in outcomes]
    assert all(nursed), f"alice's runs nursed: {nursed}"
    assert max(hers) == config.NURSERY_USER_MAX, f"alice's nurseries after each run: {hers}"
    assert his, "bob's run went through the gate: alice's nurseries took his place"
    assert len(ended) == flavours - config.NURSERY_USER_MAX, f"ended nurseries: {ended}"
    assert None not in ended, f"an ended nursery is still alive: {ended}"
