"""The dashboard's defences against its own users, over real HTTP to a real engine (needs root).

Password logins go through real PAM (the ``login`` service with passwords set
by chpasswd, or a throw-away service of ``pam_permit`` where a test needs PAM
to say yes); the clients are plain HTTP clients bound to distinct loopback
addresses (127.0.0.x), so that each one is its own client address to the rate
limits. Pages, metrics and login links are reached as real users whose jobs
were deployed and run with the real CLI.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from engine_harness import (
    Engine,
    free_port,
    job_id_of,
    needs_root,
    odin,
    user_dir,
    wait_for,
    write_job,
)
from odin import config
from odin.dashboard.auth import LOGIN_FAILED
from odin.dashboard.headers import SECURITY_HEADERS

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root: real users, real PAM"),
    pytest.mark.slow,
]

ALICE, BOB, EVE = "odin-alice", "odin-bob", "odin-eve"
PAM_DIR = Path("/etc/pam.d")
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@dataclass
class DashEngine(Engine):
    """A real ``odin-engine`` serving its dashboard on a free loopback port."""

    dashboard_port: int | None = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start(self, wait: bool = True) -> DashEngine:
        self.env = {"ODIN_DASHBOARD_URL": self.url, **self.env}
        super().start(wait)
        return self


# -- helpers ------------------------------------------------------------------------------


def client(engine: DashEngine, address: str = "127.0.0.1") -> httpx.Client:
    """A browser-like client (it keeps cookies) whose connections come from ``address``."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=engine.url, transport=transport, timeout=60)


def csrf_of(browser: httpx.Client) -> str:
    page = browser.get("/login").text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def try_password(browser: httpx.Client, user: str, password: str, csrf: str = "") -> httpx.Response:
    form = {"username": user, "password": password, "csrf": csrf or csrf_of(browser)}
    return browser.post("/login/password", data=form)


def login_error(answer: httpx.Response) -> str:
    found = re.search(r'id="login-error"[^>]*>([^<]*)<', answer.text)
    assert found, answer.text
    return found.group(1)


def logged_in_as(browser: httpx.Client) -> str | None:
    page = browser.get("/jobs")
    if page.status_code != 200:
        return None
    found = re.search(r'id="whoami">([^<·]*)', page.text)
    return found.group(1).strip() if found else None


def link_for(user: str, engine: DashEngine) -> str:
    url = odin("dashboard", "--no-open", engine=engine, user=user).stdout.strip()
    assert url.startswith(f"{engine.url}/login/"), url
    return url.removeprefix(engine.url)


def nonce_of(page: httpx.Response) -> str:
    found = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def log_in_with_link(browser: httpx.Client, user: str, engine: DashEngine) -> None:
    path = link_for(user, engine)
    answer = browser.post(path, data={"nonce": nonce_of(browser.get(path))})
    assert answer.status_code == 303, answer.text
    assert logged_in_as(browser) == user


def set_password(user: str, password: str | None) -> None:
    """Give ``user`` a password (None: lock the account again)."""
    if password is None:
        subprocess.run(["usermod", "-p", "!", user], check=True)
        return
    subprocess.run(["chpasswd"], input=f"{user}:{password}\n", text=True, check=True)


def deploy(engine: DashEngine, world: Path, user: str, name: str, code: str, **kw: Any) -> str:
    path = write_job(user_dir(world / name, user), name, code, **kw)
    odin("deploy", "-f", str(path), engine=engine, user=user)
    return job_id_of(path)


