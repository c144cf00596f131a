"""Which layout a detector's output is, recognised (never configured) from its output shape, the label count and
the model's metadata (ONNX ``metadata_props``: Ultralytics writes ``end2end``, ``names``, ``imgsz``, ``stride``,
``task`` and ``description``), plus, for the one shape two layouts share, a look at one real output."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from edged.errors import ModelError
from edged.models.heads.raw import yolox_boxes

HEADS = ("yolov5", "yolov8", "yolox", "end2end", "rtdetr", "detr")
RESIZED = {"letterbox": "letterbox", "stretch": "stretched to the input",
           "corner": "letterbox in the top-left corner"}
KNOWN = ("raw YOLOv5-style [N, boxes, 5 + C]; raw YOLOv8/YOLO11-style [N, 4 + C, boxes]; raw YOLOX grid "
         "[N, cells, 5 + C]; end-to-end [N, K, 6] (YOLO26, YOLOv10: x1 y1 x2 y2 score class); Ultralytics RT-DETR "
         "[N, K, 6] (normalised centre/size, score, class); DETR [N, queries, 4 + C]")
NOT_DETECTION = {"segment": "segmentation masks", "pose": "keypoints", "obb": "oriented boxes",
                 "classify": "a classifier's scores"}


@dataclass(frozen=True)
class Layout:
    head: str
    boxes: int
    resize: str = "letterbox"  # models.yolo.RESIZES: stretch (RT-DETR's reference exporter), corner (YOLOX's)
    assumed: str = ""  # what was assumed where the model did not say

    def describe(self, labels: int, source: str) -> str:
        what = {"yolov5": "raw YOLOv5-style head", "yolov8": "raw YOLOv8-style head",
                "yolox": "raw YOLOX grid (strides 8, 16, 32)", "end2end": "end-to-end",
                "rtdetr": "Ultralytics RT-DETR", "detr": "DETR queries"}[self.head]
        nms = "" if self.head in ("yolov5", "yolov8", "yolox") else ", no NMS needed"
        line = f"{what}, {self.boxes} boxes{nms}, {labels} labels from {source}, " \
               f"{RESIZED[self.resize]}"
        return line + (f" ({self.assumed})" if self.assumed else "")


def fits(head: str, output_shape: tuple[int, ...], num_classes: int) -> bool:
    """A head read from a sidecar still matches the engine's output shape and the labels."""
    if len(output_shape) != 3:
        return False
    _, a, b = output_shape
    return {"yolov5": b == 5 + num_classes, "yolox": b == 5 + num_classes, "yolov8": a == 4 + num_classes,
            "end2end": b == 6, "rtdetr": b == 6, "detr": b == 4 + num_classes}.get(head, False)


def unnamed_count(output_shape: list[int]) -> int:
    """The label count of a head with no names: COCO's 80 where one of the layouts that shape could be carries 80
    (an end-to-end head does not say; [N, K, 84] is a DETR's 4 + 80, [N, K, 85] a YOLOv5's 5 + 80), else the raw
    YOLO count, which the error then names."""
    _, a, b = output_shape
    counts = (80,) if b == 6 else (b - 5, b - 4) if a > b else (a - 4,)
    return 80 if 80 in counts else counts[0]


def detr_family(head: str | None, resize: str) -> bool:
    """A transformer query decoder (RT-DETR, DETR queries, RF-DETR, D-FINE/DEIM/RT-DETRv2 fused end-to-end): each
    is fed stretched by its reference exporter, and no YOLO is."""
    return head in ("rtdetr", "detr") or (head == "end2end" and resize == "stretch")


def _truthy(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("true", "1", "yes")


def recognise(output_shape: tuple[int, ...], num_classes: int, input_hw: tuple[int, int],
              metadata: Mapping[str, str] | None = None,
              probe: Callable[[], np.ndarray] | None = None) -> Layout:
    """The layout of a ``[N, a, b]`` output; ModelError naming the shape and the layouts known when none fits.
    ``probe`` gives one real output (for the shape a raw YOLOX grid shares with a decoded one)."""
    meta = metadata or {}
    task = meta.get("task", "detect").strip().lower()
    if task in NOT_DETECTION:
        raise ModelError(f"an Ultralytics {task} model (its head gives {NOT_DETECTION[task]}): edged runs "
                         f"detectors; export the detection model of that family")
    if len(output_shape) != 3:
        raise ModelError(f"detector output has shape {list(output_shape)}; expected [batch, a, b]. Layouts edged "
                         f"reads: {KNOWN}")
    _, a, b = output_shape
    end2end = _truthy(meta.get("end2end"))
    rtdetr = "rtdetr" in meta.get("description", "").lower().replace("-", "")
    if b == 6 and num_classes != 2 and a > b:
        if rtdetr:
            return Layout("rtdetr", a, resize="stretch")
        if end2end is None:
            return Layout("end2end", a, assumed="assumed end-to-end x1 y1 x2 y2 in input pixels: the model's "
                                                "metadata has no end2end key")
        if end2end:  # D-FINE/DEIM/RT-DETRv2 (fused at export) resize to the input as RT-DETR does
            return Layout("end2end", a, resize="stretch" if meta.get("edged_fused") == "dfine" else "letterbox")
    if b == 5 + num_classes:
        if a == yolox_boxes(*input_hw) and not _decoded(probe):
            return Layout("yolox", a, resize="corner")  # YOLOX pads right and below (its preproc)
        return Layout("yolov5", a)
    if a == 4 + num_classes and b > a:
        return Layout("yolov8", b)
    if b == 4 + num_classes and a < b * 20:
        return Layout("detr", a, resize="stretch")
    raise ModelError(f"detector output shape {list(output_shape)} with {num_classes} labels fits no layout edged "
                     f"reads: {KNOWN}; do the labels match the model?")


def _decoded(probe: Callable[[], np.ndarray] | None) -> bool:
    """A YOLOX exported with its decoding on gives sizes in input pixels (tens to hundreds); raw, the log of the
    size in strides (about -1 to 3: a median over 4 would be boxes of 55 strides). Without a probe: raw, as
    YOLOX's exporter leaves it by default."""
    if probe is None:
        return False
    out = probe()
    sizes = np.abs(out.reshape(-1, out.shape[-1])[:, 2:4])
    return float(np.median(sizes)) > 4.0
