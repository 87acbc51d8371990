"""``odin-engine``: the composition root that wires one node together.

Order of start: directories → the executor (start gate, prelude, reaper) → store,
secret and Raft (journal replay) → launcher and ticker → API on the Unix socket and the
TCP port. Order of stop: the reverse, of whatever was started, also when a start fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import grp
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from odin import __version__, config, paths
from odin.cluster.commands import AddNode
from odin.cluster.model import Job, NodeInfo, Run
from odin.cluster.state import Event, JobChanged
from odin.engine import engine_file, memory
from odin.engine.admission import Admission
from odin.engine.alarms import AlarmWatch
from odin.engine.cluster import Membership
from odin.engine.deliverer import Deliverer
from odin.engine.launcher import LaunchContext, Launcher
from odin.engine.loopwatch import LoopWatch
from odin.engine.node import EngineNode
from odin.engine.nodes import NodeAdmin
from odin.engine.service import Service
from odin.engine.started import StartedFile
from odin.engine.ticker import Ticker
from odin.engine.tokens import TokenService
from odin.engine.users import Owners
from odin.errors import OdinError, Unavailable
from odin.executor import Executor, ExecutorPort, Reaper, build_go, install_prelude
from odin.jobs.language import Language
from odin.notify import NotifySettings, Sender
from odin.notify.settings import parse_smtp, read_secret_file
from odin.store.sqlite import Store
from odin.tasks import Background

log = logging.getLogger("odin.engine")


@dataclass(frozen=True)
class EngineConfig:
    name: str
    http: tuple[str, int]
    raft: tuple[str, int]
    data_dir: Path
    socket_path: Path
    join: tuple[str, ...]
    dashboard: tuple[str, int] | None = None
    launch_slots: int = config.LAUNCH_SLOTS
    notify: NotifySettings = dataclasses.field(default_factory=NotifySettings)
    inherited: tuple[str, ...] = ()  # flags that nodes this one starts (odin nodes add) get


def host_timezone() -> str:
    """The host's IANA zone name, for schedules that name none."""
    zone = os.environ.get("TZ", "").lstrip(":")
    if (zone and "/" in zone) or zone == "UTC":
        return zone
    with contextlib.suppress(OSError):
        text = Path("/etc/timezone").read_text().strip()
        if text:
            return text
    with contextlib.suppress(OSError):
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    return "UTC"


def _secret(data_dir: Path) -> str:
    path = data_dir / "cluster.secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def _tune_gc() -> None:
    """Keep the cycle collector off the replicated state.

    With 100,000 jobs the heap holds millions of objects; CPython's default
    thresholds run a young pass every 700 allocations and, from time to time, a
    full pass over all of them (tens of ms, felt as launch lag and slow lists).
    What the journal replay built is frozen (those objects are long-lived and
    free of cycles); later passes run less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*config.GC_THRESHOLDS)
    memory.give_back()  # what the replay and the snapshot's parsing took


def _prepare_dirs(data_dir: Path) -> None:
    """Lay out the data directory: job users may only pass through it to their code,
    builds and the SDK; what holds users' data is the engine's alone."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # Job users of a root engine pass through (no listing); a private engine's are its own.
    os.chmod(data_dir, 0o711 if os.geteuid() == 0 else 0o700)
    for private in ("raft",):
        (data_dir / private).mkdir(mode=0o700, exist_ok=True)
        os.chmod(data_dir / private, 0o700)
    for shared in ("code", "builds"):
        (data_dir / shared).mkdir(exist_ok=True)
        os.chmod(data_dir / shared, 0o711)
    _close_private_files(data_dir)
    sdk = data_dir / "sdk"
    if sdk.exists():
        shutil.rmtree(sdk)
    source = paths.sdk_source()
    if source.is_dir():
        shutil.copytree(source, sdk, ignore=shutil.ignore_patterns("__pycache__", "*_test.go"))
    for root, _dirs, files in os.walk(sdk):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    # ES modules ignore NODE_PATH: they look for node_modules in the folders above the
    # importing file, so `import odin from 'odin'` finds this alias above every job's code.
    modules = data_dir / "code" / "node_modules"
    modules.mkdir(mode=0o755, exist_ok=True)
    os.chmod(modules, 0o755)
    alias = modules / "odin"
    if alias.is_symlink() or alias.exists():
        alias.unlink()
    alias.symlink_to(sdk / "node" / "odin")


