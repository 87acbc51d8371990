"""The executor with real processes and real users: identity, limits, output, timeouts, reaping."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor_kit import Kit
from odin import config
from odin.errors import Conflict, ExecutionError
from odin.executor import gate
from odin.executor import reaper as reaper_module
from odin.executor.alarm import Alarm, first
from odin.executor.capture import OutputCapture
from odin.executor.cgroup import RunCgroup
from odin.executor.interpreters import command_for, job_env
from odin.executor.reaper import Reaper, is_child_subreaper, set_child_subreaper
from odin.executor.spawn import Spawner
from odin.executor.spec import LaunchSpec, RunOutcome
from odin.jobs.language import Language

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root to run jobs as other users")
PY = "/usr/bin/python3"
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "test-users.sh"


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.01)


def gone(pid: int) -> bool:
    """True once ``pid`` is neither running nor a zombie."""
    return not os.path.exists(f"/proc/{pid}")


def is_zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"


@pytest.fixture
def workdir(alice: pwd.struct_passwd) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="odin-exec-"))
    os.chown(path, alice.pw_uid, alice.pw_gid)
    path.chmod(0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def reaper() -> Iterator[Reaper]:
    """A fast reaper; the test process itself becomes the subreaper, like the engine."""
    set_child_subreaper(True)
    yield Reaper(interval_s=0.02)
    set_child_subreaper(False)


@pytest.fixture(scope="module")
def compiled_gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The start gate built from gate.c, as a root engine builds it at start."""
    if not gate.compilers():
        pytest.skip("no C compiler: engines here use the stock-tool gate")
    built = gate.build(tmp_path_factory.mktemp("gate") / "bin")
    assert built is not None, "a C compiler is present but the gate did not build"
    return built


@pytest.fixture
def kit() -> Kit:
    """How the test's executors are built: the stock-tool gate, unless the test says."""
    return Kit()


@pytest.fixture(params=["compiled", "stock"])
def gate_kind(request: pytest.FixtureRequest, kit: Kit) -> str:
    """Run the test with each start gate: the compiled program, and setpriv + prlimit + sh."""
    kind: str = request.param
    kit.gate = request.getfixturevalue("compiled_gate") if kind == "compiled" else None
    return kind


def spec_for(user: pwd.struct_passwd, workdir: Path, code: str, **overrides: object) -> LaunchSpec:
    env = job_env(
        user=user.pw_name,
        home=user.pw_dir,
        uid=user.pw_uid,
        extra={"GREETING": "hi"},
        odin_vars={"ODIN_RUN_ID": "job@1"},
        sdk_python_path=None,
        sdk_node_path=None,
    )
    fields: dict[str, object] = {
        "run_id": "job@1",
        "argv": (PY, "-c", code),
        "uid": user.pw_uid,
        "gid": user.pw_gid,
        "groups": tuple(os.getgrouplist(user.pw_name, user.pw_gid)),
        "env": env,
        "cwd": str(workdir),
        "timeout_s": 20.0,
    }
    fields.update(overrides)
    return LaunchSpec(**fields)  # type: ignore[arg-type]


def run(
    kit: Kit,
    spec: LaunchSpec,
    reaper: Reaper | None = None,
    *,
    settled: Callable[[RunOutcome], bool] | None = None,
    **kwargs: object,
) -> RunOutcome:
    """Run ``spec`` with an executor built from ``kit``; with a reaper, keep reaping until
    ``settled(outcome)`` holds."""

    async def body() -> RunOutcome:
        if reaper is not None:
            reaper.start()
        try:
            outcome = await kit.run(spec, **kwargs)  # type: ignore[arg-type]
            await wait_for(lambda: settled is None or settled(outcome))
            return outcome
        finally:
            if reaper is not None:
                await reaper.stop()

    return asyncio.run(body())


async def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout_s)


IDENTITY = """
import json, os
print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
    "egid": os.getegid(), "groups": sorted(os.getgroups()), "cwd": os.getcwd(),
    "env": dict(os.environ), "pgid": os.getpgrp(), "sid": os.getsid(0)}))
"""


