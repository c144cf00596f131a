"""Second boxes: the detector boxes one object twice, a few pixels apart (a small person, every few frames) or a
part inside the whole (a wheel, a headlight of the same class). A second box must neither start an object of its
own nor take up a lost one: that is how spare tracks were born and how a lost identity wandered onto a passer-by
(on the plaza footage of ``edged bench``'s counting rows the counts held exactly for ``TWIN_IOU`` from 0.15 to 0.25;
0.2 is the middle)."""

from __future__ import annotations

import numpy as np

from edged.models.agreement import box_iou
from edged.models.yolo import Detections

TWIN_IOU = 0.2  # a detection overlapping a matched one this much (same class) is its twin
PART_SHARE = 0.8  # a detection this much inside a followed one of its class is a part of it, not a new object


def untwinned(dets: Detections, high: np.ndarray, matched: dict[int, int]) -> np.ndarray:
    """The high detections that neither are matched nor overlap a matched one by ``TWIN_IOU`` (the detector's
    second box on the same object, or one beside it): a twin takes up no other track, for that is how an
    identity wanders onto someone else."""
    if not matched:
        return high
    paired = np.fromiter(matched.values(), np.int64, len(matched))
    twins = (box_iou(dets.boxes[paired], dets.boxes) >= TWIN_IOU) & \
        (dets.classes[paired][:, None] == dets.classes[None, :])
    free: np.ndarray = high & ~twins.any(axis=0)
    return free


def not_parts(dets: Detections, fresh: list[int], followed: list[int]) -> list[int]:
    """``fresh`` detections that are not a part of another (a second box the detector drew inside an object it
    also boxed whole, such as a wheel or a headlight of the same class: no new object starts there). Larger boxes
    are taken first; a followed detection or a larger fresh one can hold a part."""
    if not fresh or len(fresh) + len(followed) < 2:
        return fresh
    boxes, classes = dets.boxes, dets.classes
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    holders = list(followed)
    kept = []
    for index in sorted(fresh, key=lambda i: -float(area[i])):
        if holders:
            others = boxes[holders]
            tl = np.maximum(boxes[index, :2], others[:, :2])
            br = np.minimum(boxes[index, 2:], others[:, 2:])
            common = np.prod(np.clip(br - tl, 0, None), axis=1)
            inside = common / max(float(area[index]), 1e-9)
            iou = common / (area[index] + area[holders] - common + 1e-9)
            if (((inside >= PART_SHARE) | (iou >= TWIN_IOU)) & (classes[holders] == classes[index])).any():
                continue
        kept.append(index)
        holders.append(index)
    return sorted(kept)
