"""The three job SDKs (Python, Go, Node), each driven for real against a fake engine.

One job program per language takes a scenario name; every test runs the same
scenario in each language and checks what reached the engine (or stderr), the
job's output and its exit status. The fake engine is a real HTTP server on a
Unix socket (``sdk_fake_engine``); the real engine is tested end to end elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sdk_fake_engine import Behaviour, FakeEngine, JobRun, clean_env, run_job, wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk"
GO_MODULE = "github.com/theycallmemac/odin/odin-libraries/go/odinlib"
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
# A call on a slow engine may block ~0.5 s and the exit flush ~0.5 s; the rest is start-up.
SLOW_ENGINE_BUDGET_S = 2.5


@dataclass(frozen=True)
class Language:
    """How to run the scenario job of one language in a given directory."""

    name: str
    command: Callable[[Path], list[str]]
    env: dict[str, str]
    source_name: str
    source: str

    def prepare(self, job_dir: Path) -> None:
        if self.source_name:
            (job_dir / self.source_name).write_text(self.source)

    def run(self, job_dir: Path, *args: str, env: dict[str, str] | None = None) -> JobRun:
        self.prepare(job_dir)
        return run_job(
            [*self.command(job_dir), *args], cwd=job_dir, env={**self.env, **(env or {})}
        )

    def start(self, job_dir: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        self.prepare(job_dir)
        return subprocess.Popen(
            [*self.command(job_dir), *args],
            cwd=job_dir,
            env=clean_env({**self.env, **env}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture(scope="session")
def go_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go scenario job, built once against sdk/go/odinlib through a replace, offline."""
    if shutil.which("go") is None:
        pytest.skip("go is not installed (CI installs golang-go)")
    build_dir = tmp_path_factory.mktemp("gojob")
    (build_dir / "main.go").write_text(GO_JOB)
    (build_dir / "go.mod").write_text(
        f"module odinjob\n\ngo 1.19\n\nrequire {GO_MODULE} v0.0.0\n\n"
        f"replace {GO_MODULE} => {SDK / 'go' / 'odinlib'}\n"
    )
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "CGO_ENABLED": "0"}
    subprocess.run(["go", "build", "-o", "job", "."], cwd=build_dir, env=env, check=True)
    return build_dir / "job"


@pytest.fixture(params=["python", "go", "node"])
def lang(request: pytest.FixtureRequest) -> Language:
    if request.param == "python":
        return Language(
            "python",
            lambda d: [SYSTEM_PYTHON, str(d / "job.py")],
            {"PYTHONPATH": str(SDK / "python")},
            "job.py",
            PYTHON_JOB,
        )
    if request.param == "go":
        binary: Path = request.getfixturevalue("go_job")
        return Language("go", lambda d: [str(binary)], {}, "", "")
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    return Language(
        "node",
        lambda d: ["node", str(d / "job.js")],
        {"NODE_PATH": str(SDK / "node")},
        "job.js",
        NODE_JOB,
    )


def write_config(job_dir: Path, job_id: str = "id-from-file", name: str = "name from file") -> None:
    (job_dir / "job.yml").write_text(
        f'provider:\n  name: "odin"\njob:\n  id: {job_id}  # set by deploy\n  name: "{name}"\n'
        '  language: python\n  schedule: "never"\n'
    )


def summary(records: list[dict[str, object]]) -> list[tuple[object, object, object]]:
    return [(r["type"], r["desc"], r["value"]) for r in records]


def basic_records(url: str, status: int) -> list[tuple[object, object, object]]:
    details = {"length": len(url), "tags": ["a", "b"], "ok": True, "none": None, "pi": 3.5}
    taken = url != ""
    return [
        ("watch", "url fetched", url),
        ("watch", "details", details),
        ("condition", "url not empty", taken),
        ("watch", "branch", "taken" if taken else "skipped"),
        ("result", "done", status),
    ]