def runs_of(engine: DashEngine, user: str, job_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = odin(
        "log", "-i", job_id, "-o", "json", engine=engine, user=user
    ).json()
    return result


def succeeded(engine: DashEngine, user: str, job_id: str) -> list[dict[str, Any]]:
    return [r for r in runs_of(engine, user, job_id) if r["status"] == "succeeded"]


def in_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call at the same moment (each on its own thread); their results in order."""
    start = threading.Barrier(len(calls))

    def go(call: Callable[[], Any]) -> Any:
        start.wait()
        return call()

    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="odin-dashsec-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def shared(world: Path) -> Iterator[DashEngine]:
    """One engine for the tests that do not count login attempts."""
    running = DashEngine(root=world).start()
    yield running
    running.stop()


@pytest.fixture
def fresh(world_dir: Path) -> Iterator[DashEngine]:
    """An engine of its own: fresh rate limits."""
    running = DashEngine(root=world_dir).start()
    yield running
    running.stop()


@pytest.fixture
def passwords() -> Iterator[dict[str, str]]:
    """Known passwords for Bob (a member) and Eve (not a member), locked again after."""
    chosen = {BOB: secrets.token_urlsafe(12), EVE: secrets.token_urlsafe(12)}
    for user, password in chosen.items():
        set_password(user, password)
    yield chosen
    for user in chosen:
        set_password(user, None)


@pytest.fixture
def permissive(world_dir: Path) -> Iterator[DashEngine]:
    """An engine whose PAM service (made for this test) accepts any password of any user."""
    service = f"odin-test-permit-{secrets.token_hex(4)}"
    rules = "".join(f"{kind} required pam_permit.so\n" for kind in ("auth", "account", "session"))
    (PAM_DIR / service).write_text(rules)
    data = world_dir / "data"
    data.mkdir(mode=0o700)
    settings = data / "dashboard.yml"
    settings.write_text(f"pam_service: {service}\n")
    os.chmod(settings, 0o600)
    running = DashEngine(root=world_dir).start()
    yield running
    running.stop()
    (PAM_DIR / service).unlink()


# -- 1. password logins -----------------------------------------------------------------------


def test_bad_logins_do_not_stall_the_engine(shared: DashEngine, world: Path) -> None:
    ticker = deploy(shared, world, ALICE, "ticker", "print('tick')\n", schedule="every 1 second")
    wait_for(lambda: runs_of(shared, ALICE, ticker), what="the ticker's first run")
    browsers = [client(shared, "127.0.0.2") for _ in range(12)]
    tokens = [csrf_of(b) for b in browsers]

    def bad_login(i: int) -> tuple[int, str, float]:
        answer = try_password(browsers[i], (ALICE, BOB)[i % 2], "wrong", tokens[i])
        return answer.status_code, login_error(answer), time.time()

    listed: list[float] = []

    def list_jobs() -> None:
        time.sleep(0.5)  # the logins are under way
        odin("list", engine=shared, user=ALICE)
        listed.append(time.time())

    began = time.time()
    results = in_parallel([functools.partial(bad_login, i) for i in range(12)] + [list_jobs])[:12]
    checked = [ended for status, _text, ended in results if status == 401]  # PAM said no
    quick = [ended for status, _text, ended in results if status != 401]
    assert 1 <= len(checked) <= config.DASHBOARD_PAM_THREADS, results
    assert {status for status, _t, _e in results} <= {401, 429, 503}, results
    assert {text for status, text, _e in results if status in (401, 429)} == {LOGIN_FAILED}
    assert max(quick) < min(checked)  # the refused ones were answered at once
    assert listed[0] < min(checked)  # `odin list` answered while PAM was holding its failures
    window = [r for r in runs_of(shared, ALICE, ticker) if began <= r["instant"] < min(checked)]
    ticks = [r for r in window if r["instant"] < min(checked) - 1]
    assert ticks, "no tick was scheduled while the logins were checked"
    assert all(r["started_at"] is not None for r in ticks), ticks
    assert all(r["started_at"] < min(checked) for r in ticks), ticks  # started during them
    print(f"lags during the logins: {[round(r['lag'], 3) for r in ticks]}")
    print(
        f"odin list done {listed[0] - began:.2f} s in; PAM answers at {min(checked) - began:.2f} s"
    )


def test_every_refused_password_gets_the_same_answer(
    fresh: DashEngine, passwords: dict[str, str]
) -> None:
    tries = {
        "wrong password": (BOB, "not-" + passwords[BOB]),
        "unknown user": (f"nobody-{secrets.token_hex(4)}", passwords[BOB]),
        "non-member, right password": (EVE, passwords[EVE]),
    }
    texts = {}
    for case, (user, password) in tries.items():
        browser = client(fresh)
        answer = try_password(browser, user, password)
        assert answer.status_code == 401, (case, answer.status_code)
        texts[case] = login_error(answer)
        assert logged_in_as(browser) is None
    assert set(texts.values()) == {LOGIN_FAILED}, texts
    browser = client(fresh)
    assert try_password(browser, BOB, passwords[BOB]).status_code == 303
    assert logged_in_as(browser) == BOB


def test_root_may_not_log_in_with_a_password(permissive: DashEngine) -> None:
    member = client(permissive)
    assert try_password(member, ALICE, "anything").status_code == 303  # this PAM says yes
    assert logged_in_as(member) == ALICE
    browser = client(permissive)
    answer = try_password(browser, "root", "anything")
    assert answer.status_code == 401 and login_error(answer) == LOGIN_FAILED
    assert logged_in_as(browser) is None


def test_rate_limits_answer_429_without_asking_pam(
    fresh: DashEngine, passwords: dict[str, str]
) -> None:
    attempts = config.DASHBOARD_LOGIN_PER_USER
    browsers = [client(fresh, "127.0.0.3") for _ in range(attempts)]
    tokens = [csrf_of(b) for b in browsers]
    answers = in_parallel(
        [
            functools.partial(try_password, b, BOB, "wrong", t)
            for b, t in zip(browsers, tokens, strict=True)
        ]
    )
    assert {a.status_code for a in answers} <= {401, 503}, answers
    elsewhere = client(fresh, "127.0.0.4")  # Bob's right password, from another address
    answer = try_password(elsewhere, BOB, passwords[BOB])
    assert answer.status_code == 429 and login_error(answer) == LOGIN_FAILED
    assert 0 < int(answer.headers["retry-after"]) <= config.DASHBOARD_LOGIN_WINDOW_S
    assert logged_in_as(elsewhere) is None

    limit = config.DASHBOARD_LOGIN_PER_ADDRESS
    crowd = [client(fresh, "127.0.0.5") for _ in range(limit + 1)]
    tokens = [csrf_of(b) for b in crowd]
    names = [f"nobody-{secrets.token_hex(4)}" for _ in crowd]
    in_parallel(
        [functools.partial(try_password, crowd[i], names[i], "x", tokens[i]) for i in range(limit)]
    )
    started = time.monotonic()
    answer = try_password(crowd[limit], names[limit], "x", tokens[limit])
    assert answer.status_code == 429 and login_error(answer) == LOGIN_FAILED
    assert time.monotonic() - started < config.DASHBOARD_LOGIN_FAILURE_S  # answered at once
    other = try_password(client(fresh, "127.0.0.6"), names[limit], "x")
    assert other.status_code == 401  # the limit is per address: another one is still heard


# -- 2. metrics ---------------------------------------------------------------------------------


def meter(name: str) -> str:
    return f"import pyodin\nodin = pyodin.Odin()\nodin.watch('{name}-rows', 42)\nprint('ok')\n"


def families(text: str) -> dict[str, list[str]]:
    """Every metric family of the exposition, with its sample lines."""
    found: dict[str, list[str]] = {}
    family = ""
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            family = line.split()[2]
            found[family] = []
        elif line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            assert name == family or name.startswith(family + "_"), (family, line)
            found[family].append(line)
    return found


def test_metrics_show_each_member_only_their_own_jobs(shared: DashEngine, world: Path) -> None:
    mine = {
        user: deploy(shared, world, user, f"{user}-meter", meter(user)) for user in (ALICE, BOB)
    }
    for user, job_id in mine.items():
        odin("run", "-i", job_id, engine=shared, user=user)
        done = functools.partial(succeeded, shared, user, job_id)
        wait_for(done, what=f"{user}'s run")
    token = (shared.data_dir / "metrics.token").read_text().strip()
    # The Prometheus text format, and OpenMetrics (where the counter's family drops "_total").
    for accept, runs in (("", "odin_runs_total"), (OPENMETRICS, "odin_runs")):
        everything = httpx.get(
            f"{shared.url}/metrics", headers={"Authorization": f"Bearer {token}", "Accept": accept}
        ).text
        assert everything.endswith("# EOF\n") == bool(accept)
        for user, other in ((ALICE, BOB), (BOB, ALICE)):
            browser = client(shared)
            log_in_with_link(browser, user, shared)
            answer = browser.get("/metrics", headers={"Accept": accept})
            assert answer.headers["content-type"].startswith(accept or "text/plain; version=0.0.4")
            assert "Accept" in answer.headers["vary"]  # caches keep the two formats apart
            seen = families(answer.text)
            assert set(seen) == set(families(everything))
            marks = (f'"{mine[other]}"', f'"{other}-meter"', f'"{other}-rows"')
            assert marks[0] in everything and marks[2] in everything  # the series exist
            for family, lines in seen.items():
                leaked = [line for line in lines if any(mark in line for mark in marks)]
                assert not leaked, f"{user} sees {other}'s series of {family}: {leaked}"
            own = (runs, "odin_run_duration_seconds", "odin_run_lag_seconds", "odin_watch_value")
            for family in own:
                assert any(f'"{mine[user]}"' in line for line in seen[family]), (user, family)
            assert any(f'"{user}-rows"' in line for line in seen["odin_watch_value"])


class Hook(BaseHTTPRequestHandler):
    """A webhook receiver: answers 200 and keeps each alert's ``Idempotency-Key``."""

    received: list[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append(self.headers.get("Idempotency-Key", ""))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    """A loopback webhook receiver: its URL, and the keys of the alerts it received."""
    received: list[str] = []
    handler = type("TestHook", (Hook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]  # value by name and labels


def scrape_until(engine: DashEngine, ready: Callable[[Samples], bool], what: str) -> Samples:
    """The samples of the first OpenMetrics scrape (read by the strict parser) that is ready."""
    token = (engine.data_dir / "metrics.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}", "Accept": OPENMETRICS}

    def scrape() -> Samples | None:
        text = httpx.get(f"{engine.url}/metrics", headers=headers).text
        found = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        return found if ready(found) else None

    return wait_for(scrape, what=what)


def job_sample(found: Samples, name: str, job_id: str) -> float | None:
    values = [v for (n, labels), v in found.items() if n == name and ("job_id", job_id) in labels]
    assert len(values) <= 1, values
    return values[0] if values else None


def test_metrics_show_job_health_and_alerts(
    shared: DashEngine, world: Path, receiver: tuple[str, list[str]]
) -> None:
    url, received = receiver
    flag = user_dir(world / "flaky-flag", ALICE) / "succeed"
    code = f"import os, sys\nsys.exit(0 if os.path.exists({str(flag)!r}) else 1)\n"
    extra = f"  notify:\n    - to: {url}\n      on: [failure]\n"
    job_id = deploy(shared, world, ALICE, "flaky", code, schedule="0 3 1 1 *", extra=extra)
    last_success = functools.partial(
        job_sample, name="odin_job_last_success_timestamp_seconds", job_id=job_id
    )
    sent = ("odin_alerts", frozenset({("state", "sent"), ("event", "failure")}))
    attempts = {
        result: (
            "odin_alert_delivery_attempts_total",
            frozenset({("node", "master-node"), ("result", result)}),
        )
        for result in ("ok", "failed")
    }

    odin("run", "-i", job_id, engine=shared, user=ALICE)  # fails: no flag yet
    found = scrape_until(shared, lambda now: now.get(sent) == 1, "a sent failure alert")
    assert len(received) == 1 and received[0].endswith(":failure"), received
    assert found[attempts["ok"]] == 1 and found[attempts["failed"]] == 0
    assert sum(v for (n, _), v in found.items() if n == "odin_alerts") == 1
    assert last_success(found) is None
    assert job_sample(found, "odin_job_failing", job_id) == 1
    (row,) = [
        j for j in odin("list", "-o", "json", engine=shared, user=ALICE).json() if j["id"] == job_id
    ]
    next_run = dt.datetime.fromisoformat(row["next_run"]).timestamp()
    assert job_sample(found, "odin_job_next_run_timestamp_seconds", job_id) == next_run

    flag.touch()
    odin("run", "-i", job_id, engine=shared, user=ALICE)
    (run,) = wait_for(functools.partial(succeeded, shared, ALICE, job_id), what="the success")
    found = scrape_until(shared, lambda now: last_success(now) is not None, "the last success")
    assert last_success(found) == run["finished_at"]
    assert job_sample(found, "odin_job_failing", job_id) == 0
    assert found[sent] == 1 and found[attempts["ok"]] == 1  # no recovery alert was asked for

    browser = client(shared)  # another member sees none of it
    log_in_with_link(browser, BOB, shared)
    assert job_id not in browser.get("/metrics").text


# -- 3. headers and login links ----------------------------------------------------------------


def test_every_response_carries_the_security_headers(shared: DashEngine) -> None:
    anonymous = client(shared)
    member = client(shared)
    log_in_with_link(member, ALICE, shared)
    answers = [
        anonymous.get("/login"),
        anonymous.get("/jobs"),  # a redirect
        anonymous.get("/static/vendor/htmx.min.js"),
        anonymous.get("/static/style.css"),
        anonymous.get("/metrics"),  # 401
        anonymous.get("/login/not-a-token"),  # 403
        anonymous.post("/login/password", data={"username": "x", "password": "y"}),  # CSRF
        anonymous.get("/no-such-page"),  # 404
        member.get(link_for(BOB, shared)),  # a login link's confirmation
        member.get("/jobs"),
        member.get("/jobs/table", headers={"HX-Request": "true"}),
        member.get("/cluster"),
        member.get("/metrics"),
    ]
    with member.stream("GET", "/events/jobs") as events:
        answers.append(events)
    assert {a.status_code for a in answers} >= {200, 303, 401, 403, 404}
    for answer in answers:
        for name, value in SECURITY_HEADERS:
            assert answer.headers.get(name) == value, (answer.request.url, name)
    policy = dict(SECURITY_HEADERS)["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe" not in policy


def test_following_a_login_link_logs_no_one_in(shared: DashEngine) -> None:
    path = link_for(ALICE, shared)
    victim = client(shared)
    page = victim.get(path)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert re.search(rf'id="confirm-user">{ALICE}<', page.text)
    assert logged_in_as(victim) is None  # opening the link logged no one in

    attacker = client(shared)  # another browser, even with the victim's nonce
    refused = attacker.post(path, data={"nonce": nonce_of(page)})
    assert refused.status_code == 403 and "another browser" in login_error(refused)
    assert logged_in_as(attacker) is None
    assert victim.post(path, data={"nonce": "guessed"}).status_code == 403
    assert logged_in_as(victim) is None

    page = victim.get(path)  # the link is still unused: confirm it properly
    assert victim.post(path, data={"nonce": nonce_of(page)}).status_code == 303
    assert logged_in_as(victim) == ALICE
    again = client(shared).get(path)
    assert "already used or has expired" in login_error(again)