@pytest.mark.slow
@needs_root
def test_runs_as_the_owner_with_a_fresh_env_in_its_cwd(
    alice: pwd.struct_passwd,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    kit: Kit,
    gate_kind: str,
) -> None:
    monkeypatch.setenv("ODIN_ENGINE_SECRET", "leak")
    outcome = run(kit, spec_for(alice, workdir, IDENTITY))
    seen = json.loads(outcome.output)
    odin_gid = grp.getgrnam(config.ODIN_GROUP).gr_gid
    assert outcome.ok and outcome.exit_code == 0 and outcome.signal is None
    assert (seen["uid"], seen["euid"]) == (alice.pw_uid, alice.pw_uid)
    assert (seen["gid"], seen["egid"]) == (alice.pw_gid, alice.pw_gid)
    assert odin_gid in seen["groups"]
    assert seen["groups"] == sorted(set(os.getgrouplist(alice.pw_name, alice.pw_gid)))
    assert seen["cwd"] == str(workdir)
    assert seen["pgid"] == seen["sid"] == outcome.pid
    assert seen["env"] == {
        "PATH": config.JOB_PATH,
        "LANG": "C.UTF-8",
        "HOME": alice.pw_dir,
        "USER": alice.pw_name,
        "LOGNAME": alice.pw_name,
        "GREETING": "hi",
        "ODIN_RUN_ID": "job@1",
        "ODIN_UID": str(alice.pw_uid),
    }


@pytest.mark.slow
@needs_root
def test_resource_limits_are_in_force_inside_the_job(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit, gate_kind: str
) -> None:
    outcome = run(kit, spec_for(alice, workdir, "print(open('/proc/self/limits').read())"))
    limits = {
        line[:26].strip(): line[26:].split()[:2] for line in outcome.output.decode().splitlines()
    }
    assert limits["Max open files"] == [str(config.RLIMIT_NOFILE)] * 2
    assert limits["Max processes"] == [str(config.RLIMIT_NPROC)] * 2
    assert limits["Max address space"] == [str(config.RLIMIT_AS_BYTES)] * 2
    assert limits["Max core file size"] == [str(config.RLIMIT_CORE)] * 2


@pytest.mark.slow
@needs_root
def test_a_job_gets_a_logins_umask_whatever_the_engines(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit, gate_kind: str
) -> None:
    """A root engine runs with umask 077 (its files hold users' data); its jobs must not."""
    before = os.umask(config.ENGINE_UMASK)
    try:
        outcome = run(kit, spec_for(alice, workdir, "import os; print(oct(os.umask(0)))"))
    finally:
        os.umask(before)
    assert outcome.ok, outcome.output
    assert outcome.output.decode().strip() == oct(config.JOB_UMASK)


@pytest.mark.slow
@needs_root
def test_exit_codes_and_signals_are_reported(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit, gate_kind: str
) -> None:
    failed = run(kit, spec_for(alice, workdir, "import sys; sys.exit(3)"))
    assert (failed.exit_code, failed.signal, failed.ok, failed.timed_out) == (3, None, False, False)
    code = "import os, signal; os.kill(os.getpid(), signal.SIGUSR1)"
    killed = run(kit, spec_for(alice, workdir, code))
    assert (killed.exit_code, killed.signal) == (None, signal.SIGUSR1)


@pytest.mark.slow
@needs_root
def test_a_command_that_cannot_start_is_an_execution_error(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit, gate_kind: str
) -> None:
    with pytest.raises(ExecutionError, match="absolute path"):
        run(kit, spec_for(alice, workdir, "", argv=("python3", "-c", "pass")))
    missing = run(kit, spec_for(alice, workdir, "", argv=("/nonexistent/python",)))
    assert missing.exit_code == 127 and b"/nonexistent/python" in missing.output


@pytest.mark.slow
@needs_root
def test_start_is_announced_before_any_output(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit
) -> None:
    events: list[object] = []
    code = "import sys\nfor i in range(50): print(i, flush=True)"
    outcome = run(
        kit,
        spec_for(alice, workdir, code),
        on_start=lambda pid, at: events.append(("start", pid, at)),
        on_output=events.append,
    )
    assert events[0] == ("start", outcome.pid, outcome.started_at)
    assert b"".join(e for e in events[1:] if isinstance(e, bytes)) == outcome.output
    assert outcome.output.split() == [str(i).encode() for i in range(50)]


SPAWN_STUBBORN_FAMILY = """
import os, signal, subprocess, sys, time
child = '''
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import os, time; print('ready', os.getpid(), flush=True); time.sleep(60)"])
print('ready', os.getpid(), flush=True)
time.sleep(60)
'''
subprocess.Popen([sys.executable, "-c", child])
print('ready', os.getpid(), flush=True)
time.sleep(60)
"""


