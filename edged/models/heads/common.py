"""What every head decoder shares: class-aware NMS, the empty result, the finite check."""

from __future__ import annotations

import numpy as np

from edged.models.yolo import Detections, Letterbox

CLASS_OFFSET = 8192.0  # boxes of different classes never overlap once shifted by class * this (inputs < 8192 px)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_det: int) -> np.ndarray:
    """Greedy NMS over boxes already offset per class; returns kept indices, best first."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = (np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])).clip(0)
        h = (np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])).clip(0)
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


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
