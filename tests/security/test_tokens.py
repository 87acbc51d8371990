"""API tokens, end to end: a real engine, the real CLI as other Unix users, real HTTP(S).

Alice makes tokens over the socket; the same ``odin`` CLI, run as Eve (who is not even in
group odin) with ``ODIN_URL`` and ``ODIN_TOKEN``, deploys and runs Alice's job through the
dashboard's listener, and the run runs as Alice. A token reaches nothing of Bob's, does no
more than its scopes, never makes tokens, touches nodes or backs up, and stops at once when
it expires or is revoked. Its secret is nowhere in clear: not in ``odin token list``, the
engine's log, nor any file of the data directory (the Raft journal and dumps included).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine_harness import (
    BIN,
    Engine,
    Result,
    free_port,
    job_id_of,
    needs_root,
    odin,
    user_dir,
    wait_for,
    write_job,
)

pytestmark = [pytest.mark.root, pytest.mark.skipif(needs_root, reason="needs root")]

ALICE, BOB, EVE = "odin-alice", "odin-bob", "odin-eve"
WHO = "import os\nprint('uid', os.getuid(), 'gid', os.getgid())\n"


@pytest.fixture(scope="module")
def world() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="odin-tokens-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def engine(world: Path) -> Iterator[Engine]:
    port = free_port()
    running = Engine(
        root=world / "engine",
        dashboard_port=port,
        env={"ODIN_DASHBOARD_URL": f"http://127.0.0.1:{port}"},
        extra=["--log-level", "info"],  # the log of every token use
    )
    running.root.mkdir()
    os.chmod(running.root, 0o755)
    running.start()
    yield running
    running.stop()


def url_of(engine: Engine) -> str:
    return f"http://127.0.0.1:{engine.dashboard_port}"


def make_token(engine: Engine, user: str, scope: str, *extra: str) -> dict[str, Any]:
    made: dict[str, Any] = odin(
        "token", "create", "--name", "ci", "--scope", scope, *extra, "-o", "json",
        engine=engine, user=user,
    ).json()  # fmt: skip
    return made


def remote(
    *args: str, url: str, token: str, user: str = EVE, cwd: Path | None = None, **env: str
) -> Result:
    """The real ``odin`` as ``user``, with no socket in sight: ODIN_URL and ODIN_TOKEN only."""
    plain = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "ODIN_URL": url, "ODIN_TOKEN": token}
    plain |= env
    command = [
        "/usr/sbin/runuser", "-u", user, "--", "env", "-i",
        *(f"{k}={v}" for k, v in plain.items()), str(BIN / "odin"), *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=60)
    return Result(done.returncode, done.stdout, done.stderr)


def finished_output(engine: Engine, user: str, job_id: str) -> str:
    """The output of the job's last run once it has finished (read over the socket)."""

    def done() -> str | None:
        runs = odin("log", "-i", job_id, "-o", "json", engine=engine, user=user).json()
        if not runs or runs[-1]["status"] in ("planned", "running"):  # oldest first
            return None
        return str(runs[-1]["id"])

    run_id = wait_for(done, timeout=30, what=f"a finished run of {job_id}")
    out = odin("log", "-i", job_id, "--output", engine=engine, user=user).stdout
    assert run_id in out
    return out


def deploy_as(engine: Engine, world: Path, user: str, name: str) -> str:
    folder = user_dir(world / "jobs", user)
    yaml_path = write_job(folder, name, WHO)
    odin("deploy", "-f", str(yaml_path), engine=engine, user=user)
    return job_id_of(yaml_path)


def api(engine: Engine, token: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url_of(engine), timeout=30) as http:
        return http.request(method, "/api/v1" + path, headers=headers, **kw)


# -- the tests ------------------------------------------------------------------------