def ready_pids(output: bytes) -> list[int]:
    return [
        int(line.split()[1]) for line in output.decode().splitlines() if line.startswith("ready")
    ]


@pytest.mark.slow
@needs_root
def test_a_timed_out_job_is_killed_with_all_its_children(
    alice: pwd.struct_passwd, workdir: Path, reaper: Reaper, kit: Kit
) -> None:
    seen = bytearray()
    spec = spec_for(alice, workdir, SPAWN_STUBBORN_FAMILY, timeout_s=1.5, grace_s=0.5)
    settled = lambda _: all(gone(pid) for pid in ready_pids(bytes(seen)))  # noqa: E731
    outcome = run(kit, spec, reaper, settled=settled, on_output=seen.extend)
    pids = ready_pids(bytes(seen))
    assert len(pids) == 3, seen  # leader, a child ignoring SIGTERM, a grandchild
    assert outcome.timed_out and outcome.signal == signal.SIGTERM and outcome.exit_code is None
    assert 1.5 <= outcome.duration_s < 1.5 + 0.5 + 1.5


@pytest.mark.slow
@needs_root
def test_a_killed_run_stops_and_says_so(alice: pwd.struct_passwd, workdir: Path, kit: Kit) -> None:
    spec = spec_for(alice, workdir, "import time; time.sleep(60)", grace_s=0.5)

    async def body() -> RunOutcome:
        async with kit.executor() as executor:
            assert not executor.kill(spec.run_id), "killed before it was opened"
            started = asyncio.Event()
            held = await executor.prepare(spec)
            task = asyncio.create_task(held.open(on_start=lambda pid, at: started.set()))
            await asyncio.wait_for(started.wait(), 5)
            twin = await executor.prepare(spec)
            with pytest.raises(Conflict):  # one launch per run id
                await twin.open()
            await twin.discard()
            assert executor.kill(spec.run_id)
            outcome = await asyncio.wait_for(task, 5)
            assert not executor.kill(spec.run_id)
            return outcome

    outcome = asyncio.run(body())
    assert outcome.cancelled and not outcome.timed_out and outcome.signal == signal.SIGTERM


DOUBLE_FORK = """
import os, time
if os.fork() == 0:
    if os.fork() == 0:
        print('ready', os.getpid(), flush=True)
        time.sleep(60)
    os._exit(0)
os.wait()
"""


@pytest.mark.slow
@needs_root
def test_a_job_that_double_forks_leaves_no_survivor_and_no_zombie(
    alice: pwd.struct_passwd, workdir: Path, reaper: Reaper, kit: Kit
) -> None:
    settled = lambda o: all(gone(pid) for pid in ready_pids(o.output))  # noqa: E731
    outcome = run(kit, spec_for(alice, workdir, DOUBLE_FORK), reaper, settled=settled)
    assert len(ready_pids(outcome.output)) == 1  # and it is gone: settled
    assert outcome.ok and not outcome.timed_out
    assert outcome.duration_s < config.OUTPUT_DRAIN_S  # the leftover did not hold the run open


ESCAPE = """
import os, time
if os.fork() == 0:
    os.setsid()
    print('ready', os.getpid(), flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
@needs_root
def test_a_process_that_leaves_the_group_cannot_hold_the_run_open(
    alice: pwd.struct_passwd, workdir: Path, reaper: Reaper, kit: Kit
) -> None:
    """The known limit without cgroups: a setsid() escapee survives, but the run still ends."""
    kit.contained = False
    seen = bytearray()
    outcome = run(kit, spec_for(alice, workdir, ESCAPE), on_output=seen.extend)
    [escapee] = ready_pids(bytes(seen))
    try:
        assert outcome.ok
        assert config.OUTPUT_DRAIN_S <= outcome.duration_s < config.OUTPUT_DRAIN_S + 1.5
    finally:
        os.kill(escapee, signal.SIGKILL)
    asyncio.run(reap_until_gone(reaper, escapee))


async def reap_until_gone(reaper: Reaper, pid: int) -> None:
    reaper.start()
    try:
        await wait_for(lambda: gone(pid))
    finally:
        await reaper.stop()


@pytest.mark.slow
@pytest.mark.parametrize("listed", [True, False], ids=["children-lists", "proc-scan"])
def test_the_reaper_collects_an_orphan_that_exits_later(
    reaper: Reaper, listed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grandchild outlives its parent, is adopted by us and exits on its own (found
    through the threads' lists of children, or by a scan of /proc where there are none)."""
    if listed and not reaper_module._LISTED:
        pytest.skip("this kernel keeps no list of a thread's children")
    monkeypatch.setattr(reaper_module, "_LISTED", listed)
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    print(os.getpid(), flush=True); time.sleep(0.3); os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, start_new_session=True, check=True
    )
    orphan = int(done.stdout)
    asyncio.run(reap_until_gone(reaper, orphan))
    assert is_child_subreaper() and reaper.reaped >= 1


