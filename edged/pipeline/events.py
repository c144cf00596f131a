"""Object events for ``<prefix>/<camera>/events`` (QoS 1, never lost: they go through the spool).

``new`` when a track is confirmed, ``update`` every ``update_s`` while it lasts,
``end`` when it is gone (with its duration); ``enter``, ``leave`` and ``loitering``
for zones, ``cross`` for lines. Every event says which zones the object is in. Each camera numbers its events
(``seq``, from 1 in every run of the daemon; ``run`` tells runs apart), so a
consumer can check that none is missing. Payloads come from the contract module.
"""

from __future__ import annotations

from collections.abc import Sequence

from edged.pipeline.tracker import Track, TrackUpdate
from edged.pipeline.zones import Crossing, ZoneChange
from edged.publish.contract import event_payload


class EventBuilder:
    def __init__(self, device: str, camera: str, labels: Sequence[str], run: str, update_s: float) -> None:
        self.device = device
        self.camera = camera
        self.labels = labels
        self.run = run
        self.update_s = update_s
        self.seq = 0

    def _event(self, kind: str, track: Track, frame_ts: float, frame_seq: int, **where: str) -> bytes:
        self.seq += 1
        return event_payload(self.device, self.camera, self.run, self.seq, kind, track, self.labels[track.cls],
                             frame_ts, frame_seq, **where)

    def area_events(self, changes: Sequence[ZoneChange], crossings: Sequence[Crossing], frame_ts: float,
                    frame_seq: int) -> list[bytes]:
        out = [self._event(c.kind, c.track, frame_ts, frame_seq, zone=c.zone) for c in changes]
        out += [self._event("cross", c.track, frame_ts, frame_seq, line=c.line, direction=c.direction)
                for c in crossings]
        return out

    def events(self, update: TrackUpdate, live: Sequence[Track], frame_ts: float, frame_seq: int,
               changes: Sequence[ZoneChange] = (), crossings: Sequence[Crossing] = ()) -> list[bytes]:
        """In order: new, zone and line events, update, end."""
        out = [self._event("new", t, frame_ts, frame_seq) for t in update.started]
        out += self.area_events(changes, crossings, frame_ts, frame_seq)
        for track in update.started:
            track.last_reported = frame_ts
        if self.update_s > 0:
            for track in live:
                if track.confirmed and track not in update.started and frame_ts - track.last_reported >= self.update_s:
                    track.last_reported = frame_ts
                    out.append(self._event("update", track, frame_ts, frame_seq))
        out += [self._event("end", t, frame_ts, frame_seq) for t in update.ended]
        return out
