"""The HTTP service under abuse, on real sockets: 400/408/503 answers, a cap, and a quiet log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
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
        assert exchange(server.bound_port, b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n").startswith(b"HTTP/1.1 404")
        assert exchange(server.bound_port, b"POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
                        ).startswith(b"HTTP/1.1 405")
        metrics = exchange(server.bound_port, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert metrics.startswith(b"HTTP/1.1 200")

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


def test_slow_clients_get_408_and_at_the_cap_the_longest_waiting_makes_room(caplog: pytest.LogCaptureFixture) -> None:
    def test(server: HttpServer, _: object) -> None:
        slow = [socket.create_connection(("127.0.0.1", server.bound_port), timeout=5) for _ in range(4)]
        for s in slow:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            time.sleep(0.05)
        time.sleep(0.3)
        # At the cap, a newcomer is served; the connection that waited longest for its head gives up its slot.
        assert exchange(server.bound_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")
        answers = []
        for s in slow:
            answers.append(s.recv(200))
            s.close()
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers
        assert exchange(server.bound_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")

    with caplog.at_level(logging.WARNING):
        run(test, max_connections=4, head_timeout_s=1.0)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("to make room" in m for m in messages) == 1 and sum("within" in m for m in messages) == 1


def test_a_slowloris_cannot_keep_healthz_down(caplog: pytest.LogCaptureFixture) -> None:
    """40 half-open connections from one address, renewed as they close: probes from that address and another are
    answered, each one."""

    def test(server: HttpServer, _: object) -> None:
        port = server.bound_port
        held: list[socket.socket] = []

        def renew(n: int) -> None:
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # half a head, for ever
                held.append(s)

        renew(40)
        answered = []
        for probe in range(20):
            source = "127.0.0.1" if probe % 2 else "127.0.0.2"
            with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                answered.append(s.recv(100).startswith(b"HTTP/1.1 200"))
            renew(2)
        for s in held:
            s.close()
        assert all(answered), answered
        assert server.open <= server.max_connections

    import gc

    with caplog.at_level(logging.ERROR):
        run(test, max_rate=1000.0)
        gc.collect()  # a task that died unseen is reported when it is collected
    # A connection closed to make room must end as any other does (aiohttp's handler task once died on an assert).
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


def test_without_credentials_only_this_machines_names_are_answered() -> None:
    def test(server: HttpServer, _: object) -> None:
        port = server.bound_port
        for host in (b"attacker.example", b"attacker.example:%d" % port, b"localhost.example.com",
                     b"127.0.0.1.nip.io", b"192.168.1.5"):
            answer = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 421"), (host, answer[:40])
        for host in (b"127.0.0.1:%d" % port, b"localhost", b"LOCALHOST.:%d" % port, b"[::1]:%d" % port,
                     b"127.3.4.5"):
            answer = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200"), (host, answer[:40])
        # Health probes come with whatever name a probe uses.
        assert exchange(port, b"GET /healthz HTTP/1.1\r\nHost: anything\r\n\r\n").startswith(b"HTTP/1.1 200")

    run(test)


def test_the_authorization_scheme_is_case_insensitive_and_credentials_open_any_host() -> None:
    token = "0123456789abcdef0123"

    def test(server: HttpServer, _: object) -> None:
        port = server.bound_port
        for scheme in (b"Bearer", b"bearer", b"BEARER"):
            answer = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: edge.example\r\nAuthorization: " + scheme
                              + b" " + token.encode() + b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200"), (scheme, answer[:40])
        wrong = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: bearer " + token.upper().encode()
                         + b"\r\n\r\n")
        assert wrong.startswith(b"HTTP/1.1 401")  # the credentials themselves keep their case

    run(test, auth=[b"Bearer " + token.encode()])


def test_connections_over_the_rate_get_503_before_parsing() -> None:
    def check(server: HttpServer, loop: asyncio.AbstractEventLoop) -> None:
        answers = [exchange(server.bound_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(20)]
        busy = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        # The bucket starts full (5), then gains one every 0.2 s: 20 at once cannot all be served.
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers[:5]), [a[:12] for a in answers]
        assert busy and all(a.startswith(b"HTTP/1.1 200") for a in answers if a not in busy)

    run(check, max_rate=5.0)


def test_a_burst_of_connections_over_the_cap_ends_each_one_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    """Connections accepted in one go, over the per-address cap: each one that makes room is closed before its
    handler ran; aiohttp must hear of it as of any close (its handler task once died on an assert, unseen)."""
    import gc

    def test(server: HttpServer, _: object) -> None:
        burst = [socket.socket() for _ in range(40)]
        for s in burst:
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", server.bound_port))
        time.sleep(0.5)
        for s in burst:
            s.close()
        time.sleep(0.2)
        ok = exchange(server.bound_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200")

    with caplog.at_level(logging.ERROR):
        run(test, max_rate=1000.0, max_per_client=2)
        gc.collect()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
