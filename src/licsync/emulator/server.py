"""The emulator's HTTP side: a bare ASGI app on uvicorn (HTTP/1.1) or, with TLS, on hypercorn
(HTTPS with HTTP/2 negotiated by ALPN), and `Emulator`, the in-process runner.

with Emulator(users=500, groups=40, seed=1) as graph:
    httpx.get(f"{graph.url}/users")          # graph.url ends in /v1.0
    graph.tenant, graph.stats                # live state and counters

with Emulator(..., tls=(cert_pem, key_pem), auth=TokenIssuer(...)) as graph:
    ...                                      # https://…/v1.0, bearer tokens checked
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import uvicorn

from licsync.emulator.auth import TOKEN_PATH_SUFFIX, TokenIssuer
from licsync.emulator.batch import run_batch
from licsync.emulator.generate import build_tenant
from licsync.emulator.reports import DOWNLOAD_PREFIX
from licsync.emulator.routes import (
    Dispatcher,
    Reply,
    Request,
    error_reply,
    parse_query,
)
from licsync.emulator.state import Tenant
from licsync.emulator.throttle import (
    FaultConfig,
    Faults,
    Stats,
    Throttle,
    ThrottleConfig,
    route_name,
)


def request_key(method: str, path: str, query: dict[str, str]) -> str:
    """The identity of a request, to recognise its retry: method, path and sorted query."""
    return f"{method} {path}?{sorted(query.items())}"


class FaultDispatcher(Dispatcher):
    """`Dispatcher` that also counts early retries after *injected* 429s: the same request
    (method, path, query) sent again before its Retry-After has passed is an early retry. It is
    then answered as usual. (Graph's own throttling keeps its tenant-wide window in `Throttle`.)"""

    def __init__(self, *args: Any, clock: Any = time.monotonic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self._not_before: dict[str, float] = {}
        self._lock = threading.Lock()

    def hold(self, key: str, seconds: float) -> None:
        """A 429 with Retry-After `seconds` was sent for `key`."""
        with self._lock:
            self._not_before[key] = max(self._not_before.get(key, 0.0), self.clock() + seconds)

    def release(self, key: str) -> None:
        """Forget `key`'s Retry-After (its 429 never reached the client)."""
        with self._lock:
            self._not_before.pop(key, None)

    def handle(self, req: Request, allow_drop: bool = True) -> Reply | None:
        key = request_key(req.method, req.path, req.query)
        with self._lock:
            if self._not_before.pop(key, 0.0) > self.clock():
                self.stats.add("early_retries")
        reply = super().handle(req, allow_drop)
        if (
            reply is not None
            and reply.status == 429
            and "x-ms-throttle-information" not in reply.headers
        ):
            self.hold(key, float(reply.headers.get("Retry-After", "0")))
        return reply


class EmulatorApp:
    """ASGI application serving `/v1.0/...`, `/v1.0/$batch` and `/_emulator/stats`."""

    def __init__(
        self,
        tenant: Tenant,
        throttle: ThrottleConfig | None = None,
        faults: FaultConfig | None = None,
        member_chunk: int = 500,
        auth: TokenIssuer | None = None,
    ) -> None:
        self.tenant = tenant
        self.auth = auth
        self.stats = Stats()
        self.fault_config = faults or FaultConfig()
        self.throttle = Throttle(throttle or ThrottleConfig(), len(tenant.users))
        self.faults = Faults(self.fault_config)
        self.dispatcher = FaultDispatcher(
            tenant, self.throttle, self.faults, self.stats, member_chunk
        )
        self.batch_rng = random.Random(self.fault_config.seed)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        if scope.get("http_version") == "2":
            self.stats.add("http2")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host") or headers.get(":authority") or "{}:{}".format(*scope["server"])
        base = f"{scope.get('scheme', 'http')}://{host}/v1.0"
        path: str = scope["path"]
        if self.fault_config.latency > 0 and path != "/_emulator/stats":
            await asyncio.sleep(self.fault_config.latency)
        early = self._gate(scope["method"], path, raw, headers)
        if early is not None:
            await _send(send, early)
            return
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            await _send(
                send, error_reply(400, "BadRequest", "Unable to read JSON request payload.")
            )
            return
        path = path[len("/v1.0") :]
        query = parse_query(scope.get("query_string", b"").decode("latin-1"))
        if path == "/$batch" and scope["method"] == "POST":
            reply: Reply | None = self._batch(body, base)
        else:
            request = Request(scope["method"], path, query, headers, body, base)
            reply = self.dispatcher.handle(request)
        if reply is None:  # injected dropped connection: promise a body, then hang up
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"1000")],
                }
            )
            return
        await _send(send, reply)

    def _gate(self, method: str, path: str, raw: bytes, headers: dict[str, str]) -> Reply | None:
        """The answer given before routing, if any: the token endpoint, the counters, a wrong
        version, a request without a valid token (when tokens are checked)."""
        if self.auth is not None and path.endswith(TOKEN_PATH_SUFFIX) and method == "POST":
            return self.auth.token_reply(path, raw)
        if path == "/_emulator/stats":
            return Reply(200, self.stats.to_json(), {"Content-Type": "application/json"})
        if path.startswith(DOWNLOAD_PREFIX) and method == "GET":
            return self.dispatcher.download(path)
        if not path.startswith("/v1.0/"):
            return error_reply(400, "BadRequest", "Invalid version.")
        if self.auth is None:
            return None
        refused = self.auth.check(headers, headers.get("client-request-id") or "")
        if refused is not None:
            self.stats.record(route_name(method, path[len("/v1.0") :]), 401)
        return refused

    def _batch(self, body: Any, base: str) -> Reply | None:
        """`POST /$batch`, with faults of its own: a 429 (its Retry-After binds every inner
        request) or a 5xx before running anything, or a dropped connection after running it all
        (the writes are applied, their answers lost: a retry must be idempotent)."""
        fault = self.faults.draw()
        keys = _item_keys(body)
        if fault is None or fault == "drop":
            reply: Reply | None = run_batch(self.dispatcher, body, base, self.batch_rng)
        else:
            reply = self.dispatcher._fault_reply(int(fault), "", self.faults.config.retry_after)
            for key in keys.values() if reply.status == 429 else ():
                self.dispatcher.hold(key, float(reply.headers["Retry-After"]))
        if fault is not None:
            self.stats.add("faults")
        if fault == "drop":
            self.stats.add("dropped")
            for item in reply.body.get("responses", ()) if reply and reply.body else ():
                if item["status"] == 429 and item["id"] in keys:
                    self.dispatcher.release(keys[item["id"]])  # the client never saw this 429
            reply = None
        self.stats.record("POST /$batch", 0 if reply is None else reply.status)
        return reply


