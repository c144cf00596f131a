"""Controls over MQTT behind the example ACL, and Home Assistant discovery as the broker sees it."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from edged.testing.broker import Mosquitto
from edged.testing.media import fixed_clip, still_clip
from tests.support.types import MakeDaemon, Media, Subscribe

pytestmark = pytest.mark.integration

ACL = Path(__file__).parents[2] / "configs" / "examples" / "mosquitto-acl.conf"
USERS = {"edged": "edged-pw-1", "homeassistant": "ha-pw-2", "viewer": "viewer-pw-3"}


def count_since(sub: Any, topic: str, since: float) -> int:
    return sum(1 for m in sub.on(topic) if m.received >= since)


def test_controls_obey_the_acl_and_ignore_garbage(tmp_path: Path, media: Media, subscribe: Subscribe,
                                                  daemon: MakeDaemon) -> None:
    broker = Mosquitto(tmp_path / "broker", users=USERS, acl=ACL.read_text()).start()
    try:
        directory = media["zidane.mp4"].parent
        proc = daemon({
            "device_id": "ctl", "engine": {"model": "yolov3-tiny"},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": "edged", "password": "${MQTT_PW}",
                     "controls": True},
            "cameras": {"cam": {"url": str(fixed_clip(directory, 60.0)), "loop": True, "fps": 5}},
        }, env={"MQTT_PW": USERS["edged"]})
        sub = subscribe(broker.port, "edged/ctl/#", username="viewer", password=USERS["viewer"])
        sub.wait_count("edged/ctl/cam/detections", 5, timeout=60)
        state = "edged/ctl/cam/detect/state"
        assert sub.wait_for(lambda m: m.topic == state, 10).text == "ON"

        # The viewer may not control: the broker drops its message, edged never sees it.
        broker.publish("edged/ctl/cam/detect/set", "OFF", username="viewer", password=USERS["viewer"])
        # Garbage from an allowed client: ignored, with one log line.
        broker.publish("edged/ctl/cam/detect/set", "off-ish\x00", username="homeassistant",
                       password=USERS["homeassistant"])
        time.sleep(2.0)
        assert [m.text for m in sub.on(state)] == ["ON"]
        assert count_since(sub, "edged/ctl/cam/detections", time.time() - 1.0) > 0
        assert proc.log().count("controls: ignored payload") == 1

        # Home Assistant switches detection off: the state follows and detections stop; then on again.
        broker.publish("edged/ctl/cam/detect/set", "OFF", username="homeassistant", password=USERS["homeassistant"])
        sub.wait_for(lambda m: m.topic == state and m.text == "OFF", 10)
        time.sleep(0.5)
        quiet_from = time.time()
        time.sleep(2.0)
        assert count_since(sub, "edged/ctl/cam/detections", quiet_from) == 0
        broker.publish("edged/ctl/cam/detect/set", "ON", username="homeassistant", password=USERS["homeassistant"])
        sub.wait_for(lambda m: m.topic == state and m.text == "ON" and m.received > quiet_from, 10)
        resumed = time.time()
        sub.wait_for(lambda m: m.topic == "edged/ctl/cam/detections" and m.received > resumed, 10)

        # The motion gate off: every due frame is looked at, and the payload says so.
        broker.publish("edged/ctl/cam/motion/set", "OFF", username="homeassistant", password=USERS["homeassistant"])
        sub.wait_for(lambda m: m.topic == "edged/ctl/cam/motion/state" and m.text == "OFF", 10)
        switched = time.time()
        gated = sub.wait_for(lambda m: m.topic == "edged/ctl/cam/detections" and m.received > switched + 0.5, 10)
        assert gated.json()["gate"] == "off"
        # An unknown camera: ignored, one line.
        broker.publish("edged/ctl/nope/detect/set", "OFF", username="homeassistant", password=USERS["homeassistant"])
        proc.wait_log("there is no running camera 'nope'", 10)
        assert "Traceback" not in proc.log()
    finally:
        broker.stop()


def test_discovery_is_resent_removed_and_cleaned_up(tmp_path: Path, media: Media, broker: Mosquitto,
                                                    subscribe: Subscribe, daemon: MakeDaemon) -> None:
    directory = media["zidane.mp4"].parent
    # A config left on the broker by an earlier run, for a camera that no longer exists.
    stale = "homeassistant/sensor/edged_disc/gone_all_person_count/config"
    broker.publish(stale, json.dumps({"name": "gone", "state_topic": "x"}), retain=True)
    config: dict[str, Any] = {
        "device_id": "disc", "mqtt": {"host": "127.0.0.1", "port": broker.port}, "engine": {"model": "yolov3-tiny"},
        "cameras": {"a": {"url": str(still_clip(directory, "bus.jpg", 30.0)), "loop": True, "fps": 2,
                          "detect": {"labels": ["person"]}},
                    "b": {"url": str(still_clip(directory, "zidane.jpg", 30.0)), "loop": True, "fps": 2,
                          "detect": {"labels": ["person"]}}},
    }
    sub = subscribe(broker.port, "homeassistant/#")
    proc = daemon(config)
    count_b = "homeassistant/sensor/edged_disc/b_all_person_count/config"
    first = sub.wait_for(lambda m: m.topic == count_b and bool(m.payload), 60).json()
    assert first["state_topic"] == "edged/disc/b/all/person" and first["unique_id"] == "edged_disc_b_all_person_count"
    assert first["device"]["identifiers"] == ["edged_disc"] and first["availability"][0]["topic"] == "edged/disc/status"
    # The stale config goes (an empty retained message).
    sub.wait_for(lambda m: m.topic == stale and not m.payload, 20)
    # Home Assistant restarts: everything again.
    before = len(sub.on(count_b))
    broker.publish("homeassistant/status", "online")
    sub.wait_for(lambda m: m.topic == count_b and len(sub.on(count_b)) > before, 10)
    # Camera b leaves the config: each of its configs is cleared, a's stay.
    config["cameras"].pop("b")
    proc.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc.signal(signal.SIGHUP)
    sub.wait_for(lambda m: m.topic == count_b and not m.payload, 30)
    time.sleep(1.0)
    retained = retained_topics(broker.port)
    assert not [t for t in retained if "/edged_disc/b_" in t], retained
    assert "homeassistant/sensor/edged_disc/a_all_person_count/config" in retained
    assert stale not in retained


def retained_topics(port: int) -> set[str]:
    """The topics with a retained message under homeassistant/ now (a fresh subscriber's view)."""
    from edged.testing.subscriber import Subscriber

    fresh = Subscriber(port, "homeassistant/#")
    time.sleep(1.5)
    topics = {m.topic for m in fresh.messages if m.retain and m.payload}
    fresh.close()
    return topics


def test_retained_set_messages_toggle_floods_and_switching_back_on(tmp_path: Path, media: Media,
                                                                   subscribe: Subscribe, daemon: MakeDaemon) -> None:
    """A retained OFF on a set topic is never obeyed, at start or after a broker restart; a flood of toggles is a
    line or two in the log and ends in the right state; switching a gated camera back on fires no frame-age alert."""
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()
    try:
        broker.publish("edged/rc/cam/detect/set", "OFF", retain=True)
        directory = media["zidane.mp4"].parent
        sub = subscribe(broker.port, "edged/rc/#")
        proc = daemon({
            "device_id": "rc", "engine": {"model": "yolov3-tiny"}, "telemetry": {"interval_s": 1},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "controls": True, "reconnect_max_s": 1},
            "cameras": {"cam": {"url": str(still_clip(directory, "zidane.jpg", 120.0)), "loop": True, "fps": 5,
                                "motion": {"refresh_s": 2}}},
        })
        state = "edged/rc/cam/detect/state"
        sub.wait_for(lambda m: m.topic == state and m.text == "ON", 60)
        sub.wait_count("edged/rc/cam/detections", 2, timeout=60)
        assert proc.log().count("a retained message on 'edged/rc/cam/detect/set'") == 1
        assert "there is no running camera" not in proc.log()

        broker.stop()  # a blip: the retained OFF is delivered again on the reconnect
        broker.start()
        proc.wait_log("connected to", 30)
        back = time.time()
        sub2 = subscribe(broker.port, "edged/rc/#")
        sub2.wait_for(lambda m: m.topic == "edged/rc/cam/detections" and m.received > back, 30)
        assert [m.text for m in sub2.on(state)][-1] == "ON"
        broker.publish("edged/rc/cam/detect/set", "", retain=True)  # cleared, as the log line says

        for n in range(200):  # a flood of toggles, ending OFF
            broker.publish("edged/rc/cam/detect/set", "OFF" if n % 2 else "ON", qos=0)
        sub2.wait_for(lambda m: m.topic == state and m.text == "OFF" and m.received > back, 20)
        time.sleep(6.0)  # off long enough for the gate to commit frames nobody takes
        assert proc.log().count("(over MQTT)") <= 2
        assert [m.text for m in sub2.on(state)][-1] == "OFF"

        switched_on = time.time()
        broker.publish("edged/rc/cam/detect/set", "ON")
        sub2.wait_for(lambda m: m.topic == "edged/rc/cam/detections" and m.received > switched_on, 20)
        time.sleep(8.0)
        aged = [m.json() for m in sub2.on("edged/rc/alerts") if m.received > switched_on
                and m.json()["alert"] == "frame_age_p95" and m.json()["state"] == "firing"]
        assert aged == [], aged
        ages = [m.json()["timing_ms"]["age"] for m in sub2.on("edged/rc/cam/detections") if m.received > switched_on]
        assert ages and max(ages) < 1500, ages  # the frame that waited while detection was off is not published
        assert "Traceback" not in proc.log()
    finally:
        broker.stop()
