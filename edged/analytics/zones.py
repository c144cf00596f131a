"""Zones, lines and object masks of one camera, on the tracker's confirmed objects.

An object's place is its *footpoint*, the bottom centre of its box (where it stands).

- **Object masks** drop detections whose footpoint lies in one (before tracking).
- **Zones** (polygons): ``enter`` and ``leave`` when an object's footpoint goes in or out,
  ``loitering`` once per stay when it has been in for ``loiter_s``; per-label counts of
  the objects in each zone now, and ``all`` for the whole frame. A ``leave`` carries the
  stay's time in the zone (``dwell_s``: from entering to the last look inside) and, for a
  zone with a ``speed`` reference (two ground points and the metres between them), the
  object's speed along it (``speed_kmh``: the least-squares slope of its footpoint,
  projected on the reference, over the stay; one scale for the whole zone, so a camera
  looking at the ground at a slant should keep the zone short along its view).
- **Lines** (directed, ``lines.Line``): a ``cross`` once an object has settled on the
  other side (hysteresis in distance or time). Running totals per label and direction.

Labels: a zone or line counts its own ``labels``, else the camera's detection labels,
else every label it sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from edged.analytics.lines import Line, LineSide
from edged.analytics.tracker import Track
from edged.config.models import CameraConfig, Point, ZoneConfig
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
    return dets.take(keep)


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
    dwell_s: float | None = None  # leave: how long it stayed (entering to the last look inside)
    speed_kmh: float | None = None  # leave, in a zone with a speed reference: its speed along the reference


@dataclass
class _Zone:
    polygon: Polygon
    labels: frozenset[str]
    loiter_s: float | None
    origin: np.ndarray | None = None  # the speed reference's first point (None: no speed here)
    metres: np.ndarray | None = None  # metres per frame fraction along the reference, as a vector


@dataclass
class _Stay:
    """One stay in a zone: when it began, the last look inside, and the sums of a least-squares line through
    (seconds since entering, metres along the reference)."""

    since: float
    last: float
    n: int = 0
    st: float = 0.0
    sx: float = 0.0
    stt: float = 0.0
    stx: float = 0.0

    def add(self, ts: float, metres: float) -> None:
        t = ts - self.since
        self.last = ts
        self.n += 1
        self.st += t
        self.sx += metres
        self.stt += t * t
        self.stx += t * metres

    def speed_kmh(self) -> float | None:
        """|slope| in km/h over at least 3 looks and 0.5 s; None for less."""
        spread = self.n * self.stt - self.st * self.st
        if self.n < 3 or self.last - self.since < 0.5 or spread <= 0:
            return None
        return abs((self.n * self.stx - self.st * self.sx) / spread) * 3.6


@dataclass
class _Presence:
    since: dict[str, _Stay] = field(default_factory=dict)  # zone -> the stay there now
    loitered: set[str] = field(default_factory=set)
    last_point: np.ndarray | None = None
    sides: dict[str, LineSide] = field(default_factory=dict)  # line -> where it stands against it


class CameraAreas:
    """The zone, line and count step for one camera (runs on the scheduler's thread)."""

    def __init__(self, config: CameraConfig, camera_labels: Sequence[str]) -> None:
        default = frozenset(camera_labels)
        self.masks = [Polygon(p) for p in config.object_masks]
        self.zones = {name: _zone(z, default) for name, z in config.zones.items()}
        self.lines = {name: Line(np.array(c.points[0]), np.array(c.points[1]), frozenset(c.labels) or default,
                                 c.hysteresis, c.hysteresis_s)
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
            if not track.public or track.missed:
                continue  # a lost object has not moved anywhere we saw
            presence = self._presence.setdefault(track.id, _Presence())
            point = np.array([(track.box[0] + track.box[2]) / 2, track.box[3]])
            label = labels[track.cls]
            changes += self._zones(track, presence, point, label, now)
            for name, line in self.lines.items():
                if label in line.labels or not line.labels:
                    direction = line.step(presence.sides.setdefault(name, LineSide()), presence.last_point, point,
                                          now)
                    if direction is not None:
                        crossings.append(Crossing(name, direction, track))
            presence.last_point = point
        for track in ended:
            gone = self._presence.pop(track.id, None)
            if gone is not None:
                changes += [self._left(zone, stay, track) for zone, stay in sorted(gone.since.items())]
                track.zones = set()
        return changes, crossings

    def _left(self, name: str, stay: _Stay, track: Track) -> ZoneChange:
        speed = stay.speed_kmh() if self.zones[name].metres is not None else None
        return ZoneChange("leave", name, track, round(stay.last - stay.since, 2),
                          None if speed is None else round(speed, 1))

    def _zones(self, track: Track, presence: _Presence, point: np.ndarray, label: str,
               now: float) -> list[ZoneChange]:
        changes = []
        for name, zone in self.zones.items():
            inside = (not zone.labels or label in zone.labels) and zone.polygon.contains(*point)
            stay = presence.since.get(name)
            if inside and stay is None:
                stay = presence.since[name] = _Stay(now, now)
                changes.append(ZoneChange("enter", name, track))
            elif stay is not None and not inside:
                del presence.since[name]
                presence.loitered.discard(name)
                changes.append(self._left(name, stay, track))
                continue
            if stay is None:
                continue
            stay.add(now, float(np.dot(point - zone.origin, zone.metres)) if zone.metres is not None else 0.0)
            if zone.loiter_s is not None and name not in presence.loitered and now - stay.since >= zone.loiter_s:
                presence.loitered.add(name)
                changes.append(ZoneChange("loitering", name, track))
        track.zones = set(presence.since)
        return changes

    def counts(self, live: Sequence[Track], labels: Sequence[str]) -> dict[str, dict[str, int]]:
        """zone (and ``all``) -> label -> published objects there now (confirmed, not held back by the verifier);
        every label a zone counts is present."""
        out: dict[str, dict[str, int]] = {ALL: dict.fromkeys(self.default_labels, 0)}
        for name, zone in self.zones.items():
            out[name] = dict.fromkeys(zone.labels, 0)
        for track in live:
            if not track.public:
                continue
            label = labels[track.cls]
            if not self.default_labels or label in self.default_labels:
                out[ALL][label] = out[ALL].get(label, 0) + 1
            for zone_name in track.zones:
                counted = out[zone_name]
                if not self.zones[zone_name].labels or label in self.zones[zone_name].labels:
                    counted[label] = counted.get(label, 0) + 1
        return out


def _zone(config: ZoneConfig, default: frozenset[str]) -> _Zone:
    zone = _Zone(Polygon(config.polygon), frozenset(config.labels) or default, config.loiter_s)
    if config.speed is not None:
        start, end = (np.array(p, np.float64) for p in config.speed.points)
        along = end - start
        # A move of m (frame fractions) covers dot(m, along) / |along|^2 of the reference, i.e. that many times
        # its metres.
        zone.origin, zone.metres = start, along * config.speed.metres / float(np.dot(along, along))
    return zone
