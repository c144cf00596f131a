"""End-to-end heads, NMS already done inside the model: ``[K, 6]`` rows.

- ``end2end``: x1, y1, x2, y2 in input pixels, score, class (Ultralytics YOLO26 and YOLOv10, ONNX metadata
  ``end2end: True``);
- ``rtdetr``: centre x, centre y, width, height as fractions of the input, score, class (Ultralytics RT-DETR,
  whose images are stretched to the input rather than letterboxed).

Rows past the last detection are padding with a score of 0; nothing is left for NMS here.
"""

from __future__ import annotations

import math

import numpy as np

from edged.models.heads.common import cxcywh_to_xyxy, empty, finish
from edged.models.yolo import Detections, Letterbox


class EndToEndDecoder:
    def __init__(self, head: str, num_classes: int, num_boxes: int, input_hw: tuple[int, int],
                 max_det: int = 100, iou: float = 0.45) -> None:
        self.head = head
        self.iou = iou  # NMS is in the model; this merges the detections of a frame's tiles
        self.num_classes = num_classes
        self.num_boxes = num_boxes
        self.max_det = max_det
        height, width = input_hw
        self._size = np.array([width, height, width, height], np.float32)

    def decode(self, output: np.ndarray, box: Letterbox, min_score: float,
               class_mask: np.ndarray | None = None) -> Detections:
        """``output``: one image's ``[K, 6]``."""
        scores = output[:, 4]
        if not math.isfinite(float(np.add.reduce(scores))):
            return empty(finite=False)
        idx = np.flatnonzero(scores >= min_score)
        if not idx.size:
            return empty()
        rows = output[idx]
        classes = rows[:, 5].astype(np.int64)
        ok = (classes >= 0) & (classes < self.num_classes) & (rows[:, 5] == classes)  # a class id, not padding
        if class_mask is not None:
            ok &= class_mask[classes.clip(0, self.num_classes - 1)] > 0
        rows, classes = rows[ok], classes[ok]
        if not rows.shape[0]:
            return empty()
        if rows.shape[0] > self.max_det:
            top = np.argsort(-rows[:, 4], kind="stable")[: self.max_det]
            rows, classes = rows[top], classes[top]
        if self.head == "rtdetr":
            xyxy = cxcywh_to_xyxy(rows[:, :4] * self._size)
        else:
            xyxy = np.array(rows[:, :4], dtype=np.float32)
        return finish(xyxy, rows[:, 4], classes, box)
