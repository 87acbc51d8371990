"""A real webhook receiver for end-to-end alert tests: it records each POST and answers 200."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine_harness import free_port


@dataclass(frozen=True)
class Received:
    """One request the receiver got: its path, headers and JSON body."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """What the receiver got so far, and the URL it listens on."""

    port: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    got: list[Received] = field(default_factory=list)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.got)


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A ``ThreadingHTTPServer`` on a free loopback port, stopped when the block ends."""
    found = Receiver(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            with found.lock:
                found.got.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", found.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
