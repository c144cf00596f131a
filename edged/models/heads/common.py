"""What every head decoder shares: class-aware NMS, the empty result, the finite check."""

from __future__ import annotations

import cv2
import numpy as np

from edged.models.yolo import Detections, Letterbox

CLASS_OFFSET = 8192.0  # boxes in input pixels (inputs < 8192 px): classes this far apart never overlap
NORMALISED_OFFSET = 2.0  # the same for boxes in normalised frame coordinates (0..1)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, max_det: int,
        offset: float = CLASS_OFFSET) -> np.ndarray:
    """Greedy NMS within each class over xyxy boxes (each class shifted by ``offset``, more than the coordinates'
    range, so boxes of different classes never overlap); returns kept indices, best first.

    OpenCV's ``dnn.NMSBoxes`` (C++): the same greedy rule as a loop over numpy arrays, at a thirteenth of the cost
    (2.7 against 36.7 µs for 3 candidates, 10 against 147 µs for 15, on a 2-core AMD EPYC)."""
    if not len(scores):
        return np.empty(0, np.int64)
    xywh = np.empty((len(boxes), 4), np.float32)
    np.add(boxes[:, :2], classes[:, None].astype(np.float32) * offset, out=xywh[:, :2])
    np.subtract(boxes[:, 2:], boxes[:, :2], out=xywh[:, 2:])
    # Candidates score > 0; the stubs ask for sequences, the binding takes arrays.
    kept = cv2.dnn.NMSBoxes(xywh, scores.astype(np.float32, copy=False), 0.0, iou)  # type: ignore[arg-type]
    return np.asarray(kept, np.int64).reshape(-1)[:max_det]


def merge(parts: list[Detections], iou: float) -> Detections:
    """One frame's detections from several overlapping tiles (already in the frame's coordinates): one box per
    object, by NMS within each class (an object in the overlap is found twice)."""
    boxes = np.concatenate([p.boxes for p in parts])
    scores = np.concatenate([p.scores for p in parts])
    classes = np.concatenate([p.classes for p in parts])
    colours = np.concatenate([p.colours for p in parts]) if all(p.colours is not None for p in parts) else None
    merged = Detections(boxes, scores, classes, all(p.finite for p in parts), colours)
    if len(scores) < 2:
        return merged
    kept = np.sort(nms(boxes, scores, classes, iou, len(scores), NORMALISED_OFFSET))
    return merged.take(kept)


def empty(finite: bool = True) -> Detections:
    return Detections(np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, np.int64), finite)


def finish(xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, box: Letterbox) -> Detections:
    """Boxes in input pixels -> the frame's normalised xyxy; the Detections of one image."""
    if not np.isfinite(xyxy).all() or not np.isfinite(scores).all():
        return empty(finite=False)
    xyxy = np.ascontiguousarray(xyxy, dtype=np.float32)
    box.to_frame(xyxy)
    return Detections(xyxy, scores.astype(np.float32), classes.astype(np.int64))


def cxcywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    xyxy = np.empty((xywh.shape[0], 4), dtype=np.float32)
    xyxy[:, :2] = xywh[:, :2] - xywh[:, 2:4] / 2
    xyxy[:, 2:] = xywh[:, :2] + xywh[:, 2:4] / 2
    return xyxy
