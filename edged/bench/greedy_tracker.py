"""The tracker edged had before ByteTrack-style tracking (kept for the bench's old-vs-new comparison).

Greedy IoU matching per class, one per camera.

Detections of the same class are matched to existing tracks by IoU (highest first,
at least ``iou``). A track is confirmed after ``min_hits`` consecutive frames
(one-frame flickers never become objects) and ends after ``max_missed`` frames
without a match. The tracker reports what changed, for events.
"""

from __future__ import annotations

import numpy as np

from edged.analytics import Track, TrackUpdate
from edged.models.agreement import box_iou
from edged.models.yolo import Detections


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
            overlap = box_iou(boxes, dets.boxes)
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
                self.tracks[int(ti)].seen(dets, int(di), ts, self.min_hits, out)
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
            self.tracks.append(Track.begin(self._next_id, dets, di, ts, self.min_hits, out))
            self._next_id += 1
        return out

    def flush(self) -> list[Track]:
        """End every confirmed track (the camera stopped)."""
        ended = [t for t in self.tracks if t.confirmed]
        self.tracks = []
        return ended
