"""A DETR head as RT-DETR exporters other than Ultralytics' current one leave it: ``[Q, 4 + C]``, one row per
query: centre x, centre y, width, height as fractions of the (stretched) input, then a score per class. The
scores are probabilities in most exports and logits in some: the first output that holds a value outside 0..1
settles it (a sigmoid from then on). Each query is one object (no NMS): its best class, if over the score."""

from __future__ import annotations

import math

import numpy as np

from edged.models.heads.common import cxcywh_to_xyxy, empty, finish
from edged.models.yolo import Detections, Letterbox


class DetrDecoder:
    head = "detr"

    def __init__(self, num_classes: int, num_boxes: int, input_hw: tuple[int, int], max_det: int = 100,
                 iou: float = 0.45) -> None:
        self.iou = iou  # no NMS on queries; this merges the detections of a frame's tiles
        self.num_classes = num_classes
        self.num_boxes = num_boxes
        self.max_det = max_det
        height, width = input_hw
        self._size = np.array([width, height, width, height], np.float32)
        self._best = np.empty(num_boxes, dtype=np.float32)
        self.logits: bool | None = None  # settled by the first output

    def decode(self, output: np.ndarray, box: Letterbox, min_score: float,
               class_mask: np.ndarray | None = None) -> Detections:
        """``output``: one image's ``[Q, 4 + C]``."""
        scores = output[:, 4:]
        np.max(scores, axis=1, out=self._best)
        if not math.isfinite(float(np.add.reduce(self._best))):
            return empty(finite=False)
        if self.logits is None:
            self.logits = bool(self._best.max() > 1.0 or scores.min() < 0.0)
        threshold = math.log(min_score / (1.0 - min_score)) if self.logits and 0 < min_score < 1 else min_score
        idx = np.flatnonzero(self._best >= threshold)
        if not idx.size:
            return empty()
        rows = output[idx]
        cls_scores = 1.0 / (1.0 + np.exp(-rows[:, 4:])) if self.logits else rows[:, 4:]
        if class_mask is not None:
            cls_scores = cls_scores * class_mask
        classes = cls_scores.argmax(axis=1)
        best = cls_scores[np.arange(idx.size), classes]
        ok = best >= min_score
        if not ok.any():
            return empty()
        rows, best, classes = rows[ok], best[ok], classes[ok]
        if best.size > self.max_det:
            top = np.argsort(-best, kind="stable")[: self.max_det]
            rows, best, classes = rows[top], best[top], classes[top]
        return finish(cxcywh_to_xyxy(rows[:, :4] * self._size), best, classes, box)
