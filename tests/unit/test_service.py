"""sd_notify against a real datagram socket; the watchdog's heartbeat rules."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from edged.pipeline.health import pipeline_alive
from edged.service.sdnotify import Notifier, watchdog_interval


def test_notifier_sends_datagrams(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(path)})
    assert notifier.ready("1/1 cameras online") and notifier.watchdog() and notifier.stopping()
    messages = [server.recv(4096).decode() for _ in range(3)]
    assert messages[0].startswith("READY=1\nSTATUS=1/1 cameras online\nMAINPID=")
    assert messages[1] == "WATCHDOG=1" and messages[2].startswith("STOPPING=1")
    notifier.close()
    server.close()


def test_abstract_socket_and_no_socket() -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"edged-test-{time.monotonic_ns()}"
    server.bind("\0" + name)
    server.settimeout(2)
    assert Notifier(f"@{name}").status("hello")
    assert server.recv(100) == b"STATUS=hello"
    server.close()
    assert not Notifier.from_env({}).ready("x")


def test_watchdog_interval() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}) is None  # for another process
    assert watchdog_interval({}) is None


def view(now: float, grabs: list[float | None], oldest: float = 0.0, tick: float | None = None) -> Any:
    workers = {}
    for i, grab in enumerate(grabs):
        config = SimpleNamespace(open_timeout_s=10.0, read_timeout_s=5.0)
        counters = SimpleNamespace(last_grab_mono=grab or 0.0, last_alive_mono=now)
        workers[f"c{i}"] = SimpleNamespace(alive=True, config=config, counters=counters, stall_s=5.0)
    scheduler = SimpleNamespace(failure=None, last_tick=now if tick is None else tick,
                                oldest_in_flight_s=lambda _now: oldest)
    return SimpleNamespace(scheduler=scheduler, workers=workers)


def test_pipeline_heartbeat_rules() -> None:
    now = 1000.0
    assert pipeline_alive(view(now, [now - 1, now - 60]), 30, now) == (True, "")  # one camera flowing is enough
    alive, why = pipeline_alive(view(now, [now - 60, None]), 30, now)
    assert not alive and why == "no camera has delivered a frame recently"
    alive, why = pipeline_alive(view(now, [now], oldest=45), 30, now)
    assert not alive and "inference has not returned for 45.0 s" in why
    alive, why = pipeline_alive(view(now, [now], tick=now - 9), 30, now)
    assert not alive and "scheduler has not run" in why
    stuck = view(now, [now])
    stuck.workers["c0"].counters.last_alive_mono = now - 100
    assert not pipeline_alive(stuck, 30, now)[0]
