"""A small multi-object tracker: greedy IoU matching per class, one per camera.

Detections of the same class are matched to existing tracks by IoU (highest first,
at least ``iou``). A track is confirmed after ``min_hits`` consecutive frames
(one-frame flickers never become objects) and ends after ``max_missed`` frames
without a match. The tracker reports what changed, for events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edged.models.yolo import Detections


@dataclass
class Track:
    id: int
    cls: int
    box: np.ndarray
    score: float
    first_ts: float
    last_ts: float
    hits: int = 1
    missed: int = 0
    confirmed: bool = False
    last_reported: float = 0.0


@dataclass
class TrackUpdate:
    started: list[Track] = field(default_factory=list)  # confirmed in this frame
    ended: list[Track] = field(default_factory=list)  # confirmed tracks that are gone
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per detection; 0: no confirmed track


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    result: np.ndarray = inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)
    return result


class Tracker:
    def __init__(self, iou: float = 0.3, min_hits: int = 2, max_missed: int = 5) -> None:
        self.iou = iou
        self.min_hits = min_hits
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, dets: Detections, ts: float) -> TrackUpdate:
        out = TrackUpdate(ids=np.zeros(len(dets), np.int64))
        matched_tracks: set[int] = set()
        matched_dets: set[int] = set()
        if self.tracks and len(dets):
            boxes = np.stack([t.box for t in self.tracks])
            overlap = _iou(boxes, dets.boxes)
            same_class = np.array([t.cls for t in self.tracks])[:, None] == dets.classes[None, :]
            overlap = np.where(same_class, overlap, 0.0)
            for flat in np.argsort(-overlap, axis=None):
                ti, di = np.unravel_index(flat, overlap.shape)
                if overlap[ti, di] < self.iou:
                    break
                if ti in matched_tracks or di in matched_dets:
                    continue
                matched_tracks.add(int(ti))
                matched_dets.add(int(di))
                track = self.tracks[int(ti)]
                track.box, track.score, track.last_ts = dets.boxes[di].copy(), float(dets.scores[di]), ts
                track.hits += 1
                track.missed = 0
                if not track.confirmed and track.hits >= self.min_hits:
                    track.confirmed = True
                    out.started.append(track)
                if track.confirmed:
                    out.ids[di] = track.id
        survivors = []
        for index, track in enumerate(self.tracks):
            if index not in matched_tracks:
                track.missed += 1
                if not track.confirmed:
                    track.hits = 0  # a tentative track must be seen in consecutive frames
                if track.missed > self.max_missed or (not track.confirmed and track.missed > 1):
                    if track.confirmed:
                        out.ended.append(track)
                    continue
            survivors.append(track)
        self.tracks = survivors
        for di in range(len(dets)):
            if di in matched_dets:
                continue
            track = Track(self._next_id, int(dets.classes[di]), dets.boxes[di].copy(), float(dets.scores[di]), ts, ts)
            self._next_id += 1
            if self.min_hits <= 1:
                track.confirmed = True
                out.started.append(track)
                out.ids[di] = track.id
            self.tracks.append(track)
        return out

    def flush(self) -> list[Track]:
        """End every confirmed track (the camera stopped)."""
        ended = [t for t in self.tracks if t.confirmed]
        self.tracks = []
        return ended
