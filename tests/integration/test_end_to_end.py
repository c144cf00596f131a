"""End to end with real parts: RTSP server -> edged (a process) -> mosquitto -> subscriber."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edged.testing.broker import Mosquitto
from edged.testing.rtsp import RtspServer
from tests.integration.reference import BUS_PEOPLE, ZIDANE_PEOPLE, iou
from tests.support.types import MakeDaemon, Subscribe


def camera_config(broker_port: int, cameras: dict[str, Any], **engine: Any) -> dict[str, Any]:
    return {
        "device_id": "itest",
        "mqtt": {"host": "127.0.0.1", "port": broker_port},
        "engine": {"backend": "openvino", "model": "yolov3-tiny", **engine},
        "cameras": cameras,
    }


def children(pid: int) -> list[str]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(stat.parent.name)
    return found


Reference = Sequence[tuple[tuple[float, float, float, float], float]]


def people_matched(payload: dict[str, Any], reference: Reference) -> list[float]:
    """Best IoU of a detected person against each reference person."""
    people = [d["box"] for d in payload["detections"] if d["label"] == "person"]
    return [max((iou(ref, box) for box in people), default=0.0) for ref, _ in reference]


def test_people_found_over_rtsp_then_clean_stop(rtsp: RtspServer, broker: Mosquitto, subscribe: Subscribe,
                                                daemon: MakeDaemon) -> None:
    sub = subscribe(broker.port, "edged/#")
    proc = daemon(camera_config(broker.port, {"zidane": {"url": rtsp.url("zidane"), "fps": 5,
                                                         "detect": {"labels": ["person"]}}}))
    topic = "edged/itest/zidane/detections"
    messages = sub.wait_count(topic, 12, timeout=60)
    payloads = [m.json() for m in messages]

    for p in payloads:
        assert p["v"] == 1 and p["device"] == "itest" and p["camera"] == "zidane"
        assert p["size"] == [1280, 720]
        assert set(p["timing_ms"]) == {"age", "leased", "pre", "infer", "post"}
        assert 0 <= p["timing_ms"]["leased"] <= p["timing_ms"]["age"]  # waited in its slot, then the rest
        assert all(d["label"] == "person" for d in p["detections"])  # the label filter holds
    seqs = [p["seq"] for p in payloads]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    # Frames are never queued: each result is about one inference old, not seconds.
    ages = sorted(p["timing_ms"]["age"] for p in payloads)
    assert ages[-1] < 5000, ages
    # Both people, in (almost) every frame, where OpenCV's own Darknet reader put them.
    matched = [people_matched(p, ZIDANE_PEOPLE) for p in payloads[2:]]
    good = [m for m in matched if min(m) >= 0.5]
    assert len(good) >= 0.9 * len(matched), matched

    status = sub.on("edged/itest/status")
    assert status and status[-1].text == "online"
    camera_status = sub.on("edged/itest/zidane/status")
    assert camera_status and camera_status[-1].json()["state"] == "online"
    # A late subscriber gets the retained status.
    late = subscribe(broker.port, "edged/itest/status")
    assert late.wait_for(lambda m: m.retain, 5, "retained status").text == "online"

    # Nothing forks the daemon (OpenVINO's import-time telemetry used to).
    assert proc.process is not None and children(proc.process.pid) == []

    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert "received SIGTERM" in proc.log()
    stopped = sub.wait_for(lambda m: m.topic == "edged/itest/status" and m.text == "stopped", 5, "stopped")
    assert stopped is not None
    cam = sub.wait_for(lambda m: m.topic == "edged/itest/zidane/status" and m.json()["state"] == "offline", 5)
    assert cam.json()["reason"]
    retained = subscribe(broker.port, "edged/itest/status")
    assert retained.wait_for(lambda m: m.retain, 5, "retained status").text == "stopped"


def test_cars_found_on_street_footage(rtsp: RtspServer, broker: Mosquitto, subscribe: Subscribe,
                                      daemon: MakeDaemon) -> None:
    sub = subscribe(broker.port, "edged/itest/+/detections")
    daemon(camera_config(broker.port, {"street": {"url": rtsp.url("street"), "fps": 10}}))
    car = sub.wait_for(
        lambda m: any(d["label"] == "car" and d["score"] >= 0.5 for d in m.json()["detections"]),
        timeout=60, what="a car with score >= 0.5",
    )
    assert car.json()["size"] == [640, 272]


def test_sigkill_leaves_last_will_offline(rtsp: RtspServer, broker: Mosquitto, subscribe: Subscribe,
                                          daemon: MakeDaemon) -> None:
    sub = subscribe(broker.port, "edged/itest/status")
    proc = daemon(camera_config(broker.port, {"bus": {"url": rtsp.url("bus"), "fps": 2}}))
    sub.wait_for(lambda m: m.text == "online", 60, "online")
    proc.signal(signal.SIGKILL)
    proc.wait(10)
    sub.wait_for(lambda m: m.text == "offline", 30, "the last will 'offline'")
    retained = subscribe(broker.port, "edged/itest/status")
    assert retained.wait_for(lambda m: m.retain, 5, "retained status").text == "offline"


def test_two_cameras_share_batches(rtsp: RtspServer, broker: Mosquitto, subscribe: Subscribe,
                                   daemon: MakeDaemon) -> None:
    sub = subscribe(broker.port, "edged/itest/+/detections")
    config = camera_config(
        broker.port,
        {"zidane": {"url": rtsp.url("zidane"), "fps": 4}, "bus": {"url": rtsp.url("bus"), "fps": 4}},
        batch=2, batch_window_ms=50,
    )
    config["log"] = {"level": "debug"}
    proc = daemon(config)
    zidane = sub.wait_count("edged/itest/zidane/detections", 8, timeout=60)
    bus = sub.wait_count("edged/itest/bus/detections", 8, timeout=30)
    assert min(min(people_matched(m.json(), ZIDANE_PEOPLE)) for m in zidane[-3:]) >= 0.5
    assert min(min(people_matched(m.json(), BUS_PEOPLE)) for m in bus[-3:]) >= 0.5
    batches = [line for line in proc.log().splitlines() if " batch " in line and "fill=" in line]
    assert any("fill=2/2" in line for line in batches), batches[-5:]
