"""A scripted HTTP(S) server on loopback for tests that need real sockets: a `respond`
function answers each request (status, headers, body, pauses between body bytes)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0.0  # seconds between body bytes


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Respond = Callable[[Seen], Reply]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
        self.server.seen.append(seen)
        reply = self.server.respond(seen)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        try:
            if not reply.trickle:
                self.wfile.write(reply.body)
                return
            for byte in reply.body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(reply.trickle)
        except OSError:  # the client gave up
            pass

    do_GET = do_POST = do_PATCH = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, respond: Respond) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.respond = respond
        self.seen: list[Seen] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@contextmanager
def serve(respond: Respond, tls: Path | None = None) -> Iterator[_Server]:
    """Run a server answering with `respond` until the block ends; `tls` is a PEM with the
    certificate chain and its key (the `tls_files` fixture's)."""
    server = _Server(respond)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
