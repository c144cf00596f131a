"""Raw YOLO heads, which leave NMS to us:

- ``yolov5``: ``[boxes, 5 + C]``, centre/size in input pixels, objectness, class probabilities (Darknet
  YOLOv3/v4 converted by edged, YOLOv5/v7 exports, YOLOX exported with its decoding);
- ``yolov8``: ``[4 + C, boxes]``, no objectness (Ultralytics YOLOv8/YOLO11, YOLO26/YOLOv10 exported raw);
- ``yolox``: ``[boxes, 5 + C]`` as YOLOX's exporter leaves it by default (``decode_in_inference=False``): one box
  per grid cell over strides 8, 16, 32, centre as an offset in the cell and size as a log of the stride; the
  grid is decoded here, only for the candidates over the score.
"""

from __future__ import annotations

import math

import numpy as np

from edged.models.heads.common import cxcywh_to_xyxy, empty, finish, nms
from edged.models.yolo import Detections, Letterbox

YOLOX_STRIDES = (8, 16, 32)


def yolox_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """YOLOX's cell order: stride 8, 16, 32, each row-major; returns (cell x y, stride) per box."""
    cells, strides = [], []
    for stride in YOLOX_STRIDES:
        h, w = height // stride, width // stride
        ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full(h * w, stride, dtype=np.float32))
    return np.concatenate(cells), np.concatenate(strides)


def yolox_boxes(height: int, width: int) -> int:
    return sum((height // s) * (width // s) for s in YOLOX_STRIDES)


class RawYoloDecoder:
    """Decodes one image's output into Detections. Built once per engine: per-box scratch arrays are allocated
    here and reused for every frame."""

    def __init__(self, head: str, num_classes: int, num_boxes: int, input_hw: tuple[int, int] = (0, 0),
                 iou: float = 0.45, max_det: int = 100, max_candidates: int = 3000) -> None:
        self.head = head
        self.num_classes = num_classes
        self.num_boxes = num_boxes
        self.iou = iou
        self.max_det = max_det
        self.max_candidates = max_candidates
        self._best = np.empty(num_boxes, dtype=np.float32)
        self._mask = np.empty(num_boxes, dtype=bool)
        self._cells = self._strides = np.empty(0, np.float32)
        if head == "yolox":
            self._cells, self._strides = yolox_grid(*input_hw)
            if self._strides.size != num_boxes:
                raise ValueError(f"a YOLOX head at {input_hw[1]}x{input_hw[0]} has {self._strides.size} boxes, "
                                 f"not {num_boxes}")

    def decode(self, output: np.ndarray, box: Letterbox, min_score: float,
               class_mask: np.ndarray | None = None) -> Detections:
        """``output``: one image's raw output (``[boxes, 5 + C]`` or ``[4 + C, boxes]``)."""
        if self.head in ("yolov5", "yolox"):
            # score = objectness x class probability <= objectness: prefilter on objectness.
            if not math.isfinite(float(np.add.reduce(output[:, 4]))):  # NaN or inf anywhere in the scores
                return empty(finite=False)
            np.greater_equal(output[:, 4], min_score, out=self._mask)
            idx = np.flatnonzero(self._mask)
            rows = output[idx]
            xywh = rows[:, :4]
            if self.head == "yolox":
                stride = self._strides[idx, None]
                xywh = np.concatenate([(xywh[:, :2] + self._cells[idx]) * stride, np.exp(xywh[:, 2:4]) * stride],
                                      axis=1)
            cls_scores = rows[:, 5:] * rows[:, 4:5]
        else:
            np.max(output[4:], axis=0, out=self._best)
            if not math.isfinite(float(np.add.reduce(self._best))):
                return empty(finite=False)
            np.greater_equal(self._best, min_score, out=self._mask)
            idx = np.flatnonzero(self._mask)
            rows = output[:, idx].T
            xywh = rows[:, :4]
            cls_scores = rows[:, 4:]
        if class_mask is not None and idx.size:
            cls_scores = cls_scores * class_mask
        classes = cls_scores.argmax(axis=1) if idx.size else np.empty(0, dtype=np.int64)
        scores = cls_scores[np.arange(idx.size), classes] if idx.size else np.empty(0, np.float32)
        ok = scores >= min_score
        if not ok.any():
            return empty()
        xywh, scores, classes = xywh[ok], scores[ok], classes[ok]
        if not np.isfinite(xywh).all() or not np.isfinite(scores).all():
            return empty(finite=False)
        if scores.size > self.max_candidates:
            top = np.argpartition(-scores, self.max_candidates)[: self.max_candidates]
            xywh, scores, classes = xywh[top], scores[top], classes[top]
        xyxy = cxcywh_to_xyxy(xywh)
        keep = nms(xyxy, scores, classes, self.iou, self.max_det)
        return finish(xyxy[keep], scores[keep], classes[keep], box)
