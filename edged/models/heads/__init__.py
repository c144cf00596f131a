"""Head decoders: one per output layout, pure array math.

A detector's output is one of the layouts in ``layout.HEADS``, recognised from its shape, label count and
metadata (``layout.recognise``), never configured. ``make_decoder`` builds the decoder once per engine; its
``decode(output, letterbox, min_score, class_mask)`` turns one image's output into ``Detections``: boxes as
normalised xyxy of the source frame (through the same letterbox, stretch or motion-region crop for every
layout), scores, class ids. NMS runs only where the layout leaves it to us (the raw heads).

- ``raw``: ``yolov5``, ``yolov8``, ``yolox`` (grid decoding);
- ``end2end``: ``end2end`` (YOLO26, YOLOv10) and ``rtdetr`` (Ultralytics RT-DETR), NMS done in the model;
- ``detr``: DETR queries with a score per class.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from edged.models.heads.detr import DetrDecoder
from edged.models.heads.end2end import EndToEndDecoder
from edged.models.heads.layout import HEADS, KNOWN, Layout, fits, recognise
from edged.models.heads.raw import RawYoloDecoder
from edged.models.yolo import Detections, Letterbox

__all__ = ["HEADS", "KNOWN", "Decoder", "Layout", "fits", "make_decoder", "recognise"]


class Decoder(Protocol):
    head: str
    iou: float  # the configured NMS IoU (engine.iou): the raw heads' NMS, and merging a frame's tiles for every head

    def decode(self, output: np.ndarray, box: Letterbox, min_score: float,
               class_mask: np.ndarray | None = None) -> Detections: ...


def make_decoder(head: str, num_classes: int, output_shape: tuple[int, ...], input_hw: tuple[int, int],
                 iou: float = 0.45, max_det: int = 100) -> Decoder:
    """The decoder of ``head`` for an engine whose output is ``output_shape`` ([batch, a, b])."""
    _, a, b = output_shape
    if head in ("yolov5", "yolox"):
        return RawYoloDecoder(head, num_classes, a, input_hw, iou=iou, max_det=max_det)
    if head == "yolov8":
        return RawYoloDecoder(head, num_classes, b, input_hw, iou=iou, max_det=max_det)
    if head in ("end2end", "rtdetr"):
        return EndToEndDecoder(head, num_classes, a, input_hw, max_det=max_det, iou=iou)
    if head == "detr":
        return DetrDecoder(num_classes, a, input_hw, max_det=max_det, iou=iou)
    raise ValueError(f"no decoder for head {head!r}")