def _item_keys(body: Any) -> dict[str, str]:
    """`request_key` of each inner request of a `$batch` body, by id."""
    items = body.get("requests") if isinstance(body, dict) else None
    keys = {}
    for raw in items if isinstance(items, list) else ():
        if isinstance(raw, dict) and "id" in raw:
            parts = urlsplit("/" + str(raw.get("url", "")).lstrip("/"))
            method = str(raw.get("method", "")).upper()
            keys[str(raw["id"])] = request_key(method, parts.path, parse_query(parts.query))
    return keys


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


def _quiet_cancellation(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Connections still open at shutdown are cancelled: not worth a traceback."""
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


async def _send(send: Any, reply: Reply) -> None:
    if isinstance(reply.body, bytes):
        payload = reply.body
    else:
        payload = b"" if reply.body is None else orjson.dumps(reply.body)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class Emulator:
    """Run the emulator in a background thread on a loopback port; a context manager.

    Give a `snapshot` (dict or path) or a generated tenant (`users`, `groups`, `seed`).
    `replication_lag` (seconds) makes reads of a user lag behind writes, as Entra replicas do
    (also settable later: `tenant.replication_lag`).
    Attributes once started: `url` (base URL ending in /v1.0), `tenant` (live state, lock with
    `tenant.lock`), `stats` (counters), `app`.
    """

    def __init__(
        self,
        snapshot: dict[str, Any] | str | Path | None = None,
        *,
        users: int = 200,
        groups: int = 20,
        seed: int = 0,
        tenant: Tenant | None = None,
        throttle: ThrottleConfig | None = None,
        faults: FaultConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        member_chunk: int = 500,
        replication_lag: float = 0.0,
        restricted: float = 0.0,
        tls: tuple[str | Path, str | Path] | None = None,
        auth: TokenIssuer | None = None,
    ) -> None:
        if tenant is None:
            if snapshot is not None:
                data = snapshot
                if not isinstance(data, dict):
                    data = orjson.loads(Path(data).read_bytes())
                tenant = Tenant.from_snapshot(data)
            else:
                tenant = build_tenant(users, groups, seed, restricted)
        self.tenant = tenant
        tenant.replication_lag = replication_lag
        self.app = EmulatorApp(tenant, throttle, faults, member_chunk, auth)
        self.stats = self.app.stats
        self.host, self.port = host, port
        self.tls = tls  # (certificate chain PEM, private key PEM): HTTPS + HTTP/2 on hypercorn
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._tls_loop: asyncio.AbstractEventLoop | None = None

    @property
    def authority(self) -> str:
        """host:port, e.g. for `[graph] authority` when the emulator also issues tokens."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.authority}/v1.0"

    def snapshot(self) -> dict[str, Any]:
        """The current tenant as a snapshot (docs/snapshot.md)."""
        return self.tenant.to_snapshot()

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(orjson.dumps(self.snapshot(), option=orjson.OPT_INDENT_2))

    def start(self) -> Emulator:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        if self.tls is not None:
            return self._start_tls(sock)
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", http="h11"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="graph-emulator"
        )
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the Graph emulator failed to start")
            threading.Event().wait(0.005)
        return self

    def _start_tls(self, sock: socket.socket) -> Emulator:
        """Serve HTTPS on hypercorn (ALPN offers h2 first) from a thread of its own."""
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        assert self.tls is not None
        config = Config()
        config.certfile, config.keyfile = (str(p) for p in self.tls)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.accesslog = config.errorlog = None
        config.graceful_timeout = 0.1  # stop() ends open connections at once
        sock.listen(config.backlog)  # connections queue until hypercorn accepts them
        config.bind = [f"fd://{sock.detach()}"]
        ready = threading.Event()

        def run() -> None:
            async def main() -> None:
                loop = asyncio.get_running_loop()
                loop.set_exception_handler(_quiet_cancellation)
                self._tls_loop = loop
                ready.set()
                forever = asyncio.Event().wait  # no signal handlers: stop() cancels the task
                with contextlib.suppress(asyncio.CancelledError):
                    await serve(self.app, config, shutdown_trigger=forever)  # type: ignore[arg-type]

            asyncio.run(main())

        self._thread = threading.Thread(target=run, daemon=True, name="graph-emulator-tls")
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        if self._tls_loop is not None and self._thread is not None:
            self._tls_loop.call_soon_threadsafe(_cancel_all, self._tls_loop)
            self._thread.join(timeout=5)
            self._tls_loop = self._thread = None
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (the CLI)."""
        if self.tls is not None:
            self.start()
            try:
                while self._thread is not None and self._thread.is_alive():
                    self._thread.join(0.5)
            finally:
                self.stop()
            return
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="info", lifespan="off"
        )
        uvicorn.Server(config).run()
