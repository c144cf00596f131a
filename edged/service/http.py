"""HTTP on the event loop, with aiohttp: ``GET /healthz``, ``GET /metrics`` and the web page (service/web.py).

Loopback by default (``http.listen``). /healthz answers 200 with ``ok`` while the
daemon is healthy, 503 with one line per problem otherwise; /metrics is the
Prometheus text format; anything else is 404 (405 for another method). aiohttp
parses requests (a malformed request line or a header over its limit is a 400). Around
it, a guard edged owns:
- at most ``max_connections`` open at once, ``MAX_PER_CLIENT`` of them from one client
  address, and ``MAX_RATE`` new ones a second from each address; one more gets a 503 at
  once and is closed, before aiohttp parses anything (a burst of 800 requests a second had
  put the detections' age p95 from 21 to 60 ms), and a client that floods never refuses
  another (a health probe, the page);
- a connection that has not sent a whole request head within ``TIMEOUT_S`` gets a 408
  and is closed (aiohttp itself would wait for ever: slow clients held sockets); when a
  cap is reached, the connection that has waited longest for its head (of that address,
  or of all) is closed to make room rather than the newcomer refused, and past three
  quarters of the cap new connections get ``CROWDED_TIMEOUT_S``: half-open connections
  renewed as they close (a slowloris) cannot keep /healthz or the page down;
- without ``http.auth`` or ``http.token``, only requests whose Host is loopback,
  ``localhost`` or the listen address are answered (421 otherwise): a web page elsewhere
  that rebinds its DNS name to 127.0.0.1 reads nothing;
- every response closes its connection;
- what goes wrong is logged at most once a minute per kind, one line, no traceback
  (aiohttp logged a 7-line traceback per bad request: 33,869 lines in 25 s);
- with ``http.auth`` or ``http.token`` every path but /healthz asks for them (basic
  auth, or ``Authorization: Bearer``); compared in constant time; a wrong one is a
  401 and a line in the log (throttled), never the value tried.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from edged.addresses import host_of, is_loopback_host
from edged.config.models import HttpConfig
from edged.errors import InputError
from edged.logs import Every
from edged.pipeline.health import HealthReport
from edged.service.web import WebPage

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0
CROWDED_TIMEOUT_S = 1.0  # the head deadline of new connections past three quarters of the cap
MAX_CONNECTIONS = 32
MAX_PER_CLIENT = 8  # open connections from one address (the page needs 2 or 3)
MAX_RATE = 100.0  # new connections a second per client address (a burst of as many at once): the page needs a few
MAX_CLIENTS = 1024  # addresses whose rate is followed; the longest idle is forgotten first
MAX_HEADER = 8190  # aiohttp's line limit: a longer header line is a 400
_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_BUSY_RESPONSE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Throttle(logging.Filter):
    """One line a minute per kind of message; tracebacks dropped (the kind says enough)."""

    def __init__(self, period_s: float = 60.0) -> None:
        super().__init__()
        self._every = Every(period_s)
        self._suppressed: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = record.exc_info[1].__class__.__name__ if record.exc_info and record.exc_info[1] else str(record.msg)
        if not self._every.due(kind):
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        detail = str(record.exc_info[1]).strip().splitlines()[0][:200] if record.exc_info and record.exc_info[1] else ""
        more = self._suppressed.pop(kind, 0)
        record.msg = (f"HTTP: {record.getMessage()}{': ' + detail if detail else ''}"
                      f"{f' ({more} more like it in the last minute)' if more else ''}")
        record.args, record.exc_info, record.exc_text = None, None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


async def serve(config: HttpConfig, health: Callable[[], HealthReport], registry: CollectorRegistry,
                page: WebPage | None = None) -> HttpServer | None:
    """Start serving on ``config.listen`` ('' : off); a port that cannot be had is the config's problem."""
    listen = config.listen
    if not listen:
        return None
    server = HttpServer(listen, health, registry, page=page, auth=_credentials(config))
    try:
        await server.start()
    except OSError as exc:
        raise InputError(f"http.listen: cannot listen on {listen}: {exc.strerror or exc}") from None
    return server


