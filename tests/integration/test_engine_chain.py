"""An engine chain with real engines: a primary that cannot load (OpenVINO on a GPU this machine lacks)."""

from __future__ import annotations

import urllib.request

import pytest

from edged.testing.broker import Mosquitto
from tests.support.poll import until
from tests.support.types import MakeDaemon, Media, Subscribe

pytestmark = pytest.mark.integration


def test_a_primary_that_cannot_load_falls_back_and_says_so(media: Media, broker: Mosquitto, subscribe: Subscribe,
                                                           daemon: MakeDaemon) -> None:
    sub = subscribe(broker.port, "edged/chain/#")
    proc = daemon({
        "device_id": "chain", "mqtt": {"host": "127.0.0.1", "port": broker.port}, "telemetry": {"interval_s": 1},
        "engine": [{"model": "yolov3-tiny", "device": "GPU"}, {"model": "yolov3-tiny", "device": "CPU"}],
        "cameras": {"cam": {"url": str(media["street.mp4"]), "loop": True, "fps": 5}},
    })
    sub.wait_count("edged/chain/cam/detections", 5, timeout=90)
    alert = sub.wait_for(lambda m: m.topic == "edged/chain/alerts" and m.json()["alert"] == "engine_failover", 30)
    body = alert.json()
    assert body["state"] == "firing" and body["failed"] == "openvino:GPU" and body["engine"] == "openvino:CPU"
    telemetry = sub.wait_for(lambda m: m.topic == "edged/chain/telemetry", 30).json()
    assert telemetry["engine"]["in_use"] == "openvino:CPU" and "openvino:GPU" in telemetry["engine"]["failed"]
    port = until(proc.http_port, 30, "the HTTP port")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        health = response.read().decode()
    assert "engine: running on openvino:CPU, a fallback" in health
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert 'edged_engine_in_use{engine="openvino:CPU"} 1.0' in metrics
    assert "Traceback" not in proc.log()
