"""YOLO family: letterbox geometry, output decoding and class-aware NMS.

Two output layouts, told apart by shape:
- ``yolov5``: ``[boxes, 5 + classes]`` with objectness (Darknet YOLOv3/v4 converted
  by edged, YOLOv5/v7 exports);
- ``yolov8``: ``[4 + classes, boxes]`` without objectness (Ultralytics YOLOv8/YOLO11).

Boxes come back in input pixels as centre/size; the decoder maps them to the
source frame and normalises them to 0..1 xyxy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from edged.errors import ModelError

Head = Literal["yolov5", "yolov8"]
PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How a source frame maps into the network input: scale, then centre with padding."""

    src_w: int
    src_h: int
    dst_w: int
    dst_h: int
    scale: float
    new_w: int
    new_h: int
    dx: int
    dy: int
    # A crop of a larger frame (motion regions): where the crop's top left is in it, and its size.
    ox: int = 0
    oy: int = 0
    full_w: int = 0  # 0: the source is the whole frame
    full_h: int = 0

    @classmethod
    def fit(cls, src_w: int, src_h: int, dst_w: int, dst_h: int,
            crop: tuple[int, int, int, int] | None = None) -> Letterbox:
        """``crop``: (x, y, full width, full height) when the source is a crop of a larger frame."""
        scale = min(dst_w / src_w, dst_h / src_h)
        new_w = max(1, min(dst_w, round(src_w * scale)))
        new_h = max(1, min(dst_h, round(src_h * scale)))
        dx, dy = (dst_w - new_w) // 2, (dst_h - new_h) // 2
        if crop is None:
            return cls(src_w, src_h, dst_w, dst_h, scale, new_w, new_h, dx, dy)
        return cls(src_w, src_h, dst_w, dst_h, scale, new_w, new_h, dx, dy, *crop)

    def same_borders(self, other: Letterbox | None) -> bool:
        """``other`` left the same borders in a buffer (the same placement of the picture)."""
        return other is not None and (other.dst_w, other.dst_h, other.new_w, other.new_h, other.dx, other.dy) == (
            self.dst_w, self.dst_h, self.new_w, self.new_h, self.dx, self.dy)

    def apply(self, image: np.ndarray, dst: np.ndarray, borders: bool = True) -> None:
        """Resize ``image`` into ``dst`` (an ``[H, W, 3]`` view) and paint the borders.

        Writes only into ``dst``; allocates nothing frame-sized. ``borders=False``: the
        caller knows ``dst`` already has this letterbox's borders (same geometry last time).
        """
        dx, dy, nw, nh = self.dx, self.dy, self.new_w, self.new_h
        if borders and dy:
            dst[:dy] = PAD_VALUE
            dst[dy + nh:] = PAD_VALUE
        if borders and dx:
            dst[dy:dy + nh, :dx] = PAD_VALUE
            dst[dy:dy + nh, dx + nw:] = PAD_VALUE
        inner = dst[dy:dy + nh, dx:dx + nw]
        if (nw, nh) == (self.src_w, self.src_h):
            np.copyto(inner, image)
        else:
            cv2.resize(image, (nw, nh), dst=inner, interpolation=cv2.INTER_LINEAR)


