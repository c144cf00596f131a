"""A broker other than mosquitto: RabbitMQ 3.10's MQTT plugin speaks 3.1.1 only and closes an MQTT 5 CONNECT
without a CONNACK. With the default ``mqtt.protocol: auto`` edged must fall back, say so once, and then work as
with mosquitto: detections, retained status, the last will after SIGKILL."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from edged.testing import rabbitmq
from edged.testing.rabbitmq import RabbitMq
from edged.testing.rtsp import RtspServer
from tests.support.types import MakeDaemon, Subscribe

pytestmark = pytest.mark.skipif(not rabbitmq.available(), reason="rabbitmq-server is not installed")


@pytest.fixture
def rabbit(tmp_path: Path) -> Iterator[RabbitMq]:
    server = RabbitMq(tmp_path / "rabbitmq").start()
    yield server
    server.stop()


def test_auto_falls_back_to_311_on_rabbitmq(rabbit: RabbitMq, rtsp: RtspServer, subscribe: Subscribe,
                                            daemon: MakeDaemon) -> None:
    sub = subscribe(rabbit.port, "edged/#")
    proc = daemon({"device_id": "rabbit", "mqtt": {"host": "127.0.0.1", "port": rabbit.port},
                   "engine": {"backend": "openvino", "model": "yolov3-tiny"},
                   "cameras": {"zidane": {"url": rtsp.url("zidane"), "fps": 5, "detect": {"labels": ["person"]}}}})
    detections = sub.wait_count("edged/rabbit/zidane/detections", 5, timeout=90)
    assert all(m.json()["camera"] == "zidane" for m in detections)
    assert any(d["label"] == "person" for m in detections for d in m.json()["detections"])
    late = subscribe(rabbit.port, "edged/rabbit/status")
    assert late.wait_for(lambda m: m.retain, 10, "retained status").text == "online"

    log = proc.log()
    assert log.count("speaking MQTT 3.1.1") == 1, log[-3000:]  # said once, in one line
    assert "closed the connection before accepting it" not in log  # no retry loop on MQTT 5

    assert proc.process is not None
    proc.process.send_signal(signal.SIGKILL)
    proc.process.wait(10)
    will = sub.wait_for(lambda m: m.topic == "edged/rabbit/status" and m.text == "offline", 60, "the last will")
    assert will.text == "offline"
