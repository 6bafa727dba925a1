"""A loopback HTTP receiver standing in for a Pushgateway or a notification webhook."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 recording every request and answering 200 (202 to PUT/POST
    on /metrics, as a Pushgateway does)."""
    got: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            got.append(Received(self.command, self.path, dict(self.headers), body))
            self.send_response(202 if self.path.startswith("/metrics") else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_POST = do_GET = _record

        def log_message(self, *args: object) -> None:  # keep pytest's output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}", got)
    finally:
        server.shutdown()
        server.server_close()
