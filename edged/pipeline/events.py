"""Object events for ``<prefix>/<camera>/events`` (QoS 1, never lost: they go through the spool).

``new`` when a track is confirmed, ``update`` every ``update_s`` while it lasts,
``end`` when it is gone (with its duration). Each camera numbers its events
(``seq``, from 1 in every run of the daemon; ``run`` tells runs apart), so a
consumer can check that none is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from edged.pipeline.tracker import Track, TrackUpdate

VERSION = 1


class EventBuilder:
    def __init__(self, device: str, camera: str, labels: Sequence[str], run: str, update_s: float) -> None:
        self.device = device
        self.camera = camera
        self.labels = labels
        self.run = run
        self.update_s = update_s
        self.seq = 0

    def _event(self, kind: str, track: Track, frame_ts: float, frame_seq: int) -> bytes:
        self.seq += 1
        payload: dict[str, Any] = {
            "v": VERSION, "device": self.device, "camera": self.camera, "run": self.run, "seq": self.seq,
            "event": kind, "track": track.id, "label": self.labels[track.cls], "class": track.cls,
            "score": round(track.score, 3), "box": [round(float(v), 4) for v in track.box],
            "ts": round(time.time(), 3), "frame_ts": round(frame_ts, 3), "frame_seq": frame_seq,
            "first_ts": round(track.first_ts, 3),
        }
        if kind == "end":
            payload["duration_s"] = round(track.last_ts - track.first_ts, 2)
        return json.dumps(payload, separators=(",", ":")).encode()

    def events(self, update: TrackUpdate, live: Sequence[Track], frame_ts: float, frame_seq: int) -> list[bytes]:
        out = [self._event("new", t, frame_ts, frame_seq) for t in update.started]
        for track in update.started:
            track.last_reported = frame_ts
        if self.update_s > 0:
            for track in live:
                if track.confirmed and track not in update.started and frame_ts - track.last_reported >= self.update_s:
                    track.last_reported = frame_ts
                    out.append(self._event("update", track, frame_ts, frame_seq))
        out += [self._event("end", t, frame_ts, frame_seq) for t in update.ended]
        return out