def test_a_token_deploys_and_runs_its_owners_job_from_another_user(
    engine: Engine, world: Path, alice: Any
) -> None:
    token = make_token(engine, ALICE, "deploy,run")
    assert token["scopes"] == ["deploy", "run"] and token["token"].startswith("odin_")
    folder = user_dir(world / "eve", EVE)  # Eve's own files: she is not even in group odin
    yaml_path = write_job(folder, "remote", WHO)
    job_id = job_id_of(yaml_path)
    url = url_of(engine)

    deployed = remote("deploy", "-f", str(yaml_path), url=url, token=token["token"], cwd=folder)
    assert deployed.returncode == 0, deployed.stderr
    assert f"Deployed job {job_id}" in deployed.stdout
    started = remote("run", "-i", job_id, url=url, token=token["token"])
    assert started.returncode == 0, started.stderr

    mine = odin("list", "-o", "json", engine=engine, user=ALICE).json()
    assert job_id in [job["id"] for job in mine]  # Alice's job, deployed by her token
    out = finished_output(engine, ALICE, job_id)
    assert f"uid {alice.pw_uid} gid {alice.pw_gid}" in out  # it ran as Alice, not Eve

    listed = remote("list", "-o", "json", url=url, token=token["token"])
    assert [job["id"] for job in listed.json()] == [job["id"] for job in mine]
    seen = remote("log", "-i", job_id, "--output", url=url, token=token["token"])
    assert f"uid {alice.pw_uid}" in seen.stdout

    log = engine.log_path.read_text()
    assert f"API token {token['id']} of {ALICE} (uid {alice.pw_uid}): deploy job {job_id}" in log
    assert f"API token {token['id']} of {ALICE} (uid {alice.pw_uid}): run job {job_id}" in log


def test_a_token_never_reaches_another_members_jobs(
    engine: Engine, world: Path, alice: Any
) -> None:
    bobs = deploy_as(engine, world, BOB, "bobs")
    token = make_token(engine, ALICE, "deploy,run")["token"]
    url = url_of(engine)
    listed = remote("list", "-o", "json", url=url, token=token)
    assert bobs not in listed.stdout
    for args in (
        ("describe", "-i", bobs),
        ("run", "-i", bobs),
        ("remove", "-i", bobs),
        ("log", "-i", bobs),
        ("modify", "-i", bobs, "-n", "mine now"),
    ):
        result = remote(*args, url=url, token=token)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert f"no job with id {bobs}" in result.stderr
    for method, path in (("GET", f"/jobs/{bobs}"), ("GET", f"/jobs/{bobs}/files")):
        assert api(engine, token, method, path).status_code == 404
    bob_sees = odin("describe", "-i", bobs, "-o", "json", engine=engine, user=BOB).json()
    assert bob_sees["name"] == "bobs"  # unchanged


def test_a_read_token_cannot_deploy_or_run(engine: Engine, world: Path, alice: Any) -> None:
    job_id = deploy_as(engine, world, ALICE, "readable")
    token = make_token(engine, ALICE, "read")["token"]
    url = url_of(engine)
    assert remote("describe", "-i", job_id, url=url, token=token).returncode == 0
    folder = user_dir(world / "eve-read", EVE)
    yaml_path = write_job(folder, "nope", WHO)
    refused = remote("deploy", "-f", str(yaml_path), url=url, token=token)
    assert refused.returncode == 4 and "needs the 'deploy' scope" in refused.stderr
    refused = remote("run", "-i", job_id, url=url, token=token)
    assert refused.returncode == 4 and "needs the 'run' scope" in refused.stderr
    refused = remote("remove", "-i", job_id, url=url, token=token)
    assert refused.returncode == 4 and "needs the 'deploy' scope" in refused.stderr
    answer = api(engine, token, "POST", f"/jobs/{job_id}/runs")
    assert answer.status_code == 403 and "'run' scope" in answer.json()["error"]["message"]
    assert job_id_of(yaml_path) not in odin("list", engine=engine, user=ALICE).stdout