def _close_private_files(data_dir: Path) -> None:
    """Take group and other access off the store, Raft files and logs an older engine
    (or a wider umask) left readable; the engine's own umask keeps new ones closed."""
    for folder in (data_dir, data_dir / "raft"):
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mode & 0o077:
                os.chmod(entry.path, stat.S_IMODE(entry.stat().st_mode) & ~0o077)


def _unix_socket(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o755)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise Unavailable(f"{path} exists and is not a socket; remove it or pick --socket")
        _refuse_if_alive(path)
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            os.chown(path, 0, grp.getgrnam(config.ODIN_GROUP).gr_gid)
        os.chmod(path, 0o660)
    else:
        os.chmod(path, 0o600)
    sock.listen(512)
    sock.setblocking(False)
    return sock


def _refuse_if_alive(path: Path) -> None:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return
    finally:
        probe.close()
    raise Unavailable(f"an engine is already serving {path}")


def _tcp_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        raise Unavailable(f"cannot listen on {host}:{port}: {error.strerror}") from error
    sock.listen(512)
    sock.setblocking(False)
    return sock


class Engine:
    """One running node: Raft, launcher, ticker and the API, started and stopped in order."""

    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg
        self.stopping = asyncio.Event()
        self.owners = Owners()  # job owners as the host knows them, cached briefly
        self._api_sockets: list[socket.socket] = []

    def _go_builder(self, executor: ExecutorPort) -> Callable[[Job], Any]:
        cache = self.cfg.data_dir / "builds"
        sdk_go = self.cfg.data_dir / "sdk" / "go" / "odinlib"

        async def build(job: Job) -> Path:
            if job.language is not Language.GO:
                return Path()
            owner = self.owners.of(job)
            return await build_go(
                job.code,
                executor=executor,
                filename=job.filename,
                uid=owner.uid,
                gid=owner.gid,
                groups=owner.groups,
                cache_dir=cache,
                sdk_go_dir=sdk_go if sdk_go.is_dir() else None,
            )

        return build

    async def run(self) -> None:
        """Start the node's parts in order and serve until ``stopping`` is set; then stop
        every part that was started, in the reverse order, also when a start failed."""
        cfg = self.cfg
        async with contextlib.AsyncExitStack() as parts:
            await self._start(parts)
            log.info("odin-engine %s: node %s ready on %s", __version__, cfg.name, cfg.socket_path)
            print(
                f"odin-engine {__version__}: node {cfg.name} serving {cfg.socket_path}", flush=True
            )
            await self.stopping.wait()

    async def _start(self, parts: contextlib.AsyncExitStack) -> None:
        """Start each part in turn, registering on ``parts`` how to stop it once started."""
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        uid = os.geteuid()
        _prepare_dirs(cfg.data_dir)
        executor = await Executor.for_host(uid=uid, bin_dir=cfg.data_dir / "bin")
        parts.push_async_callback(executor.close)
        sdk = cfg.data_dir / "sdk"
        python_start = await asyncio.to_thread(
            install_prelude, sdk / "start", (sdk / "python",), shared=executor.root
        )
        reaper = Reaper(followed=executor.followed)
        reaper.start()
        parts.push_async_callback(reaper.stop)
        store = Store(cfg.data_dir / "store.db")
        parts.callback(store.close)
        secret = _secret(cfg.data_dir)
        me = NodeInfo(cfg.name, _addr(cfg.http), _addr(cfg.raft))
        node = EngineNode(
            name=cfg.name,
            raft_addr=me.raft,
            partners=list(cfg.join),
            data_dir=cfg.data_dir / "raft",
            secret=secret,
            loop=loop,
        )
        parts.callback(node.stop)
        membership = Membership(node, me, secret)
        builder = self._go_builder(executor)
        started = StartedFile(cfg.data_dir / "raft" / "started-runs")
        context = self._launch_context(builder, python_start)
        admission = Admission(self.cfg.launch_slots, clock=time.time)
        launcher = Launcher(
            node, store, context, started, executor, self.owners, admission, clock=time.time
        )
        parts.push_async_callback(launcher.stop)
        ticker = Ticker(node, membership.pick, membership.load)
        parts.push_async_callback(ticker.stop)
        notify = dataclasses.replace(cfg.notify, dashboard_url=self._dashboard_url())
        sender = Sender(notify, clock=time.time)
        parts.push_async_callback(sender.close)
        deliverer = Deliverer(node, sender, time.time, notify.dashboard_url)
        parts.push_async_callback(deliverer.stop)
        alarms = AlarmWatch(node, time.time)
        parts.push_async_callback(alarms.stop)
        node.on_event(launcher.handle)
        node.on_event(ticker.handle)
        node.on_event(deliverer.handle)
        node.on_event(alarms.handle)
        background = Background()  # best-effort steps: prebuilds, listing this node
        parts.push_async_callback(background.close)
        node.on_event(lambda event: _prebuild(event, builder, background))
        node.on_leadership(ticker.leadership)
        node.on_leadership(deliverer.leadership)
        node.on_leadership(alarms.leadership)
        node.on_leadership(lambda leading: _register(leading, node, me, background))
        unix = _unix_socket(cfg.socket_path)
        parts.callback(_remove_socket, unix, cfg.socket_path, cfg.http[1])
        _alias_socket(cfg.socket_path, cfg.http[1])
        tcp = _tcp_socket(*cfg.http)
        parts.callback(tcp.close)
        node.start()
        await self._wait_ready(node)
        _tune_gc()
        await launcher.reconcile()
        for leads in (ticker.leadership, deliverer.leadership, alarms.leadership):
            leads(node.is_leader())
        _register(node.is_leader(), node, me, background)
        membership.start()
        parts.push_async_callback(membership.stop)
        remote_calls = futures.ThreadPoolExecutor(
            config.REMOTE_OUTPUT_THREADS, thread_name_prefix="odin-remote"
        )
        parts.callback(remote_calls.shutdown, wait=False, cancel_futures=True)
        watch = LoopWatch()
        watch.start()
        parts.push_async_callback(watch.stop)
        service = Service(
            node,
            store,
            default_timezone=host_timezone(),
            prepare=builder,
            remote_output=lambda run: _remote_output(membership, remote_calls, run),
            remote_records=membership.fetch_records,
            sender=sender,
            deliverer=deliverer,
        )
        admin = NodeAdmin(
            node,
            membership,
            data_dir=cfg.data_dir,
            socket_path=cfg.socket_path,
            stopping=self.stopping,
            inherited=cfg.inherited,
        )
        self._api_sockets = [unix, tcp]
        tokens = TokenService(node, background, api_url=self._dashboard_url(), clock=time.time)
        servers = self._server(service, launcher, admin, watch, tokens)
        serve = asyncio.ensure_future(servers.serve())
        parts.push_async_callback(_stop_serving, servers, serve)

    def _dashboard_url(self) -> str | None:
        """Where alerts link to: the dashboard's public URL, if this node serves one."""
        if self.cfg.dashboard is None:
            return None
        from odin.dashboard.settings import DashboardSettings

        settings = DashboardSettings.from_env_and_args(
            data_dir=self.cfg.data_dir, address=self.cfg.dashboard
        )
        return settings.public_url

    async def _wait_ready(self, node: EngineNode) -> None:
        """Wait for the journal replay and a leader; a joining node waits to be added."""
        waited = 0
        while not await node.wait_ready(timeout=30):
            waited += 30
            if not self.cfg.join:
                raise Unavailable(
                    "the Raft log did not become ready in 30 s (is a quorum reachable?)"
                )
            log.warning(
                "waited %d s to be added to the cluster (odin nodes add on a member)", waited
            )

    def _launch_context(
        self, builder: Callable[[Job], Any], python_start: str | None
    ) -> LaunchContext:
        sdk = self.cfg.data_dir / "sdk"
        return LaunchContext(
            socket_path=str(self.cfg.socket_path),
            code_root=self.cfg.data_dir / "code",
            sdk_python=str(sdk / "python"),
            sdk_node=str(sdk / "node"),
            build_go=builder,
            python_start=python_start,
        )

    def _server(
        self,
        service: Service,
        launcher: Launcher,
        admin: NodeAdmin,
        watch: LoopWatch,
        tokens: TokenService,
    ) -> Any:
        import uvicorn

        from odin.api.app import create_app, loop_router
        from odin.api.peercred import PeerCredProtocol
        from odin.api.token_api import token_api, token_router, with_token_api

        node_info = admin.rows
        app = create_app(service, launcher, admin)
        app.include_router(loop_router(watch))
        app.include_router(token_router(tokens))
        api = _QuietServer(
            uvicorn.Config(
                app,
                http=PeerCredProtocol,
                log_level="warning",
                lifespan="off",
                access_log=False,
                timeout_graceful_shutdown=2,
            )
        )
        if self.cfg.dashboard is None:
            return _Servers([(api, self._api_sockets)])
        from odin.dashboard.app import create_dashboard
        from odin.dashboard.auth import LinkMinter, login_link_router
        from odin.dashboard.settings import DashboardSettings

        settings = DashboardSettings.from_env_and_args(
            data_dir=self.cfg.data_dir, address=self.cfg.dashboard
        )
        minter = LinkMinter(settings.public_url)
        app.include_router(login_link_router(minter))
        dash_app = create_dashboard(
            service=service,
            launcher=launcher,
            node_info=node_info,
            data_dir=self.cfg.data_dir,
            settings=settings,
            minter=minter,
            loop_watch=watch,
        )
        for_tokens = token_api(service, launcher, tokens, behind_tls=settings.behind_tls)
        dash = _QuietServer(
            uvicorn.Config(
                with_token_api(for_tokens, dash_app),  # /api: API tokens; the rest: the dashboard
                proxy_headers=False,  # no X-Forwarded-For from anyone: login limits per address
                ssl_certfile=settings.tls_cert,  # HTTPS when dashboard.yml names a certificate
                ssl_keyfile=settings.tls_key,
                log_level="warning",
                lifespan="off",
                access_log=False,
                timeout_graceful_shutdown=2,
            )
        )
        dash_socket = _tcp_socket(*self.cfg.dashboard)
        return _Servers([(api, self._api_sockets), (dash, [dash_socket])])


