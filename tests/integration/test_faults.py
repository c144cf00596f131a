"""Faults with real parts: a camera server killed or frozen, the broker restarted, the
daemon killed with messages in its spool. Nothing lost, nothing stuck, and the other
camera keeps its rate."""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edged.testing.broker import Mosquitto
from edged.testing.rtsp import RtspServer
from edged.testing.subscriber import Subscriber
from tests.support.types import MakeDaemon, Media, Subscribe


def config(port: int, cameras: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"device_id": "fault", "mqtt": {"host": "127.0.0.1", "port": port},
            "engine": {"model": "yolov3-tiny"}, "telemetry": {"interval_s": 0}, "cameras": cameras, **extra}


def rate(sub: Subscriber, topic: str, seconds: float) -> float:
    start = len(sub.on(topic))
    time.sleep(seconds)
    return (len(sub.on(topic)) - start) / seconds


def rtsp_beside_a_steady_camera(server: RtspServer, media: Any, broker: Any, subscribe: Any,
                                 daemon: Any) -> tuple[Subscriber, float]:
    """Run the daemon on the RTSP camera and a looping file; once the RTSP camera
    delivers, return the subscriber and the file camera's rate before any fault."""
    sub = subscribe(broker.port, "edged/fault/#")
    daemon(config(broker.port, {
        "rtsp": {"url": server.url("cam"), "fps": 4, "read_timeout_s": 2, "open_timeout_s": 3,
                 "reconnect": {"min_s": 0.5, "max_s": 2}},
        "steady": {"url": str(media["street.mp4"]), "loop": True, "fps": 4},
    }))
    sub.wait_count("edged/fault/rtsp/detections", 3, timeout=60)
    return sub, rate(sub, "edged/fault/steady/detections", 3)


def test_camera_server_killed_then_restarted(long_clips: Media, media: Media, broker: Mosquitto, subscribe: Subscribe,
                                             daemon: MakeDaemon) -> None:
    server = RtspServer({"cam": long_clips["zidane.mp4"]}).start()
    try:
        sub, before = rtsp_beside_a_steady_camera(server, media, broker, subscribe, daemon)
        server.kill()
        sub.wait_for(lambda m: m.topic == "edged/fault/rtsp/status" and m.json()["state"] == "reconnecting", 20)
        during = rate(sub, "edged/fault/steady/detections", 3)
        count = len(sub.on("edged/fault/rtsp/detections"))
        server.start()  # the same port
        sub.wait_for(lambda m: m.topic == "edged/fault/rtsp/status" and m.json()["state"] == "online", 30)
        sub.wait_count("edged/fault/rtsp/detections", count + 3, timeout=30)
        assert during >= 0.75 * before, (before, during)  # the other camera kept its rate
    finally:
        server.stop()


def test_camera_server_frozen_longer_than_the_read_timeout(long_clips: Media, media: Media, broker: Mosquitto,
                                                           subscribe: Subscribe, daemon: MakeDaemon) -> None:
    server = RtspServer({"cam": long_clips["bus.mp4"]}).start()
    try:
        sub, before = rtsp_beside_a_steady_camera(server, media, broker, subscribe, daemon)
        server.signal(signal.SIGSTOP)
        frozen_at = len(sub.on("edged/fault/rtsp/detections"))
        stalled = sub.wait_for(lambda m: m.topic == "edged/fault/rtsp/status"
                               and m.json()["state"] == "reconnecting", 20).json()
        assert "no frame for" in stalled["reason"] or "stalled" in stalled["reason"]
        during = rate(sub, "edged/fault/steady/detections", 3)
        assert len(sub.on("edged/fault/rtsp/detections")) <= frozen_at + 12  # at most the buffered frames
        server.signal(signal.SIGCONT)
        sub.wait_for(lambda m: m.topic == "edged/fault/rtsp/status" and m.json()["state"] == "online"
                     and m.received > time.time() - 30, 45)
        sub.wait_count("edged/fault/rtsp/detections", frozen_at + 15, timeout=45)
        assert during >= 0.75 * before, (before, during)
    finally:
        server.stop()


def events_by_run(sub: Subscriber) -> dict[str, list[int]]:
    runs: dict[str, list[int]] = {}
    for m in sub.on("edged/fault/street/events"):
        event = m.json()
        runs.setdefault(event["run"], []).append(event["seq"])
    return runs


