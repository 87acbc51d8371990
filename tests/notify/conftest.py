"""Real receivers for the odin.notify tests: an HTTP server and an SMTP server on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from notify_kit import HttpReceiver, Inbox, Request, closed_port


@pytest.fixture
def http_receiver() -> Iterator[Callable[..., HttpReceiver]]:
    """Starts HTTP receivers answering the statuses given; all are stopped after the test."""
    servers: list[ThreadingHTTPServer] = []

    def start(*statuses: int) -> HttpReceiver:
        found = HttpReceiver(statuses=list(statuses))

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with found.lock:
                    found.got.append(Request("POST", self.path, headers, body))
                    status = found.statuses.pop(0) if found.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", found.url("/elsewhere"))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        found.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return found

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """An aiosmtpd server on a free loopback port, without TLS or login."""
    box = Inbox(closed_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