def _addr(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def _alias_path(socket_path: Path, port: int) -> Path:
    return socket_path.parent / f"odin-{port}.sock"


def _alias_socket(socket_path: Path, port: int) -> None:
    """Let ``odin --port PORT`` find this node: ``odin-PORT.sock`` beside its socket."""
    alias = _alias_path(socket_path, port)
    if alias == socket_path:
        return
    with contextlib.suppress(OSError):
        if alias.is_symlink():
            alias.unlink()
        alias.symlink_to(socket_path.name)


def _remove_socket(sock: socket.socket, socket_path: Path, port: int) -> None:
    """Close the API's Unix socket and remove it and its alias."""
    sock.close()
    for path in (socket_path, _alias_path(socket_path, port)):
        with contextlib.suppress(OSError):
            path.unlink()


async def _stop_serving(servers: _Servers, serve: asyncio.Future[None]) -> None:
    """Stop the API and dashboard servers and wait until they have."""
    servers.stop()
    await serve


def _register(leading: bool, node: EngineNode, me: NodeInfo, background: Background) -> None:
    """The leader makes sure it is listed among the members (the first node lists itself)."""
    if not leading:
        return
    known = node.members().get(me.name)
    if known is None or known.raft != me.raft:
        info = NodeInfo(me.name, me.http, me.raft, time.time())
        background.start(node.propose(AddNode(info)))


def _prebuild(event: Event, builder: Callable[[Job], Any], background: Background) -> None:
    """Compile a changed Go job on every node ahead of its first run here."""
    if isinstance(event, JobChanged) and event.job.language is Language.GO:
        background.start(builder(event.job))


async def _remote_output(
    membership: Membership, calls: futures.Executor, run: Run
) -> dict[str, Any] | None:
    """The output of a run kept on another node, asked of it on a thread of ``calls``: a node
    that does not answer holds that thread up to the call's timeout, never the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(calls, _fetch_output, membership, run)


def _fetch_output(membership: Membership, run: Run) -> dict[str, Any] | None:
    """Blocking: the run's output from its node, or None if it cannot be had."""
    member = membership.by_name(run.node)
    if member is None:
        return None
    try:
        path = f"/v1/internal/runs/{quote(run.id, safe='')}/output"
        result: dict[str, Any] = membership.call(member, "GET", path)
        return result
    except (OSError, OdinError):
        return None


class _Servers:
    """Several uvicorn servers, each on its own sockets, started and stopped as one."""

    def __init__(self, servers: list[tuple[Any, list[socket.socket]]]) -> None:
        self.servers = servers

    async def serve(self) -> None:
        await asyncio.gather(*(server.serve(sockets=socks) for server, socks in self.servers))

    def stop(self) -> None:
        for server, _ in self.servers:
            server.should_exit = True


def _quiet_server_class() -> type[Any]:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn, minus its signal handlers: the engine owns SIGTERM and SIGINT."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer


def _QuietServer(uv_config: Any) -> Any:
    return _quiet_server_class()(uv_config)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--name", default=config.DEFAULT_NODE_NAME, show_default=True, help="This node's name."
)
@click.option(
    "--http",
    "http",
    default=f":{config.DEFAULT_HTTP_PORT}",
    show_default=True,
    help="HTTP address of this node (:PORT or HOST:PORT).",
)
@click.option(
    "--raft",
    "raft",
    default=f":{config.DEFAULT_RAFT_PORT}",
    show_default=True,
    help="Raft address of this node (:PORT or HOST:PORT).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the journal, run store and builds live "
    "[default: /var/lib/odin as root, ~/.local/share/odin otherwise].",
)
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    envvar="ODIN_SOCKET",
    help="The Unix socket the CLI talks to [env ODIN_SOCKET; "
    "default: /run/odin/odin.sock as root].",
)
@click.option(
    "--join", multiple=True, help="Raft address of a cluster member to join (repeatable)."
)
@click.option(
    "--dashboard",
    "dashboard",
    default=f"127.0.0.1:{config.DEFAULT_DASHBOARD_PORT}",
    show_default=True,
    help="Address of the web dashboard (HOST:PORT or :PORT).",
)
@click.option("--no-dashboard", is_flag=True, help="Do not serve the web dashboard.")
@click.option(
    "--launch-slots",
    type=click.IntRange(1, 4096),
    default=config.LAUNCH_SLOTS,
    show_default=True,
    help="Runs whose processes this node makes and starts at once; the rest wait their turn.",
)
@click.option(
    "--smtp",
    default=None,
    metavar="URL",
    help="SMTP server for mailto: alerts: smtp://[user@]host[:port][?tls=starttls|ssl|none] "
    "(starttls unless on loopback).",
)
@click.option(
    "--smtp-password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="File holding the SMTP password (mode 600).",
)
@click.option("--smtp-from", default=None, metavar="ADDRESS", help="From: of alert mails.")
@click.option(
    "--webhook-secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="File holding the key that signs webhook alerts (X-Odin-Signature; mode 600).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    is_eager=True,
    expose_value=False,
    callback=engine_file.load_defaults,
    help="YAML file of settings, keyed by these options' long names (smtp: ..., "
    f"launch-slots: ...); flags win [default: {engine_file.DEFAULT_PATH} if it exists].",
)
@click.version_option(__version__, "-V", "--version", prog_name="odin-engine")
def main(
    name: str,
    http: str,
    raft: str,
    data_dir: Path | None,
    socket_path: Path | None,
    join: tuple[str, ...],
    dashboard: str,
    no_dashboard: bool,
    launch_slots: int,
    smtp: str | None,
    smtp_password_file: Path | None,
    smtp_from: str | None,
    webhook_secret_file: Path | None,
    log_level: str,
) -> None:
    """Run an Odin engine node: the scheduler, its API and its Raft peer.

    One node needs no setup: it forms a one-node cluster with its journal in the
    data directory. Only root and members of group 'odin' may use its socket.
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if os.geteuid() == 0:  # whatever the unit or shell set: users' data stays the engine's
        os.umask(config.ENGINE_UMASK)
    try:
        http_addr = paths.parse_address(http)
        raft_addr = paths.parse_address(raft)
        join_addrs = tuple("{}:{}".format(*paths.parse_address(j)) for j in join)
        dashboard_addr = None if no_dashboard else paths.parse_address(dashboard)
        notify = _notify_settings(smtp, smtp_password_file, smtp_from, webhook_secret_file)
    except OdinError as error:
        raise click.UsageError(str(error)) from None
    cfg = EngineConfig(
        name=name,
        http=http_addr,
        raft=raft_addr,
        data_dir=(data_dir or paths.default_data_dir()).resolve(),
        socket_path=socket_path or paths.socket_for_port(http_addr[1], engine_uid=os.geteuid()),
        join=join_addrs,
        dashboard=dashboard_addr,
        launch_slots=launch_slots,
        notify=notify,
        inherited=_inherited(
            launch_slots, smtp, smtp_password_file, smtp_from, webhook_secret_file
        ),
    )
    try:
        asyncio.run(_serve(cfg))
    except OdinError as error:
        raise click.ClickException(str(error)) from None


def _inherited(launch_slots: int, *notify: str | Path | None) -> tuple[str, ...]:
    """The flags a node started by this one (``odin nodes add -a :PORT``) gets as well."""
    names = ("--smtp", "--smtp-password-file", "--smtp-from", "--webhook-secret-file")
    flags = ["--launch-slots", str(launch_slots)]
    for name, value in zip(names, notify, strict=True):
        if value is not None:
            flags += [name, str(Path(value).resolve()) if isinstance(value, Path) else value]
    return tuple(flags)


def _notify_settings(
    smtp: str | None,
    password_file: Path | None,
    sender: str | None,
    secret_file: Path | None,
) -> NotifySettings:
    """How this node sends alerts, from its flags; secret files are read once, here."""
    password = None if password_file is None else read_secret_file(password_file, "SMTP password")
    secret = None if secret_file is None else read_secret_file(secret_file, "webhook secret")
    return NotifySettings(
        smtp=None if smtp is None else parse_smtp(smtp),
        smtp_password=password,
        smtp_from=sender or NotifySettings.default_from(),
        webhook_secret=None if secret is None else secret.encode(),
    )


async def _serve(cfg: EngineConfig) -> None:
    engine = Engine(cfg)
    loop = asyncio.get_running_loop()
    # Python 3.11's default child watcher starts a thread per child process; a pidfd
    # watcher waits for all of them from the loop itself.
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(loop)
    asyncio.set_child_watcher(watcher)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, engine.stopping.set)
    await engine.run()


if __name__ == "__main__":
    main()
