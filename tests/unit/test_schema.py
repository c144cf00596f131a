"""The MQTT contract: topics and payload shape (DESIGN section 3)."""

from __future__ import annotations

import json

import numpy as np

from edged.models.yolo import Detections
from edged.publish.contract import Topics, camera_status_payload, detections_payload


def test_topics() -> None:
    t = Topics("edged", "gate-jetson")
    assert t.status == "edged/gate-jetson/status"
    assert t.detections("gate") == "edged/gate-jetson/gate/detections"
    assert t.camera_status("gate") == "edged/gate-jetson/gate/status"
    assert t.telemetry == "edged/gate-jetson/telemetry" and t.alerts == "edged/gate-jetson/alerts"
    assert t.events("gate") == "edged/gate-jetson/gate/events"


def test_detections_payload_keys_and_rounding() -> None:
    dets = Detections(np.array([[0.41234567, 0.3, 0.4981, 0.77123]], np.float32),
                      np.array([0.912345], np.float32), np.array([0]))
    raw = detections_payload("jetson-01", "gate", 1842, 1763800000.12345, 1763800000.0711, (1920, 1080),
                             {"age": 52.123, "pre": 3.21, "infer": 21.44, "post": 1.06}, dets, ["person"])
    payload = json.loads(raw)
    assert list(payload) == ["v", "device", "camera", "seq", "ts", "frame_ts", "size", "timing_ms", "gate",
                             "detections"]
    assert payload["v"] == 1 and payload["seq"] == 1842 and payload["size"] == [1920, 1080]
    assert payload["ts"] == 1763800000.123 and payload["frame_ts"] == 1763800000.071
    assert payload["timing_ms"] == {"age": 52.1, "pre": 3.2, "infer": 21.4, "post": 1.1}
    assert payload["detections"] == [{"label": "person", "class": 0, "score": 0.912,
                                      "box": [0.4123, 0.3, 0.4981, 0.7712]}]
    assert b" " not in raw  # compact


def test_camera_status_payload() -> None:
    assert json.loads(camera_status_payload("reconnecting", "no frame for 5.0 s", 12.3456)) == {
        "v": 1, "state": "reconnecting", "reason": "no frame for 5.0 s", "ts": 12.346}
