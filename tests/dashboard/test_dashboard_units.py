"""The dashboard's parts that need no engine: links, sessions, settings, views, metrics."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from odin.cluster.model import Alert, DeliveryState, Job, Record, Run, RunReason, RunStatus
from odin.cluster.state import JobRemoved, RunFinished
from odin.dashboard import views
from odin.dashboard.auth import LinkMinter, SessionStore, private_token
from odin.dashboard.metrics import (
    ClusterFacts,
    JobHealth,
    NextRuns,
    RunMetrics,
    WatchKey,
    exposition,
)
from odin.dashboard.settings import DashboardSettings
from odin.dashboard.throttle import RateLimiter
from odin.engine.loopwatch import Stalls
from odin.engine.views import next_runs
from odin.errors import InvalidInput
from odin.jobs.language import Language
from odin.jobs.notify import AlertEvent


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- links and sessions ----------------------------------------------------------------


def test_a_link_works_once() -> None:
    minter = LinkMinter("http://localhost:4200/")
    link = minter.mint(1001)
    assert link.url.startswith("http://localhost:4200/login/") and link.expires_in == 60
    token = link.url.rsplit("/", 1)[1]
    assert minter.redeem(token) == 1001
    assert minter.redeem(token) is None
    assert minter.redeem("made-up") is None


def test_a_link_expires() -> None:
    clock = Clock()
    minter = LinkMinter("http://x", ttl_s=60, clock=clock)
    early = minter.mint(1).url.rsplit("/", 1)[1]
    late = minter.mint(2).url.rsplit("/", 1)[1]
    clock.now += 59
    assert minter.redeem(early) == 1
    clock.now += 2
    assert minter.redeem(late) is None


def test_peeking_at_a_link_leaves_it_usable_once() -> None:
    clock = Clock()
    minter = LinkMinter("http://x", ttl_s=60, clock=clock)
    token = minter.mint(1001).url.rsplit("/", 1)[1]
    assert minter.peek(token) == minter.peek(token) == 1001
    assert minter.redeem(token) == 1001
    assert minter.peek(token) is None and minter.redeem(token) is None
    late = minter.mint(1002).url.rsplit("/", 1)[1]
    clock.now += 61
    assert minter.peek(late) is None


def test_rate_limiter_allows_limit_per_window_per_key() -> None:
    clock = Clock()
    limiter = RateLimiter(3, 60.0, clock=clock)
    for _ in range(3):
        assert limiter.wait_s("10.0.0.1") == 0
        limiter.record("10.0.0.1")
        clock.now += 10
    assert limiter.wait_s("10.0.0.1") == 30.0  # the first attempt leaves the window in 30 s
    assert limiter.wait_s("10.0.0.2") == 0
    clock.now += 30
    assert limiter.wait_s("10.0.0.1") == 0


def test_rate_limiter_keeps_a_bounded_number_of_keys() -> None:
    clock = Clock()
    limiter = RateLimiter(1, 60.0, max_keys=2, clock=clock)
    for key in ("a", "b", "c"):
        limiter.record(key)
    assert limiter.wait_s("a") == 0  # forgotten: the least recently seen key went first
    assert limiter.wait_s("b") > 0 and limiter.wait_s("c") > 0


def test_sessions_survive_reopening_and_expire(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "dashboard.db"
    store = SessionStore(path, ttl_s=100, clock=clock)
    sid = store.create(1001, "link")
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = SessionStore(path, ttl_s=100, clock=clock)
    session = again.get(sid)
    assert session is not None and session.uid == 1001 and session.method == "link"
    assert again.get(sid + "x") is None
    clock.now += 101
    assert again.get(sid) is None


def test_logout_ends_a_session(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.db", ttl_s=100)
    sid = store.create(0, "password")
    store.delete(sid)
    assert store.get(sid) is None


def test_private_token_is_made_once_with_mode_600(tmp_path: Path) -> None:
    path = tmp_path / "metrics.token"
    first = private_token(path)
    assert len(first) >= 40 and private_token(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- settings ------------------------------------------------------------------------


def test_settings_default_to_the_dashboard_address(tmp_path: Path) -> None:
    settings = DashboardSettings.from_env_and_args(
        data_dir=tmp_path, address=("127.0.0.1", 4300), env={}
    )
    assert settings.public_url == "http://localhost:4300"
    assert settings.oidc is None and not settings.secure_cookies


def test_settings_read_oidc_from_the_environment(tmp_path: Path) -> None:
    env = {
        "ODIN_DASHBOARD_URL": "https://odin.example.com/",
        "ODIN_OIDC_ISSUER": "https://accounts.google.com",
        "ODIN_OIDC_CLIENT_ID": "id",
        "ODIN_OIDC_CLIENT_SECRET": "secret",
        "ODIN_OIDC_USERS": "Alice@Example.com=alice, bob@example.com=bob",
    }
    settings = DashboardSettings.from_env_and_args(data_dir=tmp_path, env=env)
    assert settings.public_url == "https://odin.example.com" and settings.secure_cookies
    assert settings.oidc is not None and settings.oidc.name == "Google"
    assert dict(settings.oidc.users) == {"alice@example.com": "alice", "bob@example.com": "bob"}
    assert settings.oidc.metadata_url.endswith("/.well-known/openid-configuration")


def test_settings_refuse_half_an_oidc_config(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="issuer, client_id and client_secret"):
        DashboardSettings.from_env_and_args(data_dir=tmp_path, env={"ODIN_OIDC_CLIENT_ID": "x"})


def test_settings_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "dashboard.yml"
    path.write_text("public_url: http://odin:4200\noidc:\n  client_secret: s\n")
    os.chmod(path, 0o644)
    with pytest.raises(InvalidInput, match="chmod 600"):
        DashboardSettings.from_env_and_args(data_dir=tmp_path, env={})
    os.chmod(path, 0o600)
    with pytest.raises(InvalidInput):  # a secret without issuer and client id
        DashboardSettings.from_env_and_args(data_dir=tmp_path, env={})
    path.write_text("public_url: http://odin:4200\nsession_ttl: 60\n")
    settings = DashboardSettings.from_env_and_args(data_dir=tmp_path, env={})
    assert (settings.public_url, settings.session_ttl_s) == ("http://odin:4200", 60.0)


# -- views -----------------------------------------------------------------------------


def run_dict(
    instant: float, status: str, *, duration: float | None = 1.0, **extra: object
) -> dict[str, object]:
    return {
        "id": f"j@{instant}",
        "instant": instant,
        "status": status,
        "duration": duration,
        "lag": 0.01,
        "records": extra.get("records", []),
    }


def test_success_rate_ignores_skipped_and_unfinished() -> None:
    runs = [run_dict(1, "succeeded"), run_dict(2, "failed"), run_dict(3, "skipped")]
    runs.append(run_dict(4, "running"))
    assert views.success_rate(runs) == 0.5
    assert views.success_rate([run_dict(1, "planned")]) is None


def test_filter_and_sort_jobs() -> None:
    jobs = [
        {"id": "1", "name": "beta", "description": "x", "next_run": None},
        {"id": "2", "name": "alpha", "description": "backup db", "next_run": "2030"},
        {"id": "3", "name": "gamma", "description": "", "next_run": "2029"},
    ]
    assert [j["id"] for j in views.filter_jobs(jobs, "BACKUP")] == ["2"]
    assert [j["id"] for j in views.sort_jobs(jobs, "name", False)] == ["2", "1", "3"]
    assert [j["id"] for j in views.sort_jobs(jobs, "next_run", False)] == ["3", "2", "1"]
    assert [j["id"] for j in views.sort_jobs(jobs, "next_run", True)] == ["2", "3", "1"]
    assert [j["id"] for j in views.sort_jobs(jobs, "bogus", False)] == ["2", "1", "3"]


def test_chart_data_sorts_and_keeps_numeric_watches_only() -> None:
    watch = [
        {"type": "watch", "desc": "rows", "ts": 21.0, "value": 5},
        {"type": "watch", "desc": "name", "ts": 21.0, "value": "text"},
        {"type": "watch", "desc": "flag", "ts": 21.0, "value": True},
    ]
    runs = [
        run_dict(20, "succeeded", records=watch),
        run_dict(10, "failed"),
        run_dict(30, "running", duration=None),
    ]
    data = views.chart_data(runs)
    assert data["runs"]["x"] == [10, 20]
    assert list(data["watch"]) == ["rows"]
    assert data["watch"]["rows"] == {"x": [21.0], "y": [5.0]}


def test_record_history_newest_first() -> None:
    records = [
        {"type": "condition", "desc": "a", "ts": 1.0, "value": True},
        {"type": "result", "desc": "done", "ts": 2.0, "value": 0},
        {"type": "condition", "desc": "b", "ts": 3.0, "value": False},
    ]
    rows = views.record_history([run_dict(1, "succeeded", records=records)], ("condition",))
    assert [(r["desc"], r["value"]) for r in rows] == [("b", "false"), ("a", "true")]


def test_clip_output_keeps_the_end() -> None:
    clipped = views.clip_output({"output": "abcdef"}, 4)
    assert clipped["output"] == "cdef" and clipped["clipped"] == 2
    assert views.clip_output({"output": "ab"}, 4) == {"output": "ab"}


# -- metrics ---------------------------------------------------------------------------


def finished_run(job: str, owner: int, status: RunStatus, started: float, ended: float) -> Run:
    return Run(
        id=f"{job}@{started}",
        job_id=job,
        owner_uid=owner,
        instant=100.0,
        reason=RunReason.SCHEDULE,
        node="n1",
        planned_at=99.0,
        status=status,
        started_at=started,
        finished_at=ended,
        records=(Record(seq=1, ts=started, type="watch", desc="rows", value=3),),
    )


OPENMETRICS = "application/openmetrics-text; version=1.0.0"
# What Prometheus itself sends (scrape_protocols' default, before native histograms).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
OLDER = "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
RATHER = (  # a scraper that prefers the text format, or refuses OpenMetrics
    "text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0;q=0.5",
    "application/openmetrics-text;q=0,*/*;q=0.1",
)


def named(job_id: str, owner: int, name: str) -> Job:
    return Job(
        id=job_id,
        owner_uid=owner,
        owner_gid=owner,
        owner=f"u{owner}",
        name=name,
        description="",
        language=Language.PYTHON,
        filename="job.py",
        schedule="every 1 minute",
        timezone="UTC",
        code="",
        yaml="",
        code_sha="",
    )


def facts(**raft: object) -> ClusterFacts:
    return ClusterFacts(
        node="n1",
        is_leader=True,
        members=("127.0.0.1:12000",),
        raft={"leader": "127.0.0.1:12000", **raft},
        running=0,
    )


def scrape(
    metrics: RunMetrics,
    watches: dict[WatchKey, float],
    visible: Callable[[int], bool],
    accept: str = "",
    jobs: dict[str, Job] | None = None,
    cluster: ClusterFacts | None = None,
) -> tuple[str, str]:
    body, content_type = exposition(
        metrics, jobs or {}, watches, cluster or facts(), visible, accept
    )
    return body.decode(), content_type


def test_metrics_text_counts_and_hides_other_users() -> None:
    metrics = RunMetrics()
    metrics.seed([finished_run("aaa", 1001, RunStatus.SUCCEEDED, 100.02, 100.52)])
    metrics.observe(finished_run("aaa", 1001, RunStatus.FAILED, 100.5, 104.0))
    metrics.observe(finished_run("bbb", 1002, RunStatus.SUCCEEDED, 100.0, 101.0))
    watches = {("aaa", 1001, 'say "hi"'): 7.5, ("bbb", 1002, "bobs-rows"): 9.0}
    cluster = facts(commit_index=42, term=3)
    text, content_type = scrape(metrics, watches, lambda uid: uid == 1001, cluster=cluster)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert 'odin_runs_total{job_id="aaa",job="",outcome="succeeded"} 1' in text
    assert 'odin_runs_total{job_id="aaa",job="",outcome="failed"} 1' in text
    assert 'job_id="bbb"' not in text and "bobs-rows" not in text
    assert 'odin_run_duration_seconds_bucket{job_id="aaa",job="",le="0.5"} 1' in text
    assert 'odin_run_duration_seconds_bucket{job_id="aaa",job="",le="5"} 2' in text
    assert 'odin_run_duration_seconds_bucket{job_id="aaa",job="",le="+Inf"} 2' in text
    assert 'odin_run_duration_seconds_count{job_id="aaa",job=""} 2' in text
    assert 'odin_run_lag_seconds_bucket{job_id="aaa",job="",le="0.025"} 1' in text
    assert 'odin_watch_value{job_id="aaa",job="",name="say \\"hi\\""} 7.5' in text
    assert 'odin_raft_commit_index{node="n1"} 42' in text
    assert 'odin_is_leader{node="n1"} 1' in text and 'odin_raft_members{node="n1"} 1' in text
    assert "# TYPE odin_runs_total counter" in text and "# EOF" not in text
    assert text.endswith("\n")
    # A member sees every family, with only their own series; the token holder sees all.
    everything, _ = scrape(metrics, watches, lambda _: True, cluster=cluster)
    assert 'job_id="bbb"' in everything and "bobs-rows" in everything
    names = [f.name for f in text_string_to_metric_families(everything)]
    assert [f.name for f in text_string_to_metric_families(text)] == names


def test_metrics_speak_openmetrics_to_who_asks() -> None:
    metrics = RunMetrics()
    metrics.observe(finished_run("aaa", 1001, RunStatus.SUCCEEDED, 100.02, 100.52))
    metrics.observe(finished_run("bbb", 1002, RunStatus.FAILED, 100.0, 101.0))
    watches = {("aaa", 1001, "rows"): 3.0, ("bbb", 1002, "bobs-rows"): 9.0}
    stalls = Stalls(
        worst_s=0.02,
        recent_s=0.01,
        window_s=60,
        bounds=(0.005, 0.01, 0.025),
        counts=(5, 8, 9),
        wakes=9,
        total_s=0.05,
        peaks=(),
    )
    cluster = dataclasses.replace(facts(commit_index=7, last_applied=7, term=2), stalls=stalls)
    for accept in (OPENMETRICS, PROMETHEUS_ACCEPT, "application/openmetrics-text", OLDER):
        text, content_type = scrape(
            metrics, watches, lambda uid: uid == 1001, accept, cluster=cluster
        )
        assert content_type.startswith("application/openmetrics-text; version=1.0.0;"), accept
        assert text.endswith("\n# EOF\n") and "# TYPE odin_runs counter\n" in text
        assert 'odin_runs_total{job_id="aaa",job="",outcome="succeeded"} 1' in text
        assert 'odin_run_duration_seconds_bucket{job_id="aaa",job="",le="5.0"} 1' in text
        assert "bbb" not in text  # the member's filter holds in this format too
        families = {f.name: f for f in openmetrics_families(text)}  # the strict parser
        assert families["odin_runs"].type == "counter"
        assert families["odin_run_duration_seconds"].type == "histogram"
        assert families["odin_loop_stall_seconds"].type == "histogram"
        assert {
            s.labels["le"] for s in families["odin_loop_stall_seconds"].samples if "le" in s.labels
        } == {
            "0.005",
            "0.01",
            "0.025",
            "+Inf",
        }
    for accept in (
        "",
        "text/plain",
        "text/plain; version=0.0.4",
        "*/*",
        "application/json",
        *RATHER,
    ):
        text, content_type = scrape(metrics, watches, lambda _: True, accept, cluster=cluster)
        assert content_type == "text/plain; version=0.0.4; charset=utf-8", accept
        assert "# EOF" not in text and "# TYPE odin_runs_total counter" in text


ODD = 'say "hi" \\ to\nme\\n'  # quotes, a backslash, a newline, and a backslash before an n


def test_metrics_escape_odd_label_values() -> None:
    metrics = RunMetrics()
    metrics.observe(finished_run("aaa", 1001, RunStatus.SUCCEEDED, 100.02, 100.52))
    jobs = {"aaa": named("aaa", 1001, ODD)}
    watches = {("aaa", 1001, ODD): 1.5}
    cluster = facts(leader='10.0.0.1:1"\n')
    escaped = 'say \\"hi\\" \\\\ to\\nme\\\\n'
    for accept, parse in (
        ("", text_string_to_metric_families),
        (OPENMETRICS, openmetrics_families),
    ):
        text, _ = scrape(metrics, watches, lambda _: True, accept, jobs=jobs, cluster=cluster)
        assert f'odin_watch_value{{job_id="aaa",job="{escaped}",name="{escaped}"}} 1.5' in text
        assert 'leader="10.0.0.1:1\\"\\n"' in text
        for line in text.splitlines():  # a raw newline in a value would start a bogus line
            assert line.startswith(("# ", "odin_")), line
        samples = [s for f in parse(text) for s in f.samples]
        watch = next(s for s in samples if s.name == "odin_watch_value")
        assert watch.labels == {"job_id": "aaa", "job": ODD, "name": ODD}
        assert all(s.labels.get("job") == ODD for s in samples if "job_id" in s.labels)
        leader = next(s for s in samples if s.name == "odin_raft_leader")
        assert leader.labels["leader"] == '10.0.0.1:1"\n'


def alert(job: Job, n: int, event: AlertEvent, state: DeliveryState) -> Alert:
    return Alert(
        id=f"{job.id}@{n}:{event}:0",
        key=f"{job.id}@{n}:{event}",
        job_id=job.id,
        owner_uid=job.owner_uid,
        event=event,
        to="https://hooks.example.org/odin",
        run_id=None,
        created_at=100.0,
        state=state,
    )


NOW = 1_700_000_030.5  # 2023-11-14T22:13:50.5Z: "every 1 minute" fires next at 22:14:00


def test_metrics_show_job_health_and_alerts() -> None:
    mine = dataclasses.replace(named("aaa", 1001, ODD), owner='o"dd\\')
    paused = dataclasses.replace(named("ccc", 1001, "paused"), paused=True)
    stranded = dataclasses.replace(named("ddd", 1001, "stranded"), nodes=("gone",))
    never = dataclasses.replace(named("eee", 1001, "never"), schedule="never")
    theirs = named("bbb", 1002, "bobs-job")
    jobs = {job.id: job for job in (mine, paused, stranded, never, theirs)}
    metrics = RunMetrics()
    metrics.seed([finished_run("aaa", 1001, RunStatus.SUCCEEDED, 100.0, 101.25)])
    metrics.handle(RunFinished(finished_run("aaa", 1001, RunStatus.FAILED, 200.0, 201.0)))
    metrics.handle(RunFinished(finished_run("bbb", 1002, RunStatus.SUCCEEDED, 100.0, 102.0)))
    metrics.handle(RunFinished(finished_run("ddd", 1001, RunStatus.SUCCEEDED, 100.0, 103.0)))
    metrics.handle(JobRemoved(stranded))  # a removed job's last success is forgotten
    health = JobHealth(
        now=NOW,
        members=frozenset({"n1"}),
        failing={"aaa": 1, "bbb": 4},
        alerts=(
            alert(mine, 1, AlertEvent.FAILURE, DeliveryState.SENT),
            alert(mine, 2, AlertEvent.FAILURE, DeliveryState.SENT),
            alert(mine, 3, AlertEvent.MISSED, DeliveryState.RETRYING),
            alert(theirs, 1, AlertEvent.FAILURE, DeliveryState.FAILED),
        ),
    )
    cluster = dataclasses.replace(facts(), alert_attempts={True: 2, False: 3})
    escaped_name = 'say \\"hi\\" \\\\ to\\nme\\\\n'
    aaa = f'{{job_id="aaa",job="{escaped_name}",owner="o\\"dd\\\\"}}'
    schedules = NextRuns()
    for accept, parse in (
        ("", text_string_to_metric_families),
        (OPENMETRICS, openmetrics_families),
    ):
        for visible in (lambda uid: uid == 1001, lambda _uid: True):
            body, _ = exposition(metrics, jobs, {}, cluster, visible, accept, health, schedules)
            text = body.decode()
            assert f"odin_job_last_success_timestamp_seconds{aaa} 101.25" in text
            assert f"odin_job_next_run_timestamp_seconds{aaa} 1700000040" in text
            assert f"odin_job_failing{aaa} 1" in text
            assert 'odin_alerts{state="sent",event="failure"} 2' in text
            assert 'odin_alerts{state="retrying",event="missed"} 1' in text
            assert 'odin_alerts{state="pending",event="lost"} 0' in text
            assert 'odin_alert_delivery_attempts_total{node="n1",result="ok"} 2' in text
            assert 'odin_alert_delivery_attempts_total{node="n1",result="failed"} 3' in text
            families = {f.name: f for f in parse(text)}  # the strict parser in OpenMetrics
            assert families["odin_alert_delivery_attempts"].type == "counter"
            gauges = {
                name: {s.labels["job_id"]: s.value for s in families[name].samples}
                for name in (
                    "odin_job_last_success_timestamp_seconds",
                    "odin_job_next_run_timestamp_seconds",
                    "odin_job_failing",
                )
            }
            everyone = visible(1002)
            bbb = {"bbb": 102.0} if everyone else {}
            assert gauges["odin_job_last_success_timestamp_seconds"] == {"aaa": 101.25, **bbb}
            bbb = {"bbb": 1_700_000_040.0} if everyone else {}
            assert gauges["odin_job_next_run_timestamp_seconds"] == {"aaa": 1_700_000_040.0, **bbb}
            bbb = {"bbb": 4.0} if everyone else {}
            zeros = {"ccc": 0.0, "ddd": 0.0, "eee": 0.0}
            assert gauges["odin_job_failing"] == {"aaa": 1.0, **zeros, **bbb}
            labels = next(s.labels for s in families["odin_job_failing"].samples)
            assert labels == {"job_id": "aaa", "job": ODD, "owner": 'o"dd\\'}
            assert ('odin_alerts{state="failed",event="failure"} 1' in text) == everyone
            assert ("bobs-job" in text) == everyone


def test_next_runs_are_what_odin_list_shows_and_kept_until_they_pass() -> None:
    hourly = dataclasses.replace(named("aaa", 1001, "hourly"), schedule="every 1 hour")
    minutely = named("bbb", 1001, "minutely")
    schedules = NextRuns()
    for now in (NOW, NOW + 5.0, NOW + 9.5, NOW + 60.0, NOW + 3600.0):
        found = schedules.instants([hourly, minutely], now, {"n1"})
        for job in (hourly, minutely):
            (expected,) = next_runs(job, now, 1)
            assert found[job.id] == dt.datetime.fromisoformat(expected).timestamp(), (job, now)
    assert schedules.instants([hourly], NOW - 3600.0, {"n1"}) == {"aaa": 1_699_999_200.0}