@pytest.mark.slow
def test_the_reaper_leaves_followed_processes_to_their_watcher() -> None:
    """A run's process is reaped through its pidfd: however long it stays a zombie (a busy
    event loop), the reaper does not take its exit status; an unfollowed one it does take."""
    followed = subprocess.Popen(
        [sys.executable, "-c", "raise SystemExit(7)"], start_new_session=True
    )
    other = subprocess.Popen([sys.executable, "-c", "raise SystemExit(8)"], start_new_session=True)
    wait_until(lambda: is_zombie(followed.pid) and is_zombie(other.pid))
    reaper = Reaper(interval_s=0.02, followed={followed.pid})
    taken = sum(reaper.sweep() for _ in range(3))  # a zombie is taken at its second sweep
    assert taken == 1 and gone(other.pid), "the unfollowed zombie was left"
    assert is_zombie(followed.pid), "the followed zombie was reaped by the sweep"
    assert followed.wait() == 7


@pytest.mark.slow
def test_the_reaper_leaves_children_that_others_wait_for(reaper: Reaper) -> None:
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(5)"])
    wait_until(lambda: is_zombie(child.pid))
    reaper.sweep()
    reaper.sweep()  # a zombie in our own process group is never taken
    assert child.wait() == 5
    # In a group of its own it is left alone for a whole interval: its waiter has time.
    other = subprocess.Popen([sys.executable, "-c", "raise SystemExit(6)"], start_new_session=True)
    wait_until(lambda: is_zombie(other.pid))
    assert reaper.sweep() == 0
    assert other.wait() == 6

    async def many() -> list[int | None]:
        reaper.start()
        try:
            procs = [
                await asyncio.create_subprocess_exec(
                    "/bin/sh", "-c", f"exit {n}", start_new_session=True
                )
                for n in range(1, 21)
            ]
            return [await p.wait() for p in procs]
        finally:
            await reaper.stop()

    assert asyncio.run(many()) == list(range(1, 21))


FLOOD = """
import sys
out = sys.stdout.buffer
out.write(b'HEAD')
block = b'x' * 65536
for _ in range(800):
    out.write(block)
out.write(b'TAIL')
"""


