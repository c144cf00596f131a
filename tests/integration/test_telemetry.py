"""Telemetry, alerts, the governor and the HTTP endpoints of a running daemon.

The daemon reads its thermal zone from a sysfs tree the test controls
(telemetry.root; /proc is the real one), so the test can heat the device up and
cool it down and watch what a subscriber sees.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from edged.testing.broker import Mosquitto, free_port
from tests.support.types import MakeDaemon, Media, Subscribe


def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    zone = root / "sys" / "class" / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (root / "proc").symlink_to("/proc")
    set_temp(root, 50.0)
    return root


def set_temp(root: Path, celsius: float) -> None:
    path = root / "sys" / "class" / "thermal" / "thermal_zone0" / "temp"
    tmp = path.with_name("temp.tmp")
    tmp.write_text(f"{int(celsius * 1000)}\n")
    tmp.replace(path)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def assert_prometheus_conventions(metrics: str) -> None:
    """Prometheus' own linter on a live /metrics: base units, no gauge shaped as a summary; and the latencies are
    histograms that can be aggregated across devices."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    checked = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True, text=True,
                             timeout=30, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "# TYPE edged_camera_frame_age_seconds histogram" in metrics
    assert "# TYPE edged_engine_infer_seconds histogram" in metrics
    count = re.search(r'edged_camera_frame_age_seconds_count\{camera="low"\} ([0-9.e+]+)', metrics)
    inf = re.search(r'edged_camera_frame_age_seconds_bucket\{camera="low",le="\+Inf"\} ([0-9.e+]+)', metrics)
    assert count is not None and inf is not None and float(count.group(1)) == float(inf.group(1)) > 0


def rate(sub: Any, topic: str, seconds: float) -> float:
    start = len(sub.on(topic))
    time.sleep(seconds)
    return (len(sub.on(topic)) - start) / seconds


