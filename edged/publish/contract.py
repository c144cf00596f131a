"""The MQTT contract, version 1: every topic and every payload edged publishes (DESIGN section 3).

One ``VERSION`` and one serializer for all of them. Payload keys are fixed; numbers
are rounded so a subscriber sees stable, compact JSON: boxes to 4 decimals (0..1,
xyxy of the source frame), scores to 3, milliseconds to 1, epoch seconds to 3.
Additions keep version 1; a change of meaning or a removed key bumps it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edged.models.yolo import Detections

VERSION = 1
DEVICE_ONLINE = "online"
DEVICE_OFFLINE = "offline"  # the broker publishes this as our last will
DEVICE_STOPPED = "stopped"


@dataclass(frozen=True)
class TopicSpec:
    """One row of the contract table (the README's table is checked against these)."""

    pattern: str
    qos: str  # "0", "1", or the config key that sets it
    retained: bool
    payload: str


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("<prefix>/status", "1", True, "online (birth), offline (last will), stopped (clean exit)"),
    TopicSpec("<prefix>/<camera>/detections", "mqtt.detections_qos", False, "one JSON per processed frame"),
    TopicSpec("<prefix>/<camera>/events", "1", False,
              "object new / update / end, zone enter / leave / loitering, line cross"),
    TopicSpec("<prefix>/<camera>/status", "1", True, "online / reconnecting / offline with reason"),
    TopicSpec("<prefix>/<camera>/<zone or all>/<label>", "1", True, "objects there now (an integer)"),
    TopicSpec("<prefix>/<camera>/<line>/<label>/<in or out>", "1", True, "crossings in all (an integer)"),
    TopicSpec("<prefix>/<camera>/<zone>/<label>/<dwell or speed>", "1", True,
              "the last stays' time in the zone (median, p95) or speed (median), JSON"),
    TopicSpec("<prefix>/<camera>/<label>/snapshot", "1", True, "JPEG of the latest object's best frame"),
    TopicSpec("<prefix>/<camera>/<label>/look", "1", True,
              "what a second look made of the latest object: sub-label, colours, JSON"),
    TopicSpec("<prefix>/<camera>/<detect or motion>/set", "1", False, "ON / OFF from others (mqtt.controls)"),
    TopicSpec("<prefix>/<camera>/<detect or motion>/state", "1", True, "ON / OFF now (mqtt.controls)"),
    TopicSpec("homeassistant/<component>/edged_<device>/<object>/config", "1", True, "Home Assistant discovery"),
    TopicSpec("<prefix>/telemetry", "0", True, "device, per-camera, per-engine and MQTT stats"),
    TopicSpec("<prefix>/alerts", "1", False, "alert transitions (firing / resolved) and governor steps"),
)


@dataclass(frozen=True)
class Topics:
    prefix: str
    device_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device_id}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def telemetry(self) -> str:
        return f"{self.base}/telemetry"

    @property
    def alerts(self) -> str:
        return f"{self.base}/alerts"

    def detections(self, camera: str) -> str:
        return f"{self.base}/{camera}/detections"

    def events(self, camera: str) -> str:
        return f"{self.base}/{camera}/events"

    def camera_status(self, camera: str) -> str:
        return f"{self.base}/{camera}/status"

    def count(self, camera: str, zone: str, label: str) -> str:
        """Objects of ``label`` in ``zone`` (or ``all``) now."""
        return f"{self.base}/{camera}/{zone}/{label}"

    def crossings(self, camera: str, line: str, label: str, direction: str) -> str:
        return f"{self.base}/{camera}/{line}/{label}/{direction}"

    def look(self, camera: str, label: str) -> str:
        """What a second look made of the latest object of ``label`` whose sub-label or colours changed (JSON)."""
        return f"{self.base}/{camera}/{label}/look"

    def stays(self, camera: str, zone: str, label: str, figure: str) -> str:
        """The last stays' ``dwell`` or ``speed`` figures of ``label`` in ``zone`` (JSON, retained)."""
        return f"{self.base}/{camera}/{zone}/{label}/{figure}"


