"""sd_notify against a real datagram socket; the watchdog's heartbeat rules."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from pathlib import Path

from edged.pipeline.health import Supervisor, Verdict, check_health, pipeline_alive
from edged.pipeline.stats import PipelineStats
from edged.service.sdnotify import Notifier, watchdog_interval
from edged.sources.state import CameraState
from tests.support.stats import camera, pipeline, snapshot


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


def stats(grabs: list[float | None], oldest: float = 0.0, tick_age: float = 0.0) -> PipelineStats:
    cameras = [camera(f"c{i}", heartbeat_age_s=age) for i, age in enumerate(grabs)]
    return pipeline(*cameras, oldest_in_flight_s=oldest, tick_age_s=tick_age)


def test_pipeline_heartbeat_rules() -> None:
    assert pipeline_alive(stats([1, 60]), 30) == (True, "")  # one camera flowing is enough
    alive, why = pipeline_alive(stats([60, None]), 30)
    assert not alive and why == "no camera has delivered a frame recently"
    alive, why = pipeline_alive(stats([0], oldest=45), 30)
    assert not alive and "inference has not returned for 45.0 s" in why
    alive, why = pipeline_alive(stats([0], tick_age=9), 30)
    assert not alive and "scheduler has not run" in why
    stuck = pipeline(camera("c0", thread_idle_s=100))
    assert not pipeline_alive(stuck, 30)[0]
    assert pipeline_alive(replace(stuck, started=False), 30) == (False, "the pipeline has not started")


def test_supervisor_ready_watchdog_and_hang() -> None:
    supervisor = Supervisor(hang_timeout_s=30, watchdog=True)
    starting = pipeline(camera("c0", state=CameraState.STARTING, heartbeat_age_s=None))
    assert supervisor.step(starting) == Verdict()  # nothing to say until a camera is online
    first = supervisor.step(stats([0]))
    assert first.ready and first.watchdog
    again = supervisor.step(stats([0]))
    assert not again.ready and again.watchdog  # READY=1 once
    silent = supervisor.step(stats([60]))
    assert not silent.watchdog and silent.withheld == "no camera has delivered a frame recently"
    hung = supervisor.step(stats([0], oldest=31))
    assert hung.fatal.startswith("inference has not returned for 30 s: the engine is hung")


def test_health_report_names_each_problem() -> None:
    down = camera("gate", state=CameraState.RECONNECTING, reason="no frame for 5.0 s")
    stale = camera("yard", heartbeat_age_s=9.5)
    report = check_health(snapshot(down, stale, connected=False, failure="device lost"))
    assert not report.ok
    assert report.problems == [
        "MQTT broker at mqtt://127.0.0.1:1883 is not connected", "camera gate is reconnecting: no frame for 5.0 s",
        "camera yard: no frame for 9.5 s (limit 7 s)", "inference stopped: device lost",
    ]
    assert check_health(snapshot(camera("gate"))).text() == "ok\n"
