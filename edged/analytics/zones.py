"""Zones, lines and object masks of one camera, on the tracker's confirmed objects.

An object's place is its *footpoint*, the bottom centre of its box (where it stands).

- **Object masks** drop detections whose footpoint lies in one (before tracking).
- **Zones** (polygons): ``enter`` and ``leave`` when an object's footpoint goes in or out,
  ``loitering`` once per stay when it has been in for ``loiter_s``; per-label counts of
  the objects in each zone now, and ``all`` for the whole frame.
- **Lines** (directed): a ``cross`` when an object's footpoint moves from one side of
  the segment to the other; ``in`` is from the line's left to its right, looking from
  its first point to its second (for a line drawn left to right: downwards in the
  picture). Running totals per label and direction.

Labels: a zone or line counts its own ``labels``, else the camera's detection labels,
else every label it sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from edged.analytics.tracker import Track
from edged.config.models import CameraConfig, Point
from edged.models.yolo import Detections

ALL = "all"


def footpoints(boxes: np.ndarray) -> np.ndarray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1) if len(boxes) else np.zeros((0, 2))


class Polygon:
    def __init__(self, points: Sequence[Point]) -> None:
        self.contour = np.array(points, np.float32).reshape(-1, 1, 2)

    def contains(self, x: float, y: float) -> bool:
        return cv2.pointPolygonTest(self.contour, (float(x), float(y)), False) >= 0


def drop_masked(dets: Detections, masks: Sequence[Polygon]) -> Detections:
    """``dets`` without those whose footpoint is in an object mask."""
    if not masks or not len(dets):
        return dets
    keep = np.array([not any(m.contains(x, y) for m in masks) for x, y in footpoints(dets.boxes)], bool)
    if keep.all():
        return dets
    return Detections(dets.boxes[keep], dets.scores[keep], dets.classes[keep], dets.finite)


@dataclass
class Crossing:
    line: str
    direction: str  # in / out
    track: Track


@dataclass
class ZoneChange:
    kind: str  # enter, leave, loitering
    zone: str
    track: Track


@dataclass
class _Line:
    start: np.ndarray
    end: np.ndarray
    labels: frozenset[str]

    def side(self, point: np.ndarray) -> float:
        d = self.end - self.start
        return float(d[0] * (point[1] - self.start[1]) - d[1] * (point[0] - self.start[0]))

    def crossed(self, before: np.ndarray, after: np.ndarray) -> str | None:
        """``in``/``out`` when the move from ``before`` to ``after`` crosses the segment, else None."""
        s0, s1 = self.side(before), self.side(after)  # a point on the line counts as on its left
        if (s0 > 0) == (s1 > 0):
            return None
        # The move's own line must separate the segment's two ends as well (else it passed beside it).
        move = after - before
        e0 = move[0] * (self.start[1] - before[1]) - move[1] * (self.start[0] - before[0])
        e1 = move[0] * (self.end[1] - before[1]) - move[1] * (self.end[0] - before[0])
        if (e0 > 0) == (e1 > 0) and e0 != 0 and e1 != 0:
            return None
        return "in" if s1 > 0 else "out"


@dataclass
class _Zone:
    polygon: Polygon
    labels: frozenset[str]
    loiter_s: float | None


@dataclass
class _Presence:
    since: dict[str, float] = field(default_factory=dict)  # zone -> when it entered
    loitered: set[str] = field(default_factory=set)
    last_point: np.ndarray | None = None


class CameraAreas:
    """The zone, line and count step for one camera (runs on the scheduler's thread)."""

    def __init__(self, config: CameraConfig, camera_labels: Sequence[str]) -> None:
        default = frozenset(camera_labels)
        self.masks = [Polygon(p) for p in config.object_masks]
        self.zones = {name: _Zone(Polygon(z.polygon), frozenset(z.labels) or default, z.loiter_s)
                      for name, z in config.zones.items()}
        self.lines = {name: _Line(np.array(c.points[0]), np.array(c.points[1]), frozenset(c.labels) or default)
                      for name, c in config.lines.items()}
        self.default_labels = default
        self._presence: dict[int, _Presence] = {}

    def step(self, live: Sequence[Track], ended: Sequence[Track], labels: Sequence[str],
             now: float) -> tuple[list[ZoneChange], list[Crossing]]:
        changes: list[ZoneChange] = []
        crossings: list[Crossing] = []
        if not self.zones and not self.lines:
            return changes, crossings  # the whole-frame counts need no places
        for track in live:
            if not track.confirmed:
                continue
            presence = self._presence.setdefault(track.id, _Presence())
            point = np.array([(track.box[0] + track.box[2]) / 2, track.box[3]])
            label = labels[track.cls]
            changes += self._zones(track, presence, point, label, now)
            if presence.last_point is not None:
                for name, line in self.lines.items():
                    if label in line.labels or not line.labels:
                        direction = line.crossed(presence.last_point, point)
                        if direction is not None:
                            crossings.append(Crossing(name, direction, track))
            presence.last_point = point
        for track in ended:
            gone = self._presence.pop(track.id, None)
            if gone is not None:
                changes += [ZoneChange("leave", zone, track) for zone in sorted(gone.since)]
                track.zones = set()
        return changes, crossings

    def _zones(self, track: Track, presence: _Presence, point: np.ndarray, label: str,
               now: float) -> list[ZoneChange]:
        changes = []
        for name, zone in self.zones.items():
            inside = (not zone.labels or label in zone.labels) and zone.polygon.contains(*point)
            was = name in presence.since
            if inside and not was:
                presence.since[name] = now
                changes.append(ZoneChange("enter", name, track))
            elif was and not inside:
                del presence.since[name]
                presence.loitered.discard(name)
                changes.append(ZoneChange("leave", name, track))
            elif inside and zone.loiter_s is not None and name not in presence.loitered \
                    and now - presence.since[name] >= zone.loiter_s:
                presence.loitered.add(name)
                changes.append(ZoneChange("loitering", name, track))
        track.zones = set(presence.since)
        return changes

    def counts(self, live: Sequence[Track], labels: Sequence[str]) -> dict[str, dict[str, int]]:
        """zone (and ``all``) -> label -> confirmed objects there now; every label a zone counts is present."""
        out: dict[str, dict[str, int]] = {ALL: dict.fromkeys(self.default_labels, 0)}
        for name, zone in self.zones.items():
            out[name] = dict.fromkeys(zone.labels, 0)
        for track in live:
            if not track.confirmed:
                continue
            label = labels[track.cls]
            if not self.default_labels or label in self.default_labels:
                out[ALL][label] = out[ALL].get(label, 0) + 1
            for zone_name in track.zones:
                counted = out[zone_name]
                if not self.zones[zone_name].labels or label in self.zones[zone_name].labels:
                    counted[label] = counted.get(label, 0) + 1
        return out
