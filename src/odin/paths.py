"""Where things live: the engine's socket and data directory, for root and for others.

The CLI and the engine agree on the socket path through this one module:
``ODIN_SOCKET`` wins; otherwise the path follows from who runs and which HTTP
port names the node (the default node's socket is ``odin.sock``, another
node's on the same host is ``odin-<port>.sock``).
"""

from __future__ import annotations

import os
from pathlib import Path

from odin import config
from odin.errors import InvalidInput


def runtime_dir(uid: int | None = None) -> Path:
    uid = os.geteuid() if uid is None else uid
    if uid == 0:
        return Path(config.ROOT_SOCKET_PATH).parent
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return Path(xdg) / "odin" if xdg else Path(f"/tmp/odin-{uid}")


def socket_for_port(port: int, *, engine_uid: int = 0) -> Path:
    name = "odin.sock" if port == config.DEFAULT_HTTP_PORT else f"odin-{port}.sock"
    return runtime_dir(engine_uid) / name


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path(config.ROOT_DATA_DIR)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "odin"


def parse_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``:3939``, ``3939`` or ``host:3939`` → (host, port)."""
    host, _, port_text = text.rpartition(":") if ":" in text else ("", "", text)
    try:
        port = int(port_text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not an address: use :PORT, PORT or HOST:PORT") from None
    if not 0 < port < 65536:
        raise InvalidInput(f"port {port} is out of range (1-65535)")
    return (host or default_host), port


def sdk_source() -> Path:
    """The SDKs shipped with this install (package data, or the checkout's sdk/)."""
    package = Path(__file__).resolve().parent
    packaged = package / "_sdk"
    return packaged if packaged.is_dir() else package.parents[1] / "sdk"
