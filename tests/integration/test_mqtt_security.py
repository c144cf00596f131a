"""MQTT over TLS with a throw-away CA and a password file, on a real mosquitto."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edged.testing.broker import Mosquitto, TlsFiles
from edged.testing.rtsp import RtspServer
from tests.support.tls import make_pki
from tests.support.types import MakeDaemon, Media, Subscribe, TlsBroker

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
    assert "closed the connection before accepting it" not in log  # one line per refusal, not two
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


def test_credentials_reach_no_log_topic_or_page(tls_broker: TlsBroker, long_clips: dict[str, Path],
                                                subscribe: Subscribe, daemon: MakeDaemon) -> None:
    """A camera URL with user-info and a broker password from the environment: after detections, a
    camera failure (its URL in the reasons) and a reconnect, neither secret is in the log, on any
    topic, in telemetry, alerts, /healthz or /metrics."""
    import urllib.request

    broker, pki = tls_broker
    camera_secret = "CamS3cret-9"
    server = RtspServer({"cam": long_clips["zidane.mp4"]}).start()
    try:
        sub = subscribe(broker.port, "#", username="viewer", password="viewer-pass", ca=pki["ca"])
        url = server.url("cam").replace("rtsp://", f"rtsp://viewer:{camera_secret}@")
        cfg = tls_config(broker.port, pki["ca"], "${MQTT_PASSWORD}", url)
        cfg["cameras"]["bus"].update({"read_timeout_s": 2, "open_timeout_s": 2, "reconnect": {"min_s": 0.5,
                                                                                            "max_s": 1}})
        cfg.update({"telemetry": {"interval_s": 1}, "http": {"listen": "127.0.0.1:0"}, "log": {"level": "debug"}})
        proc = daemon(cfg, env={"MQTT_PASSWORD": PASSWORD})
        sub.wait_count("edged/secure/bus/detections", 3, timeout=60)
        server.kill()
        sub.wait_for(lambda m: m.topic == "edged/secure/bus/status" and m.json()["state"] == "reconnecting", 30)
        time.sleep(2.5)  # telemetry and alerts with the camera down
        port = int(proc.log().split("/metrics on http://127.0.0.1:")[1].split()[0])
        pages = []
        for page in ("healthz", "metrics"):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=5) as response:
                    pages.append(response.read().decode())
            except urllib.error.HTTPError as exc:  # /healthz answers 503 while the camera is down
                pages.append(exc.read().decode())
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        everything = [proc.log(), *pages, *(m.topic + " " + m.payload.decode(errors="replace") for m in sub.messages)]
        assert any("camera bus is reconnecting" in page for page in pages)
        for text in everything:
            assert camera_secret not in text and PASSWORD not in text
    finally:
        server.stop()


def test_a_publish_the_broker_acl_refuses_is_counted_alerted_and_logged_once(tmp_path: Path, media: Media,
                                                                             subscribe: Subscribe,
                                                                             daemon: MakeDaemon) -> None:
    """MQTT 3.1.1 acknowledges a denied publish, so every event vanished unseen; MQTT 5 says 0x87."""
    acl = ("user edged\n" + "".join(f"topic readwrite edged/acl/{t}\n" for t in (
        "status", "telemetry", "alerts", "+/status", "+/detections")) + "\nuser viewer\ntopic read #\n")
    broker = Mosquitto(tmp_path / "acl-broker", users={"edged": PASSWORD, "viewer": "viewer-pass"}, acl=acl).start()
    try:
        sub = subscribe(broker.port, "edged/acl/#", username="viewer", password="viewer-pass")
        # Only events are refused here: discovery and snapshots, which this ACL refuses too, are off.
        cfg = {"device_id": "acl", "engine": {"model": "yolov3-tiny"}, "telemetry": {"interval_s": 1},
               "homeassistant": {"enabled": False}, "snapshots": {"enabled": False},
               "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": "edged", "password": PASSWORD},
               "cameras": {"street": {"url": str(media["street.mp4"]), "loop": True, "fps": 10}}}
        proc = daemon(cfg)
        alert = sub.wait_for(lambda m: m.topic == "edged/acl/alerts" and m.json()["alert"] == "publish_refused"
                             and m.json()["state"] == "firing", 90).json()
        assert "edged/acl/street/events" in alert["message"] and "Not authorized" in alert["message"]
        sub.wait_count("edged/acl/street/detections", 5, timeout=30)  # what is allowed keeps flowing
        time.sleep(2)
        log = proc.log()
        assert log.count("the broker refused a message on edged/acl/street/events") == 1
        assert sub.on("edged/acl/street/events") == []
        telemetry = sub.on("edged/acl/telemetry")[-1].json()
        assert telemetry["mqtt"]["refused"]["edged/acl/street/events"] >= 1
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        broker.stop()


def test_a_second_daemon_with_the_same_id_is_named(tmp_path: Path, media: Media, broker: Mosquitto,
                                                   daemon: MakeDaemon) -> None:
    """Two daemons with one device_id knocked each other off every second, logging 'Unspecified error'."""
    cfg = {"device_id": "twin", "engine": {"model": "yolov3-tiny"}, "telemetry": {"interval_s": 0},
           "mqtt": {"host": "127.0.0.1", "port": broker.port, "reconnect_min_s": 1, "reconnect_max_s": 1},
           "cameras": {"c": {"url": str(media["street.mp4"]), "loop": True, "fps": 2}}}
    first = daemon(json.loads(json.dumps(cfg)), name="first")
    first.wait_log("MQTT: connected", 60)
    second = daemon(json.loads(json.dumps(cfg)), name="second")  # a spool of its own, the same client id
    first.wait_log("took over the session", 60)
    assert "another client with id 'edged-twin' took over the session" in first.log()
    for proc in (first, second):
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