def test_expired_revoked_and_unknown_tokens_get_401(engine: Engine, alice: Any) -> None:
    short = make_token(engine, ALICE, "read", "--expires", "1s")
    revoked = make_token(engine, ALICE, "read")
    assert api(engine, revoked["token"], "GET", "/jobs").status_code == 200
    gone = odin("token", "revoke", revoked["id"], engine=engine, user=ALICE)
    assert f"Revoked API token {revoked['id']}" in gone.stdout
    answer = api(engine, revoked["token"], "GET", "/jobs")
    assert answer.status_code == 401 and "was revoked" in answer.json()["error"]["message"]
    assert answer.headers["www-authenticate"] == 'Bearer realm="odin"'
    time.sleep(1.2)
    answer = api(engine, short["token"], "GET", "/jobs")
    assert answer.status_code == 401 and "expired" in answer.json()["error"]["message"]
    cli = remote("list", url=url_of(engine), token=short["token"])
    assert cli.returncode == 4 and "expired" in cli.stderr
    forged = revoked["token"][:-8] + "00000000"  # a right id with a wrong secret
    for token in (forged, "odin_" + "0" * 16 + "_" + "0" * 64, "nonsense", None):
        answer = api(engine, token, "GET", "/jobs")
        assert answer.status_code == 401, (token, answer.text)
    assert "unknown API token" in api(engine, forged, "GET", "/jobs").json()["error"]["message"]
    rows = odin("token", "list", "-o", "json", engine=engine, user=ALICE).json()
    states = {row["id"]: row["state"] for row in rows}
    assert states[short["id"]] == "expired" and states[revoked["id"]] == "revoked"
    # Bob may neither see nor revoke Alice's tokens; root sees and revokes them.
    assert short["id"] not in odin("token", "list", engine=engine, user=BOB).stdout
    bobs_try = odin("token", "revoke", short["id"], engine=engine, user=BOB, check=False)
    assert bobs_try.returncode == 3
    assert short["id"] in odin("token", "list", engine=engine).stdout
    assert odin("token", "revoke", short["id"], engine=engine).returncode == 0


def test_tokens_cannot_make_tokens_or_touch_nodes_backups_or_logins(
    engine: Engine, world: Path, alice: Any
) -> None:
    token = make_token(engine, ALICE, "read,deploy,run")["token"]
    url = url_of(engine)
    for args, what in (
        (("token", "create", "--name", "more", "--scope", "read"), "make, list or revoke tokens"),
        (("token", "list"), "make, list or revoke tokens"),
        (("nodes", "get"), "see or change the cluster's nodes"),
        (
            ("nodes", "add", "-n", "evil", "-a", ":1", "-r", ":2"),
            "see or change the cluster's nodes",
        ),
        (("backup", "-f", str(world / "eve-backup.json")), "back up or restore"),
        (("dashboard", "--no-open"), "log in to the dashboard"),
    ):
        result = remote(*args, url=url, token=token, user=ALICE, HOME=str(world))
        assert result.returncode == 4, (args, result.stdout, result.stderr)
        assert f"an API token cannot {what}" in result.stderr
    assert not (world / "eve-backup.json").exists()
    assert api(engine, token, "DELETE", "/nodes/master-node").status_code == 403
    assert api(engine, token, "POST", "/admin/restore", json={}).status_code == 403
    # A root token: never root's powers, and never a deploy (root's jobs run as root).
    refused = odin(
        "token", "create", "--name", "r", "--scope", "deploy", engine=engine, check=False
    )
    assert refused.returncode == 4 and "root's tokens may not deploy" in refused.stderr
    roots = make_token(engine, "root", "read,run")["token"]
    assert remote("list", "-o", "json", url=url, token=roots).json() == []  # not Alice's
    who = api(engine, roots, "GET", "/whoami").json()
    assert who["uid"] == 0 and who["root"] is False
    # A dashboard session never stands for a token, nor a token for a session.
    with httpx.Client(base_url=url_of(engine), timeout=30) as browser:
        link = odin("dashboard", "--no-open", engine=engine, user=ALICE).stdout.strip()
        path = link.removeprefix(url_of(engine))
        nonce = re.search(r'name="nonce" value="([^"]+)"', browser.get(path).text)
        assert nonce is not None
        assert browser.post(path, data={"nonce": nonce.group(1)}).status_code == 303
        assert browser.get("/jobs").status_code == 200  # logged in as Alice
        assert browser.get("/api/v1/jobs").status_code == 401  # the cookie is not a token
    with httpx.Client(base_url=url_of(engine), timeout=30) as http:
        page = http.get("/jobs", headers={"Authorization": f"Bearer {token}"})
        assert page.status_code == 303 and page.headers["location"] == "/login"