def test_records_reach_the_engine_in_order(lang: Language, tmp_path: Path) -> None:
    write_config(tmp_path)
    with FakeEngine() as engine:
        before = time.time()
        run = lang.run(tmp_path, "basic", "http://localhost/page", "0", env=engine.env())
        after = time.time()
    assert run.returncode == 0, run.stderr
    assert "JOB job-from-env|name from env" in run.stdout  # the engine's identity wins
    assert "BRANCH taken" in run.stdout
    assert summary(engine.records) == basic_records("http://localhost/page", 0)
    assert [r["seq"] for r in engine.records] == [1, 2, 3, 4, 5]
    assert all(before <= float(str(r["ts"])) <= after for r in engine.records)
    assert run.stderr == ""


def test_a_false_condition_drives_the_branch_and_result_1_fails(
    lang: Language, tmp_path: Path
) -> None:
    with FakeEngine() as engine:  # no job.yml at all: not fatal inside a run
        run = lang.run(tmp_path, "basic", "", "1", env=engine.env())
    assert run.returncode == 1, run.stderr
    assert "BRANCH skipped" in run.stdout
    assert summary(engine.records) == basic_records("", 1)


def test_outside_odin_records_go_to_stderr(lang: Language, tmp_path: Path) -> None:
    write_config(tmp_path, "a37b187f5930", "report")
    run = lang.run(tmp_path, "basic", "http://localhost/", "0")
    assert run.returncode == 0, run.stderr
    assert "JOB a37b187f5930|report" in run.stdout
    assert summary(run.stderr_records()) == basic_records("http://localhost/", 0)
    assert [r["seq"] for r in run.stderr_records()] == [1, 2, 3, 4, 5]


def test_outside_odin_a_missing_config_is_a_clear_error(lang: Language, tmp_path: Path) -> None:
    run = lang.run(tmp_path, "basic", "x", "0")
    assert run.returncode != 0
    assert "job.yml" in run.stderr
    assert "JOB" not in run.stdout


def test_a_slow_engine_does_not_hold_the_job(lang: Language, tmp_path: Path) -> None:
    with FakeEngine(behaviour=Behaviour(delay_s=5.0)) as engine:
        run = lang.run(tmp_path, "basic", "http://localhost/", "1", env=engine.env())
    assert run.returncode == 1
    assert run.elapsed_s < SLOW_ENGINE_BUDGET_S, run.elapsed_s
    assert "did not take 5 record(s)" in run.stderr  # and they are printed, not lost
    assert summary(run.stderr_records()) == basic_records("http://localhost/", 1)


def test_records_wait_for_an_engine_that_comes_back(lang: Language, tmp_path: Path) -> None:
    engine = FakeEngine()  # not started yet: the socket does not exist
    go_on = tmp_path / "go-on"
    job = lang.start(tmp_path, "wait", str(go_on), env=engine.env())
    try:
        assert job.stdout is not None
        wait_until(lambda: "WAITING" in job.stdout.readline(), timeout=10)  # type: ignore[union-attr]
        engine.start()
        go_on.touch()
        _, err = job.communicate(timeout=10)
    finally:
        job.kill()
        engine.stop()
    assert job.returncode == 0, err
    assert summary(engine.records) == [
        ("watch", "before", 1),
        ("watch", "after", 2),
        ("result", "done", 0),
    ]


def test_an_engine_that_is_gone_costs_nothing_but_a_warning(lang: Language, tmp_path: Path) -> None:
    engine = FakeEngine()  # never started
    run = lang.run(tmp_path, "basic", "http://localhost/", "0", env=engine.env())
    engine.stop()
    assert run.returncode == 0
    assert run.elapsed_s < SLOW_ENGINE_BUDGET_S
    assert "did not take 5 record(s)" in run.stderr
    assert summary(run.stderr_records()) == basic_records("http://localhost/", 0)


def test_a_refusal_is_reported_once_and_not_retried(lang: Language, tmp_path: Path) -> None:
    with FakeEngine() as engine:
        run = lang.run(
            tmp_path, "basic", "http://localhost/", "0", env=engine.env(ODIN_RUN_TOKEN="forged")
        )
    assert run.returncode == 0
    assert run.stderr.count("refused") == 1, run.stderr
    assert "PermissionDenied" in run.stderr
    assert engine.request_count == 1
    assert engine.records == []
    assert len(run.stderr_records()) == 5


