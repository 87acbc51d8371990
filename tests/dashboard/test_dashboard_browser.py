"""The dashboard in a real browser: Debian's chromium driven by Playwright (needs root).

One engine (with the dashboard) serves the whole module; real users deploy
real jobs with the real CLI; logins go through a one-time link, PAM and an
OpenID Connect provider (``oidc-provider-mock``) on loopback. Screenshots of
the main pages are saved under docs/images/.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

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

pytestmark = [
    pytest.mark.skipif(needs_root, reason="needs root to create users and run jobs as them"),
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium"),
    pytest.mark.slow,
]

playwright_api = pytest.importorskip("playwright.sync_api")

ALICE, BOB, EVE = "odin-alice", "odin-bob", "odin-eve"
ALICE_EMAIL = "alice@example.test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
TIMEOUT_MS = 20_000

SLOW_PRINTER = """\
import time, pyodin
odin = pyodin.Odin()
for i in range(12):
    print(f"line {i}", flush=True)
    time.sleep(0.4)
odin.watch("rows", 7)
odin.condition("rows found", True)
odin.result("all lines printed", 0)
"""

QUICK = """\
import os, pyodin
odin = pyodin.Odin()
n = len(os.listdir(".")) + 3
print("counted", n)
odin.watch("items", n)
odin.watch("label", "not a number")
odin.result("counted items", 0)
"""


@dataclass
class DashboardEngine(Engine):
    """A real ``odin-engine`` serving its dashboard on a free loopback port."""

    dashboard_port: int | None = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start(self) -> DashboardEngine:
        self.env = {"ODIN_DASHBOARD_URL": self.url, **self.env}
        super().start()
        return self


def set_password(user: str, password: str | None) -> None:
    """Give ``user`` a password (None: lock the account again)."""
    if password is None:
        subprocess.run(["usermod", "-p", "!", user], check=True)
        return
    subprocess.run(["chpasswd"], input=f"{user}:{password}\n", text=True, check=True)


# -- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="odin-dash-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    from oidc_provider_mock import User, run_server_in_thread  # type: ignore[import-untyped]

    users = [
        User(sub="alice", claims={"email": ALICE_EMAIL, "email_verified": True}),
        User(sub="mallory", claims={"email": "mallory@example.test", "email_verified": True}),
    ]
    with run_server_in_thread(user_claims=users) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def engine(world: Path, provider: str) -> Iterator[DashboardEngine]:
    oidc = {
        "ODIN_OIDC_ISSUER": provider,
        "ODIN_OIDC_CLIENT_ID": "odin-test",
        "ODIN_OIDC_CLIENT_SECRET": secrets.token_hex(8),
        "ODIN_OIDC_NAME": "Test IdP",
        "ODIN_OIDC_USERS": f"{ALICE_EMAIL}={ALICE}",
    }
    running = DashboardEngine(root=world, env=oidc).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def passwords() -> Iterator[dict[str, str]]:
    chosen = {ALICE: secrets.token_urlsafe(12), EVE: secrets.token_urlsafe(12)}
    for user, password in chosen.items():
        set_password(user, password)
    yield chosen
    for user in chosen:
        set_password(user, None)


@pytest.fixture(scope="module")
def jobs(engine: DashboardEngine, world: Path) -> dict[str, str]:
    """alice's and bob's jobs, deployed with the CLI as each user."""
    ids: dict[str, str] = {}
    for user, name, code in (
        (ALICE, "slow-printer", SLOW_PRINTER),
        (ALICE, "quick-count", QUICK),
        (BOB, "bobs-secret", "print('bob')\n"),
    ):
        path = write_job(user_dir(world / name, user), name, code)
        odin("deploy", "-f", str(path), engine=engine, user=user)
        ids[name] = job_id_of(path)
    return ids


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser tab; the test fails if the page broke its Content-Security-Policy."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    refused: list[str] = []
    tab.on("console", lambda message: refused.extend(csp_violations(message.text)))
    yield tab
    context.close()
    assert not refused, f"the page broke its Content-Security-Policy: {refused}"


def csp_violations(text: str) -> list[str]:
    """Chromium logs each thing a Content-Security-Policy stopped to the console."""
    return [text] if "Content Security Policy" in text else []


def link_for(user: str, engine: DashboardEngine) -> str:
    url = odin("dashboard", "--no-open", engine=engine, user=user).stdout.strip()
    assert url.startswith(f"{engine.url}/login/"), url
    return url


def log_in(page: Any, user: str, engine: DashboardEngine) -> None:
    page.goto(link_for(user, engine))
    assert page.inner_text("#confirm-user") == user
    page.click("#confirm-login")
    page.wait_for_selector("#whoami")
    assert page.inner_text("#whoami").startswith(user)


def shoot(page: Any, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / name), full_page=True)


def runs_of(engine: DashboardEngine, job_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = odin(
        "log", "-i", job_id, "-o", "json", engine=engine, user=ALICE
    ).json()
    return result


# -- tests ----------------------------------------------------------------------------


def test_link_logs_in_once_and_shows_only_own_jobs(
    engine: DashboardEngine, jobs: dict[str, str], page: Any, browser: Any
) -> None:
    url = link_for(ALICE, engine)
    page.goto(url)
    assert page.inner_text("#confirm-user") == ALICE  # opening it only asks
    shoot(page, "dashboard-confirm-link.png")
    page.click("#confirm-login")
    page.wait_for_selector("#jobs")
    assert page.url == f"{engine.url}/jobs"
    names = page.locator("a.job-link").all_inner_texts()
    assert sorted(names) == ["quick-count", "slow-printer"]
    assert "bobs-secret" not in page.content()

    page.fill("input[name=q]", "quick")
    playwright_api.expect(page.locator("a.job-link")).to_have_count(
        1
    )  # no eval: the CSP forbids it
    assert page.locator("a.job-link").inner_text() == "quick-count"
    page.evaluate("window.notReloaded = true")
    page.press("input[name=q]", "Enter")  # htmx takes the submit: the page stays
    playwright_api.expect(page.locator("a.job-link")).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True

    other = browser.new_context()
    try:
        second = other.new_page()
        second.goto(url)
        assert "already used or has expired" in second.inner_text("#login-error")
        second.goto(f"{engine.url}/jobs/{jobs['bobs-secret']}")
        assert second.url.endswith("/login")
    finally:
        other.close()
    page.goto(f"{engine.url}/jobs/{jobs['bobs-secret']}")
    assert "no job with id" in page.inner_text("#error-message")


def test_job_page_shows_runs_and_charts_without_reload(
    engine: DashboardEngine, jobs: dict[str, str], page: Any
) -> None:
    job_id = jobs["quick-count"]
    log_in(page, ALICE, engine)
    page.goto(f"{engine.url}/jobs/{job_id}")
    page.wait_for_selector("#no-runs")
    assert page.get_attribute("#chart-duration", "data-points") == "0"
    page.evaluate("window.notReloaded = true")

    page.click("#run-now")  # confirmation dialog accepted by the fixture
    page.wait_for_selector("#flash .flash")
    page.wait_for_selector("#runs tr[data-status=succeeded]")
    page.wait_for_selector("#chart-duration[data-points='1']")
    page.wait_for_selector("#watch-charts [data-series=items]")
    assert page.locator("#watch-charts .chart").count() == 1  # the text watch is not charted

    odin("run", "-i", job_id, engine=engine, user=ALICE)
    page.wait_for_selector("#chart-duration[data-points='2']")
    page.wait_for_selector("#chart-lag[data-points='2']")
    assert page.locator("#runs tbody tr").count() == 2
    assert page.evaluate("window.notReloaded") is True
    assert "counted items" in page.inner_text("#job-bottom")
    shoot(page, "dashboard-job.png")

    page.click("#pause")
    page.wait_for_selector("#resume")
    described = odin("describe", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    assert described["paused"] is True
    page.click("#resume")
    page.wait_for_selector("#pause")
    assert page.evaluate("window.notReloaded") is True

    page.fill("#pause-until", "in 2 hours")  # issue #26: paused until a moment
    page.click("#pause-until-button")
    page.wait_for_selector("#paused-until")
    described = odin("describe", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    assert described["paused"] is False and described["paused_until"] is not None
    page.click("#resume")
    page.wait_for_selector("#paused-until", state="detached")
    described = odin("describe", "-i", job_id, "-o", "json", engine=engine, user=ALICE).json()
    assert described["paused_until"] is None


def test_live_output_of_a_running_run(
    engine: DashboardEngine, jobs: dict[str, str], page: Any
) -> None:
    job_id = jobs["slow-printer"]
    log_in(page, ALICE, engine)
    odin("run", "-i", job_id, engine=engine, user=ALICE)
    running: list[dict[str, Any]] = wait_for(
        lambda: [r for r in runs_of(engine, job_id) if r["status"] == "running"],
        what="the run to start",
    )
    page.goto(f"{engine.url}/runs/{running[0]['id']}")
    page.wait_for_selector("#live-output")
    page.locator("#live-output", has_text="line 4").wait_for()
    assert runs_of(engine, job_id)[0]["status"] == "running"  # the text came while it ran
    shoot(page, "dashboard-live-output.png")
    page.wait_for_selector("#output")  # the full output replaces the live view at the end
    text = page.inner_text("#output")
    assert all(f"line {i}" in text for i in range(12))


def test_password_login_member_and_non_member(
    engine: DashboardEngine, jobs: dict[str, str], passwords: dict[str, str], page: Any
) -> None:
    page.goto(f"{engine.url}/login")
    shoot(page, "dashboard-login.png")
    page.fill("input[name=username]", ALICE)
    page.fill("input[name=password]", "not-" + passwords[ALICE])
    page.click("#password-form button")
    refused = page.inner_text("#login-error")
    assert "wrong user name or password" in refused

    page.fill("input[name=username]", EVE)
    page.fill("input[name=password]", passwords[EVE])
    page.click("#password-form button")
    assert page.inner_text("#login-error") == refused  # a right password tells nothing more
    page.goto(f"{engine.url}/jobs")
    assert page.url.endswith("/login")

    page.fill("input[name=username]", ALICE)
    page.fill("input[name=password]", passwords[ALICE])
    page.click("#password-form button")
    page.wait_for_selector("#jobs")
    assert page.inner_text("#whoami").startswith(ALICE)


def test_oidc_login_with_a_provider_on_loopback(
    engine: DashboardEngine, jobs: dict[str, str], page: Any
) -> None:
    page.goto(f"{engine.url}/login")
    page.click("#oidc-login")
    page.click("button[value=alice]")  # the provider's form: log in as its user "alice"
    page.wait_for_selector("#jobs")
    assert page.inner_text("#whoami").startswith(ALICE)
    assert "bobs-secret" not in page.content()

    page.click("header button.linklike")  # log out
    page.wait_for_selector("#password-form")
    page.click("#oidc-login")
    page.click("button[value=mallory]")
    assert "not mapped to a Linux user" in page.inner_text("#login-error")


def test_posts_need_the_csrf_token(
    engine: DashboardEngine, jobs: dict[str, str], page: Any
) -> None:
    log_in(page, ALICE, engine)
    before = len(runs_of(engine, jobs["quick-count"]))
    answer = page.request.post(f"{engine.url}/jobs/{jobs['quick-count']}/run")
    assert answer.status == 403 and "CSRF" in answer.text()
    assert len(runs_of(engine, jobs["quick-count"])) == before


def test_cluster_page_and_metrics(engine: DashboardEngine, jobs: dict[str, str], page: Any) -> None:
    log_in(page, ALICE, engine)
    page.goto(f"{engine.url}/cluster")
    page.wait_for_selector("#nodes tr[data-node=master-node]")
    assert "leader" in page.inner_text("#nodes")
    shoot(page, "dashboard-cluster.png")
    page.goto(f"{engine.url}/jobs")
    page.wait_for_selector("#jobs .badge.succeeded")
    shoot(page, "dashboard-jobs.png")

    mine = page.request.get(f"{engine.url}/metrics").text()
    assert f'job_id="{jobs["quick-count"]}"' in mine and jobs["bobs-secret"] not in mine
    token = (engine.data_dir / "metrics.token").read_text().strip()
    request = urllib.request.Request(
        f"{engine.url}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read().decode()
    assert 'odin_runs_total{job_id="' + jobs["quick-count"] in text
    assert "odin_run_duration_seconds_bucket" in text and "odin_run_lag_seconds_count" in text
    assert (
        f'odin_watch_value{{job_id="{jobs["quick-count"]}",job="quick-count",name="items"}}' in text
    )
    assert "odin_raft_commit_index" in text and "odin_is_leader" in text
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{engine.url}/metrics", timeout=10)
    assert refused.value.code == 401


def test_session_survives_an_engine_restart(
    engine: DashboardEngine, jobs: dict[str, str], page: Any
) -> None:
    log_in(page, ALICE, engine)
    engine.stop(signal.SIGTERM)
    engine.start()
    page.goto(f"{engine.url}/jobs")
    page.wait_for_selector("#jobs")
    assert page.inner_text("#whoami").startswith(ALICE)
