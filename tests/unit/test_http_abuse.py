"""The HTTP service under abuse, on real sockets: 400/408/503 answers, a cap, and a quiet log."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import pytest
from prometheus_client.registry import CollectorRegistry

from edged.pipeline.health import HealthReport
from edged.service.http import HttpServer


def exchange(port: int, data: bytes, wait: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionError):
            pass
        return b"".join(chunks)


def run(test: Callable[[HttpServer, asyncio.AbstractEventLoop], object], **kw: object) -> None:
    async def main() -> None:
        server = HttpServer("127.0.0.1:0", lambda: HealthReport(True), CollectorRegistry(), **kw)  # type: ignore[arg-type]
        await server.start()
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, test, server, loop)
        finally:
            await server.stop()

    asyncio.run(main())


def test_good_requests_and_wrong_paths_and_methods() -> None:
    def test(server: HttpServer, _: object) -> None:
        ok = exchange(server.bound_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200") and ok.endswith(b"ok\n") and b"Connection: close" in ok
        assert exchange(server.bound_port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 404")
        assert exchange(server.bound_port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                        ).startswith(b"HTTP/1.1 405")
        assert exchange(server.bound_port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")

    run(test)


def test_malformed_requests_get_400_and_the_log_stays_quiet(caplog: pytest.LogCaptureFixture) -> None:
    def test(server: HttpServer, _: object) -> None:
        for _ in range(30):
            assert exchange(server.bound_port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.0 400")
            long = b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
            assert b" 400 " in exchange(server.bound_port, long)[:20]
        assert exchange(server.bound_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")

    with caplog.at_level(logging.DEBUG):
        run(test)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(noisy) <= 2, [r.getMessage() for r in noisy]  # was a 7-line traceback per request
    assert all("Traceback" not in r.getMessage() and r.exc_info is None for r in noisy)


def test_slow_clients_get_408_and_the_connection_cap_holds(caplog: pytest.LogCaptureFixture) -> None:
    def test(server: HttpServer, _: object) -> None:
        slow = [socket.create_connection(("127.0.0.1", server.bound_port), timeout=5) for _ in range(4)]
        for s in slow:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        import time

        time.sleep(0.3)
        assert exchange(server.bound_port, b"GET /healthz HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")  # over cap
        answers = []
        for s in slow:
            answers.append(s.recv(200))
            s.close()
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers
        assert exchange(server.bound_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")

    with caplog.at_level(logging.WARNING):
        run(test, max_connections=4, head_timeout_s=1.0)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("408" in m for m in messages) == 1 and sum("already open" in m for m in messages) == 1


def test_connections_over_the_rate_get_503_before_parsing() -> None:
    def check(server: HttpServer, loop: asyncio.AbstractEventLoop) -> None:
        answers = [exchange(server.bound_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(20)]
        busy = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        # The bucket starts full (5), then gains one every 0.2 s: 20 at once cannot all be served.
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers[:5]), [a[:12] for a in answers]
        assert busy and all(a.startswith(b"HTTP/1.1 200") for a in answers if a not in busy)

    run(check, max_rate=5.0)