def test_broker_restart_loses_no_qos1_message(tmp_path: Path, media: Media, subscribe: Subscribe,
                                              daemon: MakeDaemon) -> None:
    from edged.testing.broker import Mosquitto

    broker = Mosquitto(tmp_path / "persistent-broker", persistence=True).start()
    try:
        sub = subscribe(broker.port, "edged/fault/+/events", client_id="fault-watcher", persistent=True)
        proc = daemon(config(broker.port, {"street": {"url": str(media["street.mp4"]), "loop": True, "fps": 10}}))
        sub.wait_count("edged/fault/street/events", 5, timeout=60)
        broker.stop()
        time.sleep(6)  # events go to the spool meanwhile
        broker.start()
        [run] = events_by_run(sub)
        # Wait for an event made after the restart; everything before it must arrive too.
        later = max(events_by_run(sub)[run]) + 10
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not set(range(1, later)) <= set(events_by_run(sub)[run]):
            time.sleep(0.2)
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        time.sleep(1)
        seqs = events_by_run(sub)[run]
        sent, received = max(seqs), len(set(seqs))
        duplicates = sum(n - 1 for n in Counter(seqs).values())
        assert set(seqs) == set(range(1, sent + 1)), f"missing: {sorted(set(range(1, sent + 1)) - set(seqs))}"
        print(f"broker restart: {sent} events sent, {received} received, {duplicates} duplicate(s)")
        assert sent > later - 10
    finally:
        broker.stop()


def test_daemon_killed_with_a_full_spool_delivers_after_restart(tmp_path: Path, media: Media, subscribe: Subscribe,
                                                                daemon: MakeDaemon) -> None:
    from edged.testing.broker import Mosquitto

    broker = Mosquitto(tmp_path / "broker2", persistence=True).start()
    spool = tmp_path / "kept-spool.db"
    cfg = config(broker.port, {"street": {"url": str(media["street.mp4"]), "loop": True, "fps": 10}})
    cfg["mqtt"]["spool"] = str(spool)
    try:
        sub = subscribe(broker.port, "edged/fault/+/events", client_id="kill-watcher", persistent=True)
        first = daemon(cfg, name="first")
        sub.wait_count("edged/fault/street/events", 3, timeout=60)
        broker.stop()
        time.sleep(5)
        first.signal(signal.SIGKILL)
        first.wait(10)
        with sqlite3.connect(spool) as db:
            spooled = [json.loads(p) for (p,) in db.execute(
                "SELECT payload FROM outbox WHERE topic = 'edged/fault/street/events' ORDER BY id")]
        assert len(spooled) >= 3, "the spool should hold the events of the outage"
        run = spooled[0]["run"]
        last = max(e["seq"] for e in spooled)
        broker.start()
        daemon(cfg, name="second")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not set(range(1, last + 1)) <= set(events_by_run(sub).get(run, [])):
            time.sleep(0.2)
        got = set(events_by_run(sub).get(run, []))
        assert set(range(1, last + 1)) <= got, f"missing: {sorted(set(range(1, last + 1)) - got)}"
        sub.wait_for(lambda m: m.topic.endswith("/events") and m.json()["run"] != run, 30, "the new run's events")
    finally:
        broker.stop()


def fill(disk: Path) -> None:
    """Fill ``disk`` to the last byte."""
    with (disk / "fill").open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB filesystem (tmpfs), for a real 'database or disk is full'."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def street_on_the_small_disk(disk: Path, media: Media, broker: Mosquitto, subscribe: Subscribe,
                             daemon: MakeDaemon) -> tuple[Any, Any]:
    """A subscriber, and the daemon on the street footage with its spool on ``disk``."""
    sub = subscribe(broker.port, "edged/fault/#")
    cfg = config(broker.port, {"street": {"url": str(media["street.mp4"]), "loop": True, "fps": 10}})
    cfg["mqtt"]["spool"] = str(disk / "spool.db")
    cfg["telemetry"] = {"interval_s": 1}
    return sub, daemon(cfg)