def test_heat_up_and_cool_down(tmp_path: Path, media: Media, broker: Mosquitto, subscribe: Subscribe,
                               daemon: MakeDaemon) -> None:
    root = fake_root(tmp_path)
    port = free_port()
    sub = subscribe(broker.port, "edged/tele/#")
    daemon({
        "device_id": "tele",
        "mqtt": {"host": "127.0.0.1", "port": broker.port},
        "engine": {"model": "yolov3-tiny"},
        "telemetry": {"interval_s": 1, "root": str(root), "tegrastats": "off", "vcgencmd": "off"},
        "alerts": {"temp_c": 70, "infer_ms_p95": 10000},
        "governor": {"step_s": 1, "margin_c": 5, "resume_c": 10, "min_fps": 1},
        "http": {"listen": f"127.0.0.1:{port}"},
        "cameras": {
            "low": {"url": str(media["street.mp4"]), "loop": True, "fps": 8, "priority": 10},
            "high": {"url": str(media["zidane.mp4"]), "loop": True, "fps": 4, "priority": 90},
        },
    })
    telemetry = sub.wait_for(lambda m: m.topic == "edged/tele/telemetry" and m.json()["cameras"]["low"].get(
        "processed_fps"), 60, "telemetry with rates").json()
    assert telemetry["v"] == 1 and telemetry["system"]["temp_c"] == 50.0
    assert telemetry["system"]["temp_zone"] == "cpu-thermal" and telemetry["system"]["memory"]["process_rss_mb"] > 50
    assert telemetry["engine"]["infer_ms"]["p50"] > 0 and telemetry["engine"]["batch_fill"] == 1.0
    assert set(telemetry["cameras"]) == {"low", "high"} and telemetry["governor"]["level"] == 0

    status, body = get(f"http://127.0.0.1:{port}/healthz")
    assert (status, body) == (200, "ok\n")
    status, metrics = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and 'edged_device_temperature_celsius{zone="cpu-thermal"} 50.0' in metrics
    processed = re.search(r'edged_camera_frames_processed_total\{camera="low"\} (\d+)', metrics)
    assert processed is not None and int(processed.group(1)) > 0
    assert_prometheus_conventions(metrics)

    before = rate(sub, "edged/tele/low/detections", 3)
    set_temp(root, 67.0)  # within 5 C of 70: slow down, lowest priority first
    step = sub.wait_for(lambda m: m.topic == "edged/tele/alerts" and m.json()["alert"] == "governor", 20).json()
    assert step["state"] == "firing" and step["level"] == 1 and step["rates"] == {"low": 4.0, "high": None}
    assert "67.0 C is within 5 C of the 70 C limit" in step["reason"]
    set_temp(root, 72.0)
    hot = sub.wait_for(lambda m: m.topic == "edged/tele/alerts" and m.json()["alert"] == "temperature", 20).json()
    assert hot["state"] == "firing" and hot["value"] == 72.0
    sub.wait_for(lambda m: m.topic == "edged/tele/alerts" and m.json().get("level") == 3, 20)
    slowed = rate(sub, "edged/tele/low/detections", 3)
    assert slowed < 0.6 * before, (before, slowed)

    set_temp(root, 55.0)  # 10 C under the limit: restore step by step
    cooled = sub.wait_for(lambda m: m.topic == "edged/tele/alerts" and m.json()["alert"] == "governor"
                          and m.json()["level"] == 0, 30).json()
    assert cooled["state"] == "resolved" and cooled["action"] == "speeding up"
    resolved = [m.json() for m in sub.on("edged/tele/alerts") if m.json()["alert"] == "temperature"]
    assert [a["state"] for a in resolved] == ["firing", "resolved"]
    levels = [m.json()["level"] for m in sub.on("edged/tele/alerts") if m.json()["alert"] == "governor"]
    assert max(levels) >= 3 and levels[-1] == 0
    assert all(abs(a - b) == 1 for a, b in itertools.pairwise(levels))  # one step at a time
    retained = subscribe(broker.port, "edged/tele/telemetry")
    assert retained.wait_for(lambda m: m.retain, 5, "retained telemetry").json()["device"] == "tele"

    broker.stop()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        if status == 503:
            break
        time.sleep(0.5)
    assert status == 503 and "MQTT broker at mqtt://127.0.0.1" in body and "is not connected" in body


def test_detections_keep_flowing_while_the_http_port_is_abused(tmp_path: Path, media: Media, broker: Mosquitto,
                                                              subscribe: Subscribe, daemon: MakeDaemon) -> None:
    """20 slow connections and a stream of malformed requests: /healthz still answers and the camera's rate holds."""
    import http.client
    import socket

    sub = subscribe(broker.port, "edged/abuse/+/detections")
    proc = daemon({"device_id": "abuse", "mqtt": {"host": "127.0.0.1", "port": broker.port},
                   "engine": {"model": "yolov3-tiny"}, "http": {"listen": "127.0.0.1:0"},
                   "cameras": {"cam": {"url": str(media["street.mp4"]), "loop": True, "fps": 5}}})
    sub.wait_count("edged/abuse/cam/detections", 5, timeout=60)
    port = int(proc.log().split("/metrics on http://127.0.0.1:")[1].split()[0])
    before = len(sub.messages)
    time.sleep(4)
    calm = (len(sub.messages) - before) / 4
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    for s in slow:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
    before, started = len(sub.messages), time.monotonic()
    while time.monotonic() - started < 4:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"\x00\x01GARBAGE\r\n\r\n")
            s.recv(100)
    abused = (len(sub.messages) - before) / (time.monotonic() - started)
    for s in slow:
        s.close()
    # Another client (another loopback address) is answered at once: the flood's rate limit is its own.
    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=("127.0.0.2", 0))
    probe.request("GET", "/healthz")
    assert probe.getresponse().status == 200
    probe.close()
    assert abused >= 0.75 * calm, (calm, abused)
    assert proc.log().count("Traceback") == 0