def dumps(payload: Mapping[str, Any]) -> bytes:
    """The one serializer: compact JSON, no NaN (a NaN is a bug, not a value)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False, default=str).encode()


def _box(box: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in box]


def detections_payload(
    device: str,
    camera: str,
    seq: int,
    ts: float,
    frame_ts: float,
    size: tuple[int, int],
    timing_ms: Mapping[str, float],
    detections: Detections,
    labels: Sequence[str],
    tracks: Sequence[int] | None = None,
    gate: str = "off",
) -> bytes:
    items: list[dict[str, Any]] = [
        {"label": labels[int(c)], "class": int(c), "score": round(float(s), 3), "box": _box(box)}
        for box, s, c in zip(detections.boxes, detections.scores, detections.classes)
    ]
    if tracks is not None:
        for item, track in zip(items, tracks):
            if track:
                item["track"] = int(track)
    return dumps({
        "v": VERSION, "device": device, "camera": camera, "seq": seq,
        "ts": round(ts, 3), "frame_ts": round(frame_ts, 3), "size": [size[0], size[1]],
        "timing_ms": {k: round(v, 1) for k, v in timing_ms.items()},
        "gate": gate,
        "detections": items,
    })


def camera_status_payload(state: str, reason: str, ts: float) -> bytes:
    return dumps({"v": VERSION, "state": str(state), "reason": reason, "ts": round(ts, 3)})


class TrackView(Protocol):
    """What an event says about one tracked object (the tracker's Track has these)."""

    id: int
    cls: int
    score: float
    box: np.ndarray
    first_ts: float
    last_ts: float
    zones: set[str]


def event_payload(device: str, camera: str, run: str, seq: int, kind: str, track: TrackView, label: str,
                  frame_ts: float, frame_seq: int, figures: Mapping[str, float] | None = None,
                  looked: Mapping[str, Any] | None = None, **where: str) -> bytes:
    """``where``: ``zone=`` for enter / leave / loitering, ``line=`` and ``direction=`` for a crossing;
    ``figures``: a leave's ``dwell_s`` and ``speed_kmh``; ``looked``: what a second look made of the object
    (``sub_label``, ``attributes``, ``verified``), where it was looked at."""
    payload: dict[str, Any] = {
        "v": VERSION, "device": device, "camera": camera, "run": run, "seq": seq,
        "event": kind, "track": track.id, "label": label, "class": track.cls,
        "score": round(track.score, 3), "box": _box(track.box),
        "ts": round(time.time(), 3), "frame_ts": round(frame_ts, 3), "frame_seq": frame_seq,
        "first_ts": round(track.first_ts, 3), "zones": sorted(track.zones), **where, **(figures or {}),
        **(looked or {}),
    }
    if kind == "end":
        payload["duration_s"] = round(track.last_ts - track.first_ts, 2)
    return dumps(payload)


def alert_payload(device: str, alert: str, state: str, camera: str = "", **details: Any) -> dict[str, Any]:
    """An alert transition; a dict so the caller can log it before it is serialised."""
    out: dict[str, Any] = {"v": VERSION, "device": device, "alert": alert, "state": state}
    if camera:
        out["camera"] = camera
    out.update(details)
    out["ts"] = round(time.time(), 3)
    return out


def governor_payload(device: str, level: int, slower: bool, reason: str,
                     rates: Mapping[str, float | None]) -> dict[str, Any]:
    return alert_payload(device, "governor", "firing" if level else "resolved", level=level,
                         action="slowing down" if slower else "speeding up", reason=reason, rates=dict(rates))


def telemetry_payload(device: str, uptime_s: float, system: Mapping[str, Any], engine: Mapping[str, Any],
                      cameras: Mapping[str, Any], mqtt: Mapping[str, Any], alerts: Sequence[str],
                      governor: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "v": VERSION, "device": device, "ts": round(time.time(), 3), "uptime_s": round(uptime_s, 1),
        "system": dict(system), "engine": dict(engine), "cameras": dict(cameras), "mqtt": dict(mqtt),
        "alerts": list(alerts), "governor": dict(governor),
    }