def test_a_full_disk_under_the_spool_loses_no_event_and_is_alerted(small_disk: Path, media: Media, broker: Mosquitto,
                                                                  subscribe: Subscribe, daemon: MakeDaemon) -> None:
    """Events 30-63 of 123 used to vanish; then SIGTERM exited 1 without 'stopped'."""
    sub, proc = street_on_the_small_disk(small_disk, media, broker, subscribe, daemon)
    sub.wait_count("edged/fault/street/events", 5, timeout=60)
    fill(small_disk)
    [run] = events_by_run(sub)
    during = max(events_by_run(sub)[run]) + 20
    sub.wait_for(lambda m: m.topic == "edged/fault/alerts" and m.json()["alert"] == "spool_error"
                 and m.json()["state"] == "firing", 60)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and max(events_by_run(sub)[run]) < during:
        time.sleep(0.2)
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    time.sleep(1)
    seqs = set(events_by_run(sub)[run])
    assert max(seqs) >= during and seqs == set(range(1, max(seqs) + 1)), sorted(set(range(1, max(seqs))) - seqs)
    assert sub.on("edged/fault/status")[-1].text == "stopped"
    assert sub.on("edged/fault/street/status")[-1].json()["state"] == "offline"
    assert "database or disk is full" in proc.log()


def test_a_disk_full_at_start_still_starts_and_alerts(small_disk: Path, media: Media, broker: Mosquitto,
                                                      subscribe: Subscribe, daemon: MakeDaemon) -> None:
    """It used to refuse to start ('database or disk is full', exit 2) although detections could run."""
    fill(small_disk)
    sub, proc = street_on_the_small_disk(small_disk, media, broker, subscribe, daemon)
    sub.wait_count("edged/fault/street/detections", 5, timeout=60)
    sub.wait_count("edged/fault/street/events", 3, timeout=60)  # QoS 1, from memory
    firing = sub.wait_for(lambda m: m.topic == "edged/fault/alerts" and m.json()["alert"] == "spool_error"
                          and m.json()["state"] == "firing", 30)
    assert "disk is full" in firing.json()["message"] or "No space" in firing.json()["message"]
    (small_disk / "fill").unlink()  # room again: the spool opens and the alert resolves
    sub.wait_for(lambda m: m.topic == "edged/fault/alerts" and m.json()["alert"] == "spool_error"
                 and m.json()["state"] == "resolved", 60)
    assert (small_disk / "spool.db").is_file()
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    [run] = events_by_run(sub)
    seqs = set(events_by_run(sub)[run])
    assert seqs == set(range(1, max(seqs) + 1))  # none lost
    assert "Traceback" not in proc.log()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A server that accepts connections and never answers (a wedged camera)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def steady_gaps(media: Media, broker: Mosquitto, subscribe: Subscribe, daemon: MakeDaemon, port: int,
                reader: str, seconds: float = 20.0) -> tuple[int, float]:
    sub = subscribe(broker.port, "edged/fault/steady/detections")
    dead = {f"dead{i}": {"url": f"rtsp://127.0.0.1:{port}/s{i}", "fps": 2, "open_timeout_s": 8,
                         "reconnect": {"min_s": 0.2, "max_s": 0.5}, "reader": reader} for i in range(3)}
    steady = {"url": str(media["carphone.mp4"]), "loop": True, "fps": 5}  # a short clip: it loops often
    proc = daemon(config(broker.port, {**dead, "steady": steady}), name=f"gaps-{reader}")
    sub.wait_count("edged/fault/steady/detections", 3, timeout=60)
    start, began = len(sub.messages), time.time()
    time.sleep(seconds)
    ended = time.time()
    received = [m.received for m in sub.messages[start:] if m.received <= ended]
    proc.signal(signal.SIGTERM)
    proc.wait(30)
    gaps = [b - a for a, b in itertools.pairwise([began, *received, ended])]
    return len(received), max(gaps)


def test_dead_cameras_never_hold_up_a_healthy_one(media: Media, broker: Mosquitto, subscribe: Subscribe,
                                                  daemon: MakeDaemon, silent_server: int) -> None:
    """Three cameras on a server that accepts and never answers stopped a looping camera for 20 s at its loop
    point (OpenCV's FFmpeg backend opens one stream at a time, process-wide); PyAV opens each on its own."""
    count, longest = steady_gaps(media, broker, subscribe, daemon, silent_server, "auto")
    print(f"steady camera beside 3 dead ones: {count} detections in 20 s at 5/s, longest gap {longest:.2f} s")
    assert count >= 50  # of 100 asked; with the shared lock it lost most of them