class _Guard(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection: the cap and the request-head deadline."""

    def __init__(self, owner: HttpServer, inner: Any) -> None:
        self.owner = owner
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.counted = False  # holds a slot in the owner's counts
        self.inner_open = False  # aiohttp's protocol saw connection_made and not yet connection_lost
        self.tail = b""
        self.address = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        owner = self.owner
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not owner.admit(self.address):
            self._refuse("refused connections over %g a second (503)", owner.max_rate)
            return
        if owner.open_by.get(self.address, 0) >= owner.max_per_client and not owner.make_room(self.address):
            self._refuse("refused a connection: %d already open from one address", owner.max_per_client)
            return
        if owner.open >= owner.max_connections and not owner.make_room(None):
            self._refuse("refused a connection: %d already open", owner.open)
            return
        owner.open += 1
        owner.open_by[self.address] = owner.open_by.get(self.address, 0) + 1
        self.counted = True
        timeout = owner.head_timeout_s if owner.open * 4 <= owner.max_connections * 3 else \
            min(owner.head_timeout_s, CROWDED_TIMEOUT_S)
        self.timer = asyncio.get_running_loop().call_later(timeout, self._too_slow, timeout)
        owner.waiting[self] = None
        self.inner_open = True
        self.inner.connection_made(transport)

    def _refuse(self, message: str, *args: object) -> None:
        self.owner.note(message, *args)
        assert self.transport is not None
        self.transport.write(_BUSY_RESPONSE)
        self.transport.close()

    def _too_slow(self, timeout: float) -> None:
        self.owner.note("closed a connection that sent no whole request within %g s (408)", timeout)
        self.close_waiting()

    def close_waiting(self) -> None:
        """Close a connection still waiting for its request head (408); it stops counting at once."""
        self.owner.waiting.pop(self, None)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.abort()  # aiohttp hears of it in connection_lost, from the loop, as for any close
        self._uncount()  # the slot is free now, not once the peer reads the 408

    def data_received(self, data: bytes) -> None:
        if self.timer is not None:
            seen = self.tail + data
            if b"\r\n\r\n" in seen:
                self.timer.cancel()
                self.timer = None
                self.owner.waiting.pop(self, None)
            self.tail = seen[-3:]
        if self.counted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return bool(self.inner.eof_received()) if self.inner_open else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.owner.waiting.pop(self, None)
        self._uncount()
        if self.inner_open:
            self.inner_open = False
            self.inner.connection_lost(exc)

    def _uncount(self) -> None:
        if not self.counted:
            return
        self.counted = False
        owner = self.owner
        owner.open -= 1
        left = owner.open_by.get(self.address, 1) - 1
        if left > 0:
            owner.open_by[self.address] = left
        else:
            owner.open_by.pop(self.address, None)

    def pause_writing(self) -> None:
        if self.inner_open:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner_open:
            self.inner.resume_writing()


def _credentials(config: HttpConfig) -> list[bytes]:
    """The Authorization header values that are accepted; empty: no auth asked."""
    out = []
    if config.auth is not None:
        pair = f"{config.auth.username}:{config.auth.password.get_secret_value()}".encode()
        out.append(b"Basic " + base64.b64encode(pair))
    if config.token is not None:
        out.append(b"Bearer " + config.token.get_secret_value().encode())
    return out


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpServer:
    def __init__(self, listen: str, health: Callable[[], HealthReport], registry: CollectorRegistry,
                 max_connections: int = MAX_CONNECTIONS, head_timeout_s: float = TIMEOUT_S,
                 page: WebPage | None = None, auth: list[bytes] | None = None, max_rate: float = MAX_RATE,
                 max_per_client: int = MAX_PER_CLIENT) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.health = health
        self.registry = registry
        self.max_connections = max_connections
        self.head_timeout_s = head_timeout_s
        self.open = 0
        self.max_per_client = max_per_client
        self.open_by: dict[str, int] = {}  # client address -> connections open
        self.waiting: dict[_Guard, None] = {}  # connections still waiting for their request head, oldest first
        self.page = page
        self.auth = auth or []
        self.max_rate = max_rate
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, refilled)
        self.refused = 0  # requests without the right credentials
        self._runner: web.AppRunner | None = None
        self._server: asyncio.base_events.Server | None = None
        self._throttle = Throttle()

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def admit(self, address: str) -> bool:
        """One more connection from ``address`` within its rate (a token bucket as deep as one second's worth)."""
        now = time.monotonic()
        tokens, refilled = self._buckets.pop(address, (self.max_rate, now))
        tokens = min(self.max_rate, tokens + (now - refilled) * self.max_rate)
        admitted = tokens >= 1.0
        self._buckets[address] = (tokens - 1.0 if admitted else tokens, now)
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return admitted

    def make_room(self, address: str | None) -> bool:
        """Close the connection that has waited longest for its request head (from ``address``, or from anyone
        when None) so a new one can have its slot; False when every open one has sent its head."""
        for guard in self.waiting:
            if address is None or guard.address == address:
                self.note("closed the connection that waited longest for its request head to make room (408)")
                guard.close_waiting()
                return True
        return False

    def note(self, message: str, *args: object) -> None:
        """A problem with a client, logged through the same once-a-minute throttle."""
        record = log.makeRecord(log.name, logging.WARNING, __file__, 0, message, args, None)
        if self._throttle.filter(record):
            log.handle(record)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024, middlewares=[self._guard if self.auth else self._local])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        if self.page is not None:
            self.page.add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._other)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, max_field_size=MAX_HEADER)
        await self._runner.setup()
        for name in ("aiohttp.server", "aiohttp.web", "aiohttp.access"):
            logging.getLogger(name).addFilter(self._throttle)
        server_factory = self._runner.server
        assert server_factory is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Guard(self, server_factory()), self.host, self.port,
                                                backlog=self.max_connections)
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6: http://[::1]:9108
        what = "the page, /healthz and /metrics" if self.page is not None else "/healthz and /metrics"
        guard = "; every path but /healthz needs http.auth or http.token" if self.auth else ""
        log.info("HTTP: %s on http://%s:%d%s", what, host, self.bound_port, guard)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()
        for name in ("aiohttp.server", "aiohttp.web", "aiohttp.access"):
            logging.getLogger(name).removeFilter(self._throttle)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz":
            return await handler(request)
        scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
        given = f"{scheme.capitalize()} {value.strip()}".encode("utf-8", "replace")  # the scheme's case is free
        if any(hmac.compare_digest(given, accepted) for accepted in self.auth):
            return await handler(request)
        self.refused += 1
        self.note("refused a request without the right credentials (401)")
        response = self._response(401, b"credentials needed (http.auth or http.token)\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="edged", charset="UTF-8"'
        return response

    @web.middleware
    async def _local(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """No credentials are asked: answer only requests meant for this machine (DNS rebinding)."""
        host = request.headers.get("Host")
        if host is None or request.path == "/healthz" or is_loopback_host(host_of(host)) or \
                host_of(host) == self.host.lower():
            return await handler(request)
        self.note("refused a request for another Host (421): without http.auth or http.token only loopback, "
                  "localhost and the listen address are answered")
        return self._response(421, b"this server answers only for its own address (set http.auth or http.token "
                                   b"to reach it by another name)\n")

    @staticmethod
    def _response(status: int, body: bytes, content_type: str = "text/plain") -> web.Response:
        response = web.Response(status=status, body=body, headers={"Cache-Control": "no-store",
                                                                   "Content-Type": content_type})
        response.force_close()
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self.health()
        return self._response(200 if report.ok else 503, report.text().encode())

    async def _metrics(self, request: web.Request) -> web.Response:
        body: bytes = await asyncio.get_running_loop().run_in_executor(None, generate_latest, self.registry)
        return self._response(200, body, CONTENT_TYPE_LATEST)

    async def _other(self, request: web.Request) -> web.Response:
        if request.path in ("/healthz", "/metrics"):
            return self._response(405, b"only GET\n")
        return self._response(404, b"try /, /healthz or /metrics\n")