def test_the_secret_is_never_kept_or_shown_in_clear(engine: Engine, alice: Any) -> None:
    made = make_token(engine, ALICE, "deploy,run")
    secret = made["token"]
    assert api(engine, secret, "GET", "/jobs").status_code == 200
    listed = odin("token", "list", "-o", "json", engine=engine, user=ALICE)
    shown = odin("token", "list", engine=engine, user=ALICE)
    rows = [row for row in listed.json() if row["id"] == made["id"]]
    assert rows and rows[0]["last_used_at"] is not None
    secret_part = secret.rsplit("_", 1)[1]
    for text in (listed.stdout, shown.stdout, engine.log_path.read_text()):
        assert secret_part not in text
    # Every file of the data directory (the Raft journal and its dumps included): the hash
    # of the token is there (so the search reads the replicated state), never the secret.
    import hashlib

    digest = hashlib.sha256(secret.encode()).hexdigest().encode()
    found_digest = False
    for path in engine.data_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert secret_part.encode() not in data, path
            found_digest = found_digest or digest in data
    assert found_digest


def test_the_cli_refuses_plain_http_to_another_host(world: Path) -> None:
    for url in ("http://example.com:4200", "http://192.0.2.1:4200", "http://[2001:db8::1]:4200"):
        result = remote("list", url=url, token="odin_x", user=ALICE)
        assert result.returncode == 2, (url, result.stderr)
        assert "plain HTTP to another host" in result.stderr
    missing = remote("list", url="https://odin.example.com", token="", user=ALICE)
    assert missing.returncode == 2 and "ODIN_TOKEN is not" in missing.stderr


def _outward_address() -> str | None:
    """One of this host's addresses that is not loopback, if it has one."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return next((a for a in out if "." in a and not a.startswith("127.")), None)


def test_the_engine_refuses_tokens_over_plain_http_from_another_address(
    world: Path, alice: Any
) -> None:
    address = _outward_address()
    if address is None:
        pytest.skip("this host has no address but loopback")
    root = world / "plain"
    root.mkdir()
    os.chmod(root, 0o755)
    port = free_port()
    plain = Engine(root=root, dashboard_port=port, extra=["--dashboard", f"{address}:{port}"])
    plain.start()
    try:
        token = make_token(plain, ALICE, "read")["token"]
        with httpx.Client(base_url=f"http://{address}:{port}", timeout=30) as http:
            answer = http.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 403
        assert "only over HTTPS" in answer.json()["error"]["message"]
    finally:
        plain.stop()


def test_https_with_the_dashboards_own_certificate(world: Path, alice: Any) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate")
    root = world / "tls"
    root.mkdir()
    os.chmod(root, 0o755)
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)
    port = free_port()
    env = {"ODIN_DASHBOARD_TLS_CERT": str(cert), "ODIN_DASHBOARD_TLS_KEY": str(key)}
    tls = Engine(root=root, dashboard_port=port, env=env).start()
    try:
        made = make_token(tls, ALICE, "read")
        assert made["url"] == f"https://localhost:{port}"
        url = f"https://127.0.0.1:{port}"
        untrusted = remote("list", url=url, token=made["token"], user=ALICE)
        assert untrusted.returncode == 7 and "not trusted" in untrusted.stderr
        trusted = remote("list", url=url, token=made["token"], user=ALICE, ODIN_CA_FILE=str(cert))
        assert trusted.returncode == 0, trusted.stderr
    finally:
        tls.stop()


def test_refused_tokens_are_throttled_per_address(engine: Engine, alice: Any) -> None:
    good = make_token(engine, ALICE, "read")["token"]
    transport = httpx.HTTPTransport(local_address="127.0.0.7")  # an address of its own
    with httpx.Client(base_url=url_of(engine), transport=transport, timeout=30) as http:
        bad = {"Authorization": "Bearer odin_" + "1" * 16 + "_" + "2" * 64}
        for _ in range(20):  # TOKEN_FAILURES_PER_ADDRESS
            assert http.get("/api/v1/jobs", headers=bad).status_code == 401
        answer = http.get("/api/v1/jobs", headers={"Authorization": f"Bearer {good}"})
        assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0
    assert api(engine, good, "GET", "/jobs").status_code == 200  # other addresses go on
