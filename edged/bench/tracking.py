"""The tracker in ``edged bench``: identities held on hand-annotated footage (``studies/annotations``), the
tracker against the old greedy IoU one at several detection rates."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from edged.analytics import Tracker, TrackUpdate
from edged.bench.greedy_tracker import Tracker as GreedyTracker
from edged.bench.replay import Detector, frames
from edged.models.agreement import box_iou
from edged.models.yolo import Detections
from edged.testing.media import (
    long_clip,
)

MIN_SCORE = 0.4
ANNOTATION = Path(__file__).resolve().parents[2] / "studies" / "annotations" / "bikes-tracks.json"


def _high(dets: Detections) -> Detections:
    keep = dets.scores >= MIN_SCORE
    return dets.take(keep)


def _new_tracker() -> Callable[[Detections, float], TrackUpdate]:
    tracker = Tracker()
    return lambda dets, ts: tracker.update(dets, ts, MIN_SCORE)


def _old_tracker() -> Callable[[Detections, float], TrackUpdate]:
    tracker = GreedyTracker()
    return lambda dets, ts: tracker.update(_high(dets), ts)


# -- the tracker, against annotated footage -------------------------------------------------------------------


def tracker_case(detector: Detector, media: Path, rates: Iterable[float] = (5.0, 10.0)) -> dict[str, Any]:
    """Identity switches and tracks per real object, the old greedy tracker against the new one, at each rate.

    Each shot of the montage is footage of a different camera: both trackers start afresh at each cut.
    """
    truth = json.loads(ANNOTATION.read_text())
    objects = [(o["name"], {int(f): np.array(b) for f, b in o["boxes"].items()}) for o in truth["objects"]]
    shots = [tuple(span) for span in truth["scenes"].values()]
    rows = {}
    for rate in rates:
        sampled = [(f.index, f.ts, detector.detect(f.bgr(), MIN_SCORE)) for f in frames(media / "bikes.mp4", rate)]
        for name, make in (("old", _old_tracker), ("new", _new_tracker)):
            per_shot = [_score(make(), [s for s in sampled if lo <= s[0] <= hi], objects) for lo, hi in shots]
            rows[f"{name} at {rate:g}/s"] = _total(per_shot)
    clip = [(f.ts, detector.detect(f.bgr(), MIN_SCORE))
            for f in frames(long_clip(media / "street.mp4"), 10.0, limit_s=60.0)]
    per_minute = {}
    for name, make in (("old", _old_tracker), ("new", _new_tracker)):
        update = make()
        started = sum(len(update(dets, ts).started) for ts, dets in clip)
        per_minute[name] = started
    return {"objects": len(objects), "annotated_boxes": sum(len(b) for _, b in objects), "rows": rows,
            "how": truth["how"], "demo_clip_tracks_per_minute": per_minute}


def _total(shots: list[dict[str, Any]]) -> dict[str, Any]:
    objects = sum(s["objects_followed"] for s in shots)
    tracks = sum(s["tracks"] for s in shots)
    visible = sum(s["visible"] for s in shots)
    return {
        "identity_switches": sum(s["identity_switches"] for s in shots),
        "tracks_per_object": round(tracks / objects, 2) if objects else None, "objects_followed": objects,
        "coverage": round(sum(s["matched"] for s in shots) / visible, 3) if visible else None,
        "tracks_confirmed": sum(s["tracks_confirmed"] for s in shots),
        "tracks_on_no_object": sum(s["tracks_on_no_object"] for s in shots),
    }


def _score(update: Callable[[Detections, float], TrackUpdate], sampled: list[tuple[int, float, Detections]],
           objects: list[tuple[str, dict[int, np.ndarray]]]) -> dict[str, Any]:
    seen: dict[str, list[int]] = {name: [] for name, _ in objects}  # the track ids matched to each object, in order
    visible = matched_frames = 0
    confirmed_ids: set[int] = set()
    used_ids: set[int] = set()
    for index, ts, dets in sampled:
        result = update(dets, ts)
        published = [(int(i), dets.boxes[k]) for k, i in enumerate(result.ids.tolist())
                     if i and dets.scores[k] >= MIN_SCORE]
        confirmed_ids.update(i for i, _ in published)
        present = [(name, boxes[index]) for name, boxes in objects if index in boxes]
        visible += len(present)
        if not present or not published:
            continue
        overlap = box_iou(np.stack([b for _, b in present]), np.stack([b for _, b in published]))
        objects_taken: set[int] = set()
        boxes_taken: set[int] = set()
        for flat in np.argsort(-overlap, axis=None):
            o, p = divmod(int(flat), overlap.shape[1])
            if overlap[o, p] < 0.3:
                break
            if o in objects_taken or p in boxes_taken:
                continue
            objects_taken.add(o)
            boxes_taken.add(p)
            track_id = published[p][0]
            seen[present[o][0]].append(track_id)
            used_ids.add(track_id)
            matched_frames += 1
    found = [ids for ids in seen.values() if ids]
    return {
        "identity_switches": sum(sum(1 for a, b in pairwise(ids) if a != b) for ids in found),
        "tracks": sum(len(set(ids)) for ids in found), "objects_followed": len(found),
        "matched": matched_frames, "visible": visible,
        "tracks_confirmed": len(confirmed_ids), "tracks_on_no_object": len(confirmed_ids - used_ids),
    }