def test_a_server_error_is_retried_without_duplicates(lang: Language, tmp_path: Path) -> None:
    with FakeEngine(behaviour=Behaviour(fail_first=1)) as engine:
        run = lang.run(tmp_path, "basic", "http://localhost/", "0", env=engine.env())
    assert run.returncode == 0, run.stderr
    assert summary(engine.records) == basic_records("http://localhost/", 0)
    assert sorted(int(str(r["seq"])) for r in engine.captured.arrivals) == [1, 2, 3, 4, 5]


def test_a_record_past_the_size_bound_is_refused_by_the_sdk(lang: Language, tmp_path: Path) -> None:
    with FakeEngine() as engine:
        run = lang.run(tmp_path, "big", env=engine.env())
    assert run.returncode == 0, run.stderr
    assert "LIMIT" in run.stdout and "MAX_RECORD_BYTES (65536)" in run.stdout
    assert [(r["seq"], r["desc"]) for r in engine.records] == [(1, "fits"), (2, "done")]


def test_records_past_the_count_bound(lang: Language, tmp_path: Path) -> None:
    with FakeEngine() as engine:
        run = lang.run(tmp_path, "many", env=engine.env())
    assert run.returncode == 3, run.stderr  # result still exits with its status
    assert "LIMIT" in run.stdout and "MAX_RECORDS_PER_RUN (1000)" in run.stdout
    assert "COND true" in run.stdout  # condition still answers
    assert len(engine.records) == 1000
    assert [r["value"] for r in engine.records] == list(range(1000))
    assert run.stderr.count("dropped") == 2, run.stderr  # the condition and the result


def test_values_json_cannot_hold_are_recorded_as_strings(lang: Language, tmp_path: Path) -> None:
    with FakeEngine() as engine:
        run = lang.run(tmp_path, "nonjson", env=engine.env())
    assert run.returncode == 0, run.stderr
    assert summary(engine.records)[0] == ("watch", "odd", "odd-value")


def test_records_are_delivered_when_the_job_just_ends(lang: Language, tmp_path: Path) -> None:
    with FakeEngine() as engine:
        run = lang.run(tmp_path, "natural", env=engine.env())
    assert run.returncode == 0, run.stderr
    assert summary(engine.records) == [("watch", "only", 1)]


PYTHON_JOB = r"""
import os
import sys
import time

import pyodin

odin = pyodin.Odin(config="job.yml")
print(f"JOB {odin.job_id}|{odin.job_name}", flush=True)


class Odd:
    def __str__(self):
        return "odd-value"


def basic(url, status):
    odin.watch("url fetched", url)
    odin.watch("details", {"length": len(url), "tags": ["a", "b"], "ok": True, "none": None, "pi": 3.5})
    if odin.condition("url not empty", url != ""):
        odin.watch("branch", "taken")
        print("BRANCH taken", flush=True)
    else:
        odin.watch("branch", "skipped")
        print("BRANCH skipped", flush=True)
    try:
        odin.result("done", int(status))
    finally:
        print("FINALLY", flush=True)


def limits_size():
    try:
        odin.watch("too big", "x" * 70000)
    except pyodin.OdinLimitError as exc:
        print("LIMIT", exc, flush=True)
    odin.watch("fits", "x" * 60000)
    odin.result("done", 0)


def limits_count():
    for i in range(pyodin.MAX_RECORDS_PER_RUN):
        odin.watch("n", i)
    try:
        odin.watch("one too many", 0)
    except pyodin.OdinLimitError as exc:
        print("LIMIT", exc, flush=True)
    print("COND", str(odin.condition("still answers", True)).lower(), flush=True)
    odin.result("done", 3)


def wait_for(path):
    odin.watch("before", 1)
    print("WAITING", flush=True)
    deadline = time.monotonic() + 10
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    odin.watch("after", 2)
    odin.result("done", 0)


scenario, args = sys.argv[1], sys.argv[2:]
if scenario == "basic":
    basic(*args)
elif scenario == "nonjson":
    odin.watch("odd", Odd())
    odin.result("done", 0)
elif scenario == "big":
    limits_size()
elif scenario == "many":
    limits_count()
elif scenario == "wait":
    wait_for(args[0])
elif scenario == "natural":
    odin.watch("only", 1)
"""