@dataclass
class Detections:
    """Detections for one frame: boxes normalised xyxy, scores, class ids.

    ``finite`` is False when the engine's output held NaN or inf (an f16 engine on a
    device it does not fit, for one): then there are no detections to trust, which is
    not the same as "nothing there".
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    finite: bool = True

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def head_from_shape(shape: tuple[int, ...], num_classes: int) -> Head:
    """Tell the output layout from a ``[N, a, b]`` output shape."""
    if len(shape) != 3:
        raise ModelError(f"detector output has shape {list(shape)}; expected [batch, a, b]")
    _, a, b = shape
    if b == 5 + num_classes:
        return "yolov5"
    if a == 4 + num_classes:
        return "yolov8"
    raise ModelError(
        f"detector output shape {list(shape)} fits neither [N, boxes, 5 + {num_classes}] (YOLOv5-style) "
        f"nor [N, 4 + {num_classes}, boxes] (YOLOv8-style); do the labels match the model?"
    )


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_det: int) -> np.ndarray:
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


class YoloDecoder:
    """Decodes one image's output into Detections. Built once per engine.

    Per-box scratch arrays are allocated here, once, and reused for every frame.
    """

    def __init__(
        self,
        head: Head,
        num_classes: int,
        num_boxes: int,
        iou: float = 0.45,
        max_det: int = 100,
        max_candidates: int = 3000,
    ) -> None:
        self.head = head
        self.num_classes = num_classes
        self.num_boxes = num_boxes
        self.iou = iou
        self.max_det = max_det
        self.max_candidates = max_candidates
        self._best = np.empty(num_boxes, dtype=np.float32)
        self._mask = np.empty(num_boxes, dtype=bool)

    def decode(
        self,
        output: np.ndarray,
        box: Letterbox,
        min_score: float,
        class_mask: np.ndarray | None = None,
    ) -> Detections:
        """``output``: one image's raw output (``[boxes, 5+C]`` or ``[4+C, boxes]``)."""
        if self.head == "yolov5":
            # score = objectness x class probability <= objectness: prefilter on objectness.
            if not math.isfinite(float(np.add.reduce(output[:, 4]))):  # NaN or inf anywhere in the scores
                return _empty(finite=False)
            np.greater_equal(output[:, 4], min_score, out=self._mask)
            idx = np.flatnonzero(self._mask)
            rows = output[idx]
            xywh = rows[:, :4]
            cls_scores = rows[:, 5:] * rows[:, 4:5]
        else:
            np.max(output[4:], axis=0, out=self._best)
            if not math.isfinite(float(np.add.reduce(self._best))):
                return _empty(finite=False)
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
            return _empty()
        xywh, scores, classes = xywh[ok], scores[ok], classes[ok]
        if not np.isfinite(xywh).all() or not np.isfinite(scores).all():
            return _empty(finite=False)
        if scores.size > self.max_candidates:
            top = np.argpartition(-scores, self.max_candidates)[: self.max_candidates]
            xywh, scores, classes = xywh[top], scores[top], classes[top]
        xyxy = np.empty((scores.size, 4), dtype=np.float32)
        xyxy[:, :2] = xywh[:, :2] - xywh[:, 2:] / 2
        xyxy[:, 2:] = xywh[:, :2] + xywh[:, 2:] / 2
        offset = classes[:, None].astype(np.float32) * 8192.0
        keep = _nms(xyxy + offset, scores, self.iou, self.max_det)
        xyxy, scores, classes = xyxy[keep], scores[keep], classes[keep]
        if box.full_w:  # a crop: back to the whole frame
            xyxy[:, [0, 2]] = (((xyxy[:, [0, 2]] - box.dx) / box.scale).clip(0.0, box.src_w) + box.ox) / box.full_w
            xyxy[:, [1, 3]] = (((xyxy[:, [1, 3]] - box.dy) / box.scale).clip(0.0, box.src_h) + box.oy) / box.full_h
        else:
            xyxy[:, [0, 2]] = ((xyxy[:, [0, 2]] - box.dx) / box.scale / box.src_w).clip(0.0, 1.0)
            xyxy[:, [1, 3]] = ((xyxy[:, [1, 3]] - box.dy) / box.scale / box.src_h).clip(0.0, 1.0)
        return Detections(xyxy, scores.astype(np.float32), classes.astype(np.int64))


def _empty(finite: bool = True) -> Detections:
    return Detections(np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, np.int64), finite)


def class_mask(labels: list[str], wanted: list[str] | None) -> np.ndarray | None:
    """A 0/1 vector over the model's classes, or None for 'all labels'."""
    if not wanted:
        return None
    index = {name: i for i, name in enumerate(labels)}
    mask = np.zeros(len(labels), dtype=np.float32)
    for name in wanted:
        if name not in index:
            raise ModelError(f"label '{name}' is not one of the model's {len(labels)} labels")
        mask[index[name]] = 1.0
    return mask
