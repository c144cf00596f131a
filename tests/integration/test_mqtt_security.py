"""MQTT over TLS with a throw-away CA and a password file, on a real mosquitto."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edged.testing.broker import Mosquitto, TlsFiles
from edged.testing.rtsp import RtspServer
from tests.support.tls import make_pki
from tests.support.types import MakeDaemon, Subscribe, TlsBroker

PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, dict[str, Path]]]:
    pki = make_pki(tmp_path / "pki")
    server = Mosquitto(
        tmp_path / "broker",
        tls=TlsFiles(pki["ca"], pki["server"], pki["server_key"]),
        users={"edged": PASSWORD, "viewer": "viewer-pass"},
    ).start()
    yield server, pki
    server.stop()


def tls_config(port: int, ca: Path, password: str, camera_url: str) -> dict[str, Any]:
    return {
        "device_id": "secure",
        "mqtt": {"host": "localhost", "port": port, "username": "edged", "password": "${MQTT_PASSWORD}",
                 "tls": {"ca": str(ca)}},
        "engine": {"model": "yolov3-tiny"},
        "cameras": {"bus": {"url": camera_url, "fps": 3}},
    }


def test_tls_with_password_delivers(tls_broker: TlsBroker, rtsp: RtspServer, subscribe: Subscribe,
                                    daemon: MakeDaemon) -> None:
    broker, pki = tls_broker
    sub = subscribe(broker.port, "edged/#", username="viewer", password="viewer-pass", ca=pki["ca"])
    proc = daemon(tls_config(broker.port, pki["ca"], PASSWORD, rtsp.url("bus")), env={"MQTT_PASSWORD": PASSWORD})
    sub.wait_for(lambda m: m.topic == "edged/secure/status" and m.text == "online", 60, "online over TLS")
    sub.wait_count("edged/secure/bus/detections", 3, timeout=30)
    assert "mqtts://localhost" in proc.log()
    assert PASSWORD not in proc.log()


def test_wrong_password_is_refused_clearly(tls_broker: TlsBroker, rtsp: RtspServer, subscribe: Subscribe,
                                           daemon: MakeDaemon) -> None:
    broker, pki = tls_broker
    sub = subscribe(broker.port, "edged/#", username="viewer", password="viewer-pass", ca=pki["ca"])
    wrong = "not-the-password"
    proc = daemon(tls_config(broker.port, pki["ca"], wrong, rtsp.url("bus")), env={"MQTT_PASSWORD": wrong})
    proc.wait_log("refused the connection", timeout=60)
    time.sleep(2)
    log = proc.log()
    assert "Not authorized" in log or "Bad user name or password" in log, log[-2000:]
    assert wrong not in log
    assert proc.process is not None and proc.process.poll() is None  # keeps retrying, does not crash
    assert not sub.on("edged/secure/status")  # nothing was published


def test_client_certificate(tmp_path: Path, rtsp: RtspServer, subscribe: Subscribe, daemon: MakeDaemon) -> None:
    pki = make_pki(tmp_path / "pki")
    broker = Mosquitto(tmp_path / "broker", tls=TlsFiles(pki["ca"], pki["server"], pki["server_key"]),
                       require_certificate=True).start()
    try:
        proc = daemon({
            "device_id": "certified",
            "mqtt": {"host": "localhost", "port": broker.port,
                     "tls": {"ca": str(pki["ca"]), "cert": str(pki["client"]), "key": str(pki["client_key"])}},
            "engine": {"model": "yolov3-tiny"},
            "cameras": {"bus": {"url": rtsp.url("bus"), "fps": 2}},
        })
        proc.wait_log("MQTT: connected to mqtts://localhost", timeout=60)
        without = daemon({
            "device_id": "anonymous",
            "mqtt": {"host": "localhost", "port": broker.port, "tls": {"ca": str(pki["ca"])}},
            "engine": {"model": "yolov3-tiny"},
            "cameras": {"bus": {"url": rtsp.url("bus"), "fps": 2}},
        }, name="no-cert")
        without.wait_log("closed the connection before accepting it", timeout=60)
        assert "MQTT: connected" not in without.log()
    finally:
        broker.stop()