@pytest.mark.slow
@needs_root
def test_an_output_flood_is_capped_with_head_and_tail_kept(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit
) -> None:
    total = 8 + 800 * 65536
    chunks = [0]
    tracemalloc.start()
    try:
        outcome = run(
            kit, spec_for(alice, workdir, FLOOD), on_output=lambda c: chunks.append(len(c))
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    cap = config.MAX_OUTPUT_BYTES
    marker = f"\n[odin: {total - cap} bytes dropped]\n".encode()
    assert outcome.ok and outcome.output_bytes == total == sum(chunks)
    assert outcome.dropped_bytes == total - cap
    assert outcome.output.startswith(b"HEADxxx") and outcome.output.endswith(b"xxxTAIL")
    assert (
        outcome.output == b"HEAD" + b"x" * (cap // 2 - 4) + marker + b"x" * (cap // 2 - 4) + b"TAIL"
    )
    assert peak < 8 * config.MIB, f"peak Python memory {peak} bytes"


@given(st.lists(st.binary(max_size=40), max_size=20), st.integers(min_value=0, max_value=64))
def test_capture_keeps_exactly_the_head_and_the_tail(chunks: list[bytes], cap: int) -> None:
    capture = OutputCapture(cap)
    for chunk in chunks:
        capture.feed(chunk)
    data = b"".join(chunks)
    head_cap, tail_cap = cap - cap // 2, cap // 2
    assert capture.total_bytes == len(data)
    if len(data) <= cap:
        assert capture.result() == data and capture.dropped_bytes == 0
    else:
        dropped = len(data) - cap
        tail = data[len(data) - tail_cap :]
        marker = f"\n[odin: {dropped} bytes dropped]\n".encode()
        assert capture.result() == data[:head_cap] + marker + tail
        assert capture.dropped_bytes == dropped


@pytest.mark.slow
@needs_root
def test_interpreter_table_runs_python_and_node_as_the_user(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit
) -> None:
    script = workdir / "job.js"
    script.write_text("console.log(process.getuid(), process.env.HOME)\n")
    os.chown(script, alice.pw_uid, alice.pw_gid)
    outcome = run(kit, spec_for(alice, workdir, "", argv=command_for(Language.NODE, str(script))))
    assert outcome.output.decode().split() == [str(alice.pw_uid), alice.pw_dir]


@pytest.mark.slow
@needs_root
def test_a_held_run_waits_at_its_gate_until_released_or_discarded(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit, gate_kind: str
) -> None:
    marker = workdir / "ran"
    code = f"open({str(marker)!r}, 'w').write('x'); print('T', flush=True)"

    async def body() -> tuple[int, bool, RunOutcome, int]:
        async with kit.executor() as executor:
            held = await executor.prepare(spec_for(alice, workdir, code))
            assert held.process is not None
            pid = held.process.pid
            await asyncio.sleep(0.5)
            waited_unrun = not marker.exists() and not gone(pid)
            outcome = await held.open()
            marker.unlink()
            dropped = await executor.prepare(spec_for(alice, workdir, code))
            assert dropped.process is not None
            dropped_pid = dropped.process.pid
            await dropped.discard()
            await wait_for(lambda: gone(dropped_pid) or is_zombie(dropped_pid))
            return pid, waited_unrun, outcome, dropped_pid

    pid, waited_unrun, outcome, _ = asyncio.run(body())
    assert waited_unrun, "the job's code ran before it was released"
    assert outcome.ok and outcome.pid == pid and b"T" in outcome.output
    assert not marker.exists(), "a discarded run's code ran"


@pytest.mark.slow
@needs_root
def test_a_held_gate_waits_as_a_batch_task_and_its_job_runs_as_any_other(
    alice: pwd.struct_passwd, workdir: Path, compiled_gate: Path, kit: Kit
) -> None:
    """Opening a gate wakes it; as a batch task it does not preempt the engine that opened it
    (the stock-tool gate sets no policy: the fixture skips where no compiler builds the gate)."""
    kit.gate = compiled_gate
    code = "import os; print('policy', os.sched_getscheduler(0), flush=True)"

    async def body() -> tuple[int, RunOutcome]:
        async with kit.executor() as executor:
            held = await executor.prepare(spec_for(alice, workdir, code))
            assert held.process is not None
            pid = held.process.pid
            await wait_for(lambda: os.sched_getscheduler(pid) == os.SCHED_BATCH)
            waiting = os.sched_getscheduler(pid)
            return waiting, await held.open()

    waiting, outcome = asyncio.run(body())
    assert waiting == os.SCHED_BATCH
    assert outcome.ok and f"policy {os.SCHED_OTHER}".encode() in outcome.output


@pytest.mark.slow
@needs_root
@pytest.mark.parametrize("fast_spawn", [True, False], ids=["posix_spawn", "asyncio"])
def test_a_job_inherits_no_descriptor_no_ignored_signal_and_leads_its_session(
    alice: pwd.struct_passwd, workdir: Path, fast_spawn: bool, kit: Kit, gate_kind: str
) -> None:
    """Both ways of starting a run (the C library's posix_spawn without the GIL, and
    asyncio's subprocess where that is missing) give the job the same start."""
    if fast_spawn and Spawner.load() is None:
        pytest.skip("this C library has no posix_spawn_file_actions_addclosefrom_np")
    kit.fast = fast_spawn
    leaked = workdir / "engine-secret"
    leaked.write_text("")
    fd = os.open(leaked, os.O_RDONLY)
    os.set_inheritable(fd, True)  # even a descriptor the engine left inheritable stays behind
    script = (
        "grep -E '^(SigIgn|SigBlk)' /proc/self/status; "
        "for f in /proc/self/fd/*; do readlink $f; done; "
        "ps -o pid=,pgid=,sid= -p $$"
    )
    try:
        outcome = run(kit, spec_for(alice, workdir, "", argv=("/bin/sh", "-c", script)))
    finally:
        os.close(fd)
    text = outcome.output.decode()
    assert outcome.ok, text
    masks = dict(line.split(":\t") for line in text.splitlines() if line.startswith("Sig"))
    ignored, blocked = int(masks["SigIgn"], 16), int(masks["SigBlk"], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1) | 1 << (signal.SIGXFSZ - 1)), text
    assert blocked == 0, text
    assert str(leaked) not in text
    pid, pgid, sid = text.splitlines()[-1].split()
    assert pid == pgid == sid == str(outcome.pid)


@pytest.mark.slow
@needs_root
def test_a_workdir_the_owner_may_not_enter_fails_the_run_at_the_gate(
    alice: pwd.struct_passwd, kit: Kit, gate_kind: str
) -> None:
    closed = Path(tempfile.mkdtemp(prefix="odin-closed-"))  # root's, mode 0700
    try:
        outcome = run(kit, spec_for(alice, closed, "print('ran')"))
    finally:
        closed.rmdir()
    assert outcome.exit_code == 112, outcome.output
    assert b"may not enter its working directory" in outcome.output
    assert b"ran" not in outcome.output


@pytest.mark.slow
@needs_root
def test_a_workdir_that_is_missing_or_closed_to_the_owner_fails_alike(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit, gate_kind: str
) -> None:
    """Under /root, which a member may not enter, a folder that exists and one that does
    not give the same end and message: a run tells its owner nothing of paths they may
    not look at (the engine, as root, used to refuse a missing one with its own error)."""
    existing = Path(tempfile.mkdtemp(prefix="odin-exists-", dir="/root"))
    places = {
        "existing": existing,
        "missing": Path("/root") / f"odin-missing-{existing.name}",
        "alice's missing": workdir / "gone",
    }
    try:
        ends = {
            kind: run(kit, spec_for(alice, workdir, "print('ran')", cwd=str(where)))
            for kind, where in places.items()
        }
    finally:
        existing.rmdir()
    seen = {
        kind: (end.exit_code, end.output.replace(os.fsencode(places[kind]), b"<workdir>"))
        for kind, end in ends.items()
    }
    code, said = seen["existing"]
    assert code == 112 and b"may not enter its working directory" in said, said
    assert seen["missing"] == seen["alice's missing"] == (code, said), seen


@pytest.mark.slow
def test_the_compiled_gate_is_built_once_and_refuses_what_it_cannot_trust(
    compiled_gate: Path,
) -> None:
    again = gate.build(compiled_gate.parent)
    assert again == compiled_gate
    before = compiled_gate.stat()
    assert gate.build(compiled_gate.parent) == compiled_gate
    assert compiled_gate.stat().st_ino == before.st_ino, "an unchanged gate was built again"
    compiled_gate.chmod(0o775)  # someone else could have changed it: build a fresh one
    rebuilt = gate.build(compiled_gate.parent)
    assert rebuilt == compiled_gate and compiled_gate.stat().st_ino != before.st_ino
    assert compiled_gate.stat().st_mode & 0o777 == 0o755
    limits = ["1", "1", "1", "0", "/", "--"]
    for args, said in (
        (["0", "0", "-"], b"usage"),
        (["x", "0", "-", *limits, "/bin/true"], b"bad number"),
        (["0", "0", "-", *limits, "true"], b"usage"),
    ):
        done = subprocess.run([str(compiled_gate), *args], capture_output=True, check=False)
        assert (done.returncode, said in done.stderr) == (120, True), done.stderr
    me = [str(os.geteuid()), str(os.getegid()), "-"]
    unreleased = subprocess.run(
        [str(compiled_gate), *me, "64", "64", str(2**32), "0", "/", "--", "/bin/echo", "ran"],
        input=b"",
        capture_output=True,
        check=False,
    )
    assert (unreleased.returncode, unreleased.stdout, unreleased.stderr) == (111, b"", b"")


@pytest.mark.slow
def test_a_compiler_that_fails_leaves_the_gate_to_the_next_and_each_has_its_own_gate(
    compiled_gate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = tmp_path / "broken-cc"
    calls = tmp_path / "calls"
    failing.write_text(f"#!/bin/sh\necho called >> {calls}\necho 'broken here' >&2\nexit 1\n")
    failing.chmod(0o755)
    working = gate.compilers()[0]
    bin_dir = tmp_path / "bin"
    monkeypatch.setattr(config, "C_COMPILERS", (str(failing), working))
    built = gate.build(bin_dir)
    assert built is not None and calls.read_text() == "called\n"
    done = subprocess.run([str(built), "0", "0", "-"], capture_output=True, check=False)
    assert (done.returncode, b"usage" in done.stderr) == (120, True), done.stderr
    assert gate.build(bin_dir) == built and calls.read_text() == "called\n" * 2
    monkeypatch.setattr(config, "C_COMPILERS", (working, str(failing)))
    assert gate.build(bin_dir) == built, "the same compiler's gate was not found again"
    assert calls.read_text() == "called\n" * 2, "a later compiler ran though the first built it"
    monkeypatch.setattr(config, "C_COMPILERS", (str(failing),))
    assert gate.build(bin_dir) is None, "a failed build was taken for a gate"
    assert sorted(p.name for p in bin_dir.iterdir()) == [built.name], "a partial file was left"
    stale = [bin_dir / "odin-gate-0123456789abcdef", bin_dir / f".{built.name}.12345"]
    for path in stale:
        path.write_bytes(b"an older gate, or a part a crash left")
    monkeypatch.setattr(config, "C_COMPILERS", (working,))
    assert gate.build(bin_dir) == built
    assert sorted(p.name for p in bin_dir.iterdir()) == [built.name], "an old gate was kept"


@pytest.mark.slow
def test_the_gate_is_built_with_musl_where_it_is_installed(compiled_gate: Path) -> None:
    """musl's static gate starts in about half the CPU of glibc's (odin.executor.gate)."""
    if not os.access("/usr/bin/musl-gcc", os.X_OK):
        pytest.skip("musl's compiler is not installed (.ci/run installs musl-tools)")
    assert b"glibc" not in compiled_gate.read_bytes(), "the gate was built with glibc"


@pytest.fixture(params=["musl", "glibc", "stock"])
def each_gate(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    kit: Kit,
) -> str:
    """Run the test with the compiled gate built by each C library's compiler that is
    installed (musl's is preferred, glibc's the fallback), and with the stock-tool gate."""
    kind: str = request.param
    built = None
    if kind != "stock":
        compiler = {"musl": "/usr/bin/musl-gcc", "glibc": "/usr/bin/cc"}[kind]
        if not os.access(compiler, os.X_OK):
            pytest.skip(f"{compiler} is not installed")
        with monkeypatch.context() as patch:
            patch.setattr(config, "C_COMPILERS", (compiler,))
            built = gate.build(tmp_path_factory.mktemp(f"gate-{kind}") / "bin")
        assert built is not None, f"the gate did not build with {compiler}"
    kit.gate = built
    return kind


# Variables the C library obeys (a static glibc too: GLIBC_TUNABLES, the MALLOC_ tunables).
LOADER_ENV = {
    "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0",
    "LD_LIBRARY_PATH": "/nonexistent/lib",
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_PERTURB_": "0",
    "NLSPATH": "/nonexistent/%N",
}


@pytest.mark.slow
@needs_root
def test_the_gate_starts_as_root_without_what_the_c_library_obeys_and_the_job_gets_it(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit, each_gate: str
) -> None:
    """The gate's first steps run as root: GLIBC_TUNABLES and the like are not in its
    environment (seen while it is held, before the go line), yet the job sees them
    exactly as set."""
    base = spec_for(alice, workdir, "import json, os; print(json.dumps(dict(os.environ)))")
    env = {**base.env, **LOADER_ENV, "TMPDIR": str(workdir)}

    async def body() -> tuple[bytes, RunOutcome]:
        async with kit.executor() as executor:
            held = await executor.prepare(dataclasses.replace(base, env=env))
            assert held.process is not None
            started_with = Path(f"/proc/{held.process.pid}/environ").read_bytes()
            return started_with, await held.open()

    started_with, outcome = asyncio.run(body())
    names = {entry.split(b"=", 1)[0].decode() for entry in started_with.split(b"\0") if entry}
    assert not names & {*LOADER_ENV, "TMPDIR"}, f"the gate started as root with {names}"
    assert outcome.ok, outcome.output
    assert json.loads(outcome.output) == env


PRELOAD_C = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void note(void)
{
    FILE *seen = fopen(MARKER, "a");
    if (seen) { fprintf(seen, "%d\n", (int)geteuid()); fclose(seen); }
}
"""


@pytest.mark.slow
@needs_root
def test_a_library_the_job_preloads_is_never_loaded_as_root(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit, gate_kind: str
) -> None:
    """LD_PRELOAD, TMPDIR and the like reach the job as it set them, and nothing before
    the switch to the owner: a program that starts as root must not obey them."""
    compiler = shutil.which("cc") or shutil.which("gcc")  # the C library the system's programs use
    if compiler is None:
        pytest.skip("no C compiler to build the library to preload")
    marker, library, source = workdir / "loaded-as", workdir / "note.so", workdir / "note.c"
    source.write_text(PRELOAD_C)
    cflags = [f'-DMARKER="{marker}"', "-shared", "-fPIC", "-o", str(library), str(source)]
    subprocess.run([compiler, *cflags], check=True)
    library.chmod(0o644)
    spec = spec_for(alice, workdir, "import os; print(sorted(os.environ.items()))")
    env = {**spec.env, "LD_PRELOAD": str(library), "TMPDIR": str(workdir)}
    outcome = run(
        kit, spec_for(alice, workdir, "import os; print(sorted(os.environ.items()))", env=env)
    )
    assert outcome.ok, outcome.output
    assert outcome.output.decode().strip() == str(sorted(env.items()))
    loaded_as = marker.read_text().split()
    assert str(alice.pw_uid) in loaded_as, "the job itself did not load it"
    assert set(loaded_as) == {str(alice.pw_uid)}, f"loaded as uids {loaded_as}"


def test_first_of_several_alarms_wakes_on_any_or_on_time_and_forgets_its_waits() -> None:
    async def body() -> tuple[float, float, float, int]:
        loop = asyncio.get_running_loop()
        exited, cancel = Alarm(), Alarm()
        loop.call_later(0.05, cancel.set)
        began = loop.time()
        await first((exited, cancel), timeout_s=5)
        woke_on_set = loop.time() - began
        began = loop.time()
        await first((exited,), timeout_s=0.05)
        woke_on_time = loop.time() - began
        began = loop.time()
        await first((exited, cancel), timeout_s=None)  # one already set: at once
        at_once = loop.time() - began
        waiting = len(exited._calls)
        return woke_on_set, woke_on_time, at_once, waiting

    woke_on_set, woke_on_time, at_once, waiting = asyncio.run(body())
    assert 0.04 <= woke_on_set < 2 and 0.04 <= woke_on_time < 2 and at_once < 0.04
    assert waiting == 0, "a finished wait left its callback on the alarm"


@pytest.mark.slow
@needs_root
def test_a_start_given_up_midway_runs_nothing_and_leaves_no_cgroup(
    alice: pwd.struct_passwd, workdir: Path, kit: Kit
) -> None:
    marker = workdir / "ran"
    code = f"open({str(marker)!r}, 'w').write('x')"

    async def body() -> tuple[set[Path], set[Path], set[Path], bool] | None:
        async with kit.executor() as executor:
            box = executor.containment
            if box is None:
                return None
            before = set(box.base.iterdir())
            for k in range(30):  # cancelled at different points of the start, some after it
                task = asyncio.ensure_future(executor.prepare(spec_for(alice, workdir, code)))
                await asyncio.sleep(k * 0.0003)
                task.cancel()
                try:
                    held = await task
                except asyncio.CancelledError:
                    continue
                await held.discard()
            with contextlib.suppress(TimeoutError):
                await wait_for(lambda: not set(box.base.iterdir()) - before - box.spares(), 5)
            after = set(box.base.iterdir())
            emptied = all(RunCgroup(path).emptied() for path in after - before)
            return before, after, box.spares(), emptied

    seen = asyncio.run(body())
    if seen is None:
        pytest.skip("no cgroup2 containment on this host")
    before, after, spares, emptied = seen
    left = after - before - spares  # an emptied run cgroup is kept for a later run
    assert not left, f"left behind: {sorted(left)}"
    assert emptied
    time.sleep(0.2)
    assert not marker.exists(), "a given-up start ran the job"
