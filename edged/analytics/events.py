"""Object events for ``<prefix>/<camera>/events``, typed: ``new`` when a track is confirmed, ``update`` every
``update_s`` while it lasts, ``end`` when it is gone; ``enter``, ``leave`` and ``loitering`` for zones, ``cross``
for lines. Each camera numbers its events (``seq``, from 1 in every run of the daemon), so a consumer can check
that none is missing. The events sink makes the payloads (``publish.contract.event_payload``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edged.analytics.tracker import Track, TrackUpdate
from edged.analytics.zones import Crossing, ZoneChange


@dataclass(frozen=True)
class ObjectEvent:
    seq: int
    kind: str
    track: Track  # read when the payload is made, in the same step
    frame_ts: float
    frame_seq: int
    where: tuple[tuple[str, str], ...] = ()  # (("zone", name),) or (("line", name), ("direction", "in"))
    figures: tuple[tuple[str, float], ...] = ()  # leave: (("dwell_s", 4.2), ("speed_kmh", 31.5))


class EventBuilder:
    def __init__(self, update_s: float) -> None:
        self.update_s = update_s
        self.seq = 0

    def _event(self, kind: str, track: Track, frame_ts: float, frame_seq: int,
               where: tuple[tuple[str, str], ...] = (), figures: tuple[tuple[str, float], ...] = ()) -> ObjectEvent:
        self.seq += 1
        return ObjectEvent(self.seq, kind, track, frame_ts, frame_seq, where, figures)

    def events(self, update: TrackUpdate, live: Sequence[Track], frame_ts: float, frame_seq: int,
               changes: Sequence[ZoneChange] = (), crossings: Sequence[Crossing] = (),
               looked: Sequence[Track] = ()) -> list[ObjectEvent]:
        """In order: new, zone and line events, update, end. ``looked``: objects whose sub-label or colours changed
        (an ``update`` now)."""
        out = [self._event("new", t, frame_ts, frame_seq) for t in update.started]
        out += [self._event(c.kind, c.track, frame_ts, frame_seq, (("zone", c.zone),), _figures(c)) for c in changes]
        out += [self._event("cross", c.track, frame_ts, frame_seq, (("line", c.line), ("direction", c.direction)))
                for c in crossings]
        for track in update.started:
            track.last_reported = frame_ts
        for track in looked:
            track.last_reported = frame_ts
            out.append(self._event("update", track, frame_ts, frame_seq))
        if self.update_s > 0:
            for track in live:
                if track.public and track not in update.started and frame_ts - track.last_reported >= self.update_s:
                    track.last_reported = frame_ts
                    out.append(self._event("update", track, frame_ts, frame_seq))
        out += [self._event("end", t, frame_ts, frame_seq) for t in update.ended]
        return out


def _figures(change: ZoneChange) -> tuple[tuple[str, float], ...]:
    figures = () if change.dwell_s is None else (("dwell_s", change.dwell_s),)
    return figures + (() if change.speed_kmh is None else (("speed_kmh", change.speed_kmh),))
