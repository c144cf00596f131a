"""Home Assistant: a real Home Assistant Core (2025.4.4, its own venv) on the test broker, edged's discovery.

Entities appear on edged's device, a count in Home Assistant follows what the camera
sees (every value it recorded is one edged published, and it ends on edged's last),
a control switched from MQTT shows in Home Assistant, a camera removed by SIGHUP
takes its entities with it, SIGKILL of edged turns every entity unavailable, and the
next run brings them back with the counts that run sees.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from edged.testing.broker import Mosquitto
from edged.testing.homeassistant import HomeAssistant, ha_available
from edged.testing.media import still_clip, stills_and_traffic_clip
from tests.support.poll import until
from tests.support.types import MakeDaemon, Media, Subscribe

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not ha_available(), reason="no Home Assistant venv: scripts/ha-venv.sh builds it (Python 3.13)"),
]

DEVICE = "hass"


def wait(predicate: Any, timeout: float, what: str, ha: HomeAssistant) -> Any:
    return until(predicate, timeout, f"Home Assistant: {what}", lambda: ha.tail(20))


def ours(ha: HomeAssistant) -> dict[str, str]:
    return {entity: state.state for entity, state in ha.states().items()
            if f"edged_{DEVICE}_" in entity and state.state}


def test_home_assistant_discovers_follows_and_loses_edged(tmp_path: Path, media: Media, broker: Mosquitto,
                                                         subscribe: Subscribe, daemon: MakeDaemon) -> None:
    directory = media["zidane.mp4"].parent
    config: dict[str, Any] = {
        "device_id": DEVICE, "mqtt": {"host": "127.0.0.1", "port": broker.port, "controls": True},
        "engine": {"model": "yolov3-tiny"}, "telemetry": {"interval_s": 2},
        "cameras": {
            # Still scenes cut with traffic: the number of people changes every few seconds.
            "scene": {"url": str(stills_and_traffic_clip(directory)), "loop": True, "fps": 5,
                      "detect": {"labels": ["person", "car", "bicycle"]}, "motion": {"refresh_s": 2},
                      "zones": {"left": {"polygon": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]], "labels": ["person"],
                                         "speed": {"points": [[0, 0.9], [0.5, 0.9]], "metres": 10}}},
                      "colors": {"labels": ["person"], "every_s": 0.3, "attempts": 2}},
            "spare": {"url": str(still_clip(directory, "bus.jpg", 20.0)), "loop": True, "fps": 2,
                      "detect": {"labels": ["person"]}},
        },
    }
    ha = HomeAssistant(tmp_path / "ha", broker.port).start()
    try:
        sub = subscribe(broker.port, f"edged/{DEVICE}/#")
        proc = daemon(config)
        # Entities of the device, both cameras, every zone and label, snapshots and switches.
        wanted = {"binary_sensor.edged_hass_scene_camera", "sensor.edged_hass_scene_detection_rate",
                  "sensor.edged_hass_scene_person_count", "binary_sensor.edged_hass_scene_person_occupancy",
                  "sensor.edged_hass_scene_left_person_count", "binary_sensor.edged_hass_scene_left_person_occupancy",
                  "sensor.edged_hass_scene_car_count", "switch.edged_hass_scene_detection",
                  "switch.edged_hass_scene_motion_gate", "binary_sensor.edged_hass_spare_camera",
                  "sensor.edged_hass_spare_person_count", "sensor.edged_hass_temperature",
                  "sensor.edged_hass_memory_used", "sensor.edged_hass_cpu", "binary_sensor.edged_hass_throttled",
                  "sensor.edged_hass_engine", "sensor.edged_hass_alerts_firing",
                  "sensor.edged_hass_scene_left_person_time_in_zone", "sensor.edged_hass_scene_left_person_speed",
                  "sensor.edged_hass_scene_person_second_look"}
        states = wait(lambda: (s := ours(ha)) and wanted <= set(s) and s, 90,
                      f"edged's entities {sorted(wanted - set(ours(ha)))}", ha)
        # An entity is unavailable until Home Assistant has read edged's retained birth after subscribing.
        wait(lambda: ours(ha).get("binary_sensor.edged_hass_scene_camera") == "on", 30, "the camera online", ha)
        assert "binary_sensor.edged_hass_scene_camera" in states
        wait(lambda: ours(ha).get("image.edged_hass_scene_person_snapshot") not in (None, "unknown"), 60,
             "a person snapshot", ha)
        wait(lambda: ours(ha).get("sensor.edged_hass_engine", "").startswith("openvino"), 30, "the engine", ha)

        # A count follows what the camera sees: let the scene change a few times.
        topic = f"edged/{DEVICE}/scene/all/person"
        time.sleep(25)
        published = {m.text for m in sub.on(topic)}
        history = ha.history("sensor.edged_hass_scene_person_count")
        seen = [value for value in history if value not in ("unknown", "unavailable")]
        print("HA history", seen, "published", published)
        assert len(set(published)) >= 2, f"the scene's person count never changed: {published}"
        assert len(set(seen)) >= 2 and set(seen) <= published, (seen, published)
        wait(lambda: ha.states()["sensor.edged_hass_scene_person_count"].state == sub.on(topic)[-1].text, 15,
             "the count edged published last", ha)

        # The zone's stays: people leave it when the scene cuts; Home Assistant shows edged's median time in it.
        dwell = f"edged/{DEVICE}/scene/left/person/dwell"
        wait(lambda: sub.on(dwell), 60, "a stay in the zone", ha)
        def shown() -> float | None:
            try:
                return float(ours(ha).get("sensor.edged_hass_scene_left_person_time_in_zone", ""))
            except ValueError:
                return None

        wait(lambda: shown() == json.loads(sub.on(dwell)[-1].text)["median_s"], 30, "the median time in the zone", ha)

        # A second look: the colours of the latest person whose colours were named, as edged published them.
        look = f"edged/{DEVICE}/scene/person/look"
        wait(lambda: sub.on(look), 60, "a person's colours", ha)
        wait(lambda: ours(ha).get("sensor.edged_hass_scene_person_second_look")
             == "/".join(json.loads(sub.on(look)[-1].text)["attributes"]["colors"]), 30, "the colours edged named", ha)

        # A control from MQTT: Home Assistant's switch follows edged's state topic.
        broker.publish(f"edged/{DEVICE}/scene/detect/set", "OFF")
        wait(lambda: ours(ha).get("switch.edged_hass_scene_detection") == "off", 20, "the switch turned off", ha)
        broker.publish(f"edged/{DEVICE}/scene/detect/set", "ON")
        wait(lambda: ours(ha).get("switch.edged_hass_scene_detection") == "on", 20, "the switch back on", ha)

        # A camera removed from the config takes its entities with it.
        config["cameras"].pop("spare")
        proc.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        proc.signal(signal.SIGHUP)
        proc.wait_log("SIGHUP: reloaded", 30)
        wait(lambda: "sensor.edged_hass_spare_person_count" not in ha.live_entities(), 30,
             "the removed camera's entities gone", ha)

        # SIGKILL: the broker publishes edged's last will, every entity turns unavailable.
        proc.signal(signal.SIGKILL)
        proc.wait(10)
        left = wait(lambda: (s := ours(ha)) and all(s[e] == "unavailable" for e in wanted if "spare" not in e) and s,
                    30, "every entity unavailable after SIGKILL", ha)
        assert left["sensor.edged_hass_scene_person_count"] == "unavailable"

        # A new run: every entity comes back, and the count is what this run sees, not the one before the kill.
        killed_at = time.time()
        daemon(config, name="again")
        back = wait(lambda: (s := ours(ha)) and s.get("binary_sensor.edged_hass_scene_camera") == "on" and s, 90,
                    "edged's entities available again", ha)
        assert back["sensor.edged_hass_scene_person_count"] != "unavailable"
        wait(lambda: (fresh := [m for m in sub.on(topic) if m.received > killed_at])
             and ours(ha).get("sensor.edged_hass_scene_person_count") == fresh[-1].text, 30,
             "the count this run published", ha)
    finally:
        ha.stop()
    registry = ha.registry()
    devices = [d for d in registry["core.device_registry"]["devices"] if ["mqtt", "edged_hass"] in d["identifiers"]]
    assert len(devices) == 1 and devices[0]["name"] == "edged hass" and devices[0]["manufacturer"] == "edged"
    entities = {e["entity_id"]: e for e in registry["core.entity_registry"]["entities"]
                if e["platform"] == "mqtt" and "edged_hass" in e["unique_id"]}
    assert wanted - {e for e in wanted if "spare" in e} <= set(entities)
    assert not [e for e in entities if "spare" in e], "the removed camera's entities are still registered"
    assert {e["device_id"] for e in entities.values()} == {devices[0]["id"]}
    assert all(e["unique_id"].startswith("edged_hass_") for e in entities.values())
