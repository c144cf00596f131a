"""MQTT contract, version 1: topics and payloads (DESIGN section 3).

Payload keys are fixed; numbers are rounded so a subscriber sees stable,
compact JSON: boxes to 4 decimals (0..1, xyxy of the source frame), scores to
3, milliseconds to 1, epoch seconds to 3.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edged.models.yolo import Detections

VERSION = 1
DEVICE_ONLINE = "online"
DEVICE_OFFLINE = "offline"  # the broker publishes this as our last will
DEVICE_STOPPED = "stopped"


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


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def detections_payload(
    device: str,
    camera: str,
    seq: int,
    ts: float,
    frame_ts: float,
    size: tuple[int, int],
    timing_ms: dict[str, float],
    detections: Detections,
    labels: Sequence[str],
    tracks: Sequence[int] | None = None,
) -> bytes:
    items: list[dict[str, Any]] = [
        {
            "label": labels[int(c)],
            "class": int(c),
            "score": round(float(s), 3),
            "box": [round(float(v), 4) for v in box],
        }
        for box, s, c in zip(detections.boxes, detections.scores, detections.classes, strict=False)
    ]
    if tracks is not None:
        for item, track in zip(items, tracks, strict=False):
            if track:
                item["track"] = int(track)
    return _dumps({
        "v": VERSION,
        "device": device,
        "camera": camera,
        "seq": seq,
        "ts": round(ts, 3),
        "frame_ts": round(frame_ts, 3),
        "size": [size[0], size[1]],
        "timing_ms": {k: round(v, 1) for k, v in timing_ms.items()},
        "detections": items,
    })


def camera_status_payload(state: str, reason: str, ts: float) -> bytes:
    return _dumps({"v": VERSION, "state": state, "reason": reason, "ts": round(ts, 3)})
