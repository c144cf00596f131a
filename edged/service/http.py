"""A small HTTP server on the event loop: ``GET /healthz`` and ``GET /metrics``.

Loopback by default (``http.listen``). /healthz answers 200 with ``ok`` while the
daemon is healthy, 503 with one line per problem otherwise; /metrics is the
Prometheus text format. Anything else is 404; requests are read with a size and
time limit, and every response closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from edged.errors import InputError
from edged.pipeline.health import HealthReport

log = logging.getLogger(__name__)

MAX_REQUEST = 8192
TIMEOUT_S = 5.0


async def serve(listen: str, health: Callable[[], HealthReport], registry: CollectorRegistry) -> HttpServer | None:
    """Start serving on ``listen`` ('' : off); a port that cannot be had is the config's problem."""
    if not listen:
        return None
    server = HttpServer(listen, health, registry)
    try:
        await server.start()
    except OSError as exc:
        raise InputError(f"http.listen: cannot listen on {listen}: {exc.strerror or exc}") from None
    return server


class HttpServer:
    def __init__(self, listen: str, health: Callable[[], HealthReport], registry: CollectorRegistry) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.health = health
        self.registry = registry
        self._server: asyncio.base_events.Server | None = None

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6: http://[::1]:9108
        log.info("HTTP: /healthz and /metrics on http://%s:%d", host, self.bound_port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            status, content_type, body = await self._route(method, path.split("?", 1)[0])
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            status, content_type, body = "400 Bad Request", "text/plain", b"bad request\n"
        except Exception:
            log.exception("HTTP handler failed")
            status, content_type, body = "500 Internal Server Error", "text/plain", b"internal error\n"
        header = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                  "Connection: close\r\nCache-Control: no-store\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            writer.write(header.encode() + (body if method != "HEAD" else b""))
            await writer.drain()
        writer.close()

    async def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"only GET\n"
        if path == "/healthz":
            report = self.health()
            return ("200 OK" if report.ok else "503 Service Unavailable"), "text/plain", report.text().encode()
        if path == "/metrics":
            loop = asyncio.get_running_loop()
            body: bytes = await loop.run_in_executor(None, generate_latest, self.registry)
            return "200 OK", CONTENT_TYPE_LATEST, body
        return "404 Not Found", "text/plain", b"try /healthz or /metrics\n"