NODE_JOB = r"""
const fs = require('fs');
const odinlib = require('odin');

const odin = odinlib({ config: 'job.yml' });
console.log(`JOB ${odin.jobId}|${odin.jobName}`);
const [scenario, ...args] = process.argv.slice(2);

function basic(url, status) {
  odin.watch('url fetched', url);
  odin.watch('details', { length: url.length, tags: ['a', 'b'], ok: true, none: null, pi: 3.5 });
  if (odin.condition('url not empty', url !== '')) {
    odin.watch('branch', 'taken');
    console.log('BRANCH taken');
  } else {
    odin.watch('branch', 'skipped');
    console.log('BRANCH skipped');
  }
  odin.result('done', Number(status));
}

function catchLimit(fn) {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof odinlib.OdinLimitError)) throw err;
    console.log('LIMIT', err.message);
  }
}

function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const scenarios = {
  basic: () => basic(args[0], args[1]),
  nonjson: () => {
    odin.watch('odd', { big: 10n, toString: () => 'odd-value' });
    odin.result('done', 0);
  },
  big: () => {
    catchLimit(() => odin.watch('too big', 'x'.repeat(70000)));
    odin.watch('fits', 'x'.repeat(60000));
    odin.result('done', 0);
  },
  many: () => {
    for (let i = 0; i < odinlib.MAX_RECORDS_PER_RUN; i++) odin.watch('n', i);
    catchLimit(() => odin.watch('one too many', 0));
    console.log('COND', odin.condition('still answers', true));
    odin.result('done', 3);
  },
  wait: () => {
    odin.watch('before', 1);
    console.log('WAITING');
    const deadline = Date.now() + 10000;
    const poll = () => {
      if (!fs.existsSync(args[0]) && Date.now() < deadline) return setTimeout(poll, 10);
      odin.watch('after', 2);
      odin.result('done', 0);
    };
    poll();
  },
  natural: () => odin.watch('only', 1),
};
scenarios[scenario]();
"""

GO_JOB = r"""
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/theycallmemac/odin/odin-libraries/go/odinlib"
)

type odd struct{ C chan int }

func (odd) String() string { return "odd-value" }

func main() {
	odin, err := odinlib.Setup("job.yml")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("JOB %s|%s\n", odin.JobID, odin.JobName)
	args := os.Args[2:]
	switch os.Args[1] {
	case "basic":
		basic(odin, args[0], args[1])
	case "nonjson":
		_ = odin.Watch("odd", odd{})
		odin.Result("done", 0)
	case "big":
		report(odin.Watch("too big", strings.Repeat("x", 70000)))
		report(odin.Watch("fits", strings.Repeat("x", 60000)))
		odin.Result("done", 0)
	case "many":
		for i := 0; i < odinlib.MaxRecordsPerRun; i++ {
			report(odin.Watch("n", i))
		}
		report(odin.Watch("one too many", 0))
		fmt.Println("COND", odin.Condition("still answers", true))
		odin.Result("done", 3)
	case "wait":
		_ = odin.Watch("before", 1)
		fmt.Println("WAITING")
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(args[0]); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		_ = odin.Watch("after", 2)
		odin.Result("done", 0)
	case "natural":
		defer odin.Flush()
		_ = odin.Watch("only", 1)
	}
}

func basic(odin *odinlib.Odin, url, status string) {
	_ = odin.Watch("url fetched", url)
	details := map[string]any{"length": len(url), "tags": []string{"a", "b"}, "ok": true, "none": nil, "pi": 3.5}
	_ = odin.Watch("details", details)
	if odin.Condition("url not empty", url != "") {
		_ = odin.Watch("branch", "taken")
		fmt.Println("BRANCH taken")
	} else {
		_ = odin.Watch("branch", "skipped")
		fmt.Println("BRANCH skipped")
	}
	code, _ := strconv.Atoi(status)
	odin.Result("done", code)
}

func report(err error) {
	if errors.Is(err, odinlib.ErrLimit) {
		fmt.Println("LIMIT", err)
	} else if err != nil {
		panic(err)
	}
}
"""
