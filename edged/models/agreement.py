"""How well a candidate model (INT8) agrees with a reference (FP32) on the same frames.

The reference's detections above the operating threshold are the ground truth. The
candidate's detections, all of them down to a low score, are ranked to trace a
precision/recall curve per class; AP is the area under its interpolated envelope
at 101 recall points (as COCO does), at IoU 0.5. Also per class: recall at the
operating threshold; and the mean IoU of matched pairs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edged.models.yolo import Detections


@dataclass
class ClassAgreement:
    label: str
    reference: int  # reference boxes (ground truth)
    ap50: float
    recall: float  # at the operating threshold


@dataclass
class Agreement:
    frames: int
    map50: float
    mean_iou: float
    reference_boxes: int
    candidate_boxes: int  # at the operating threshold
    per_class: list[ClassAgreement] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` [n, 4] with every box in ``b`` [m, 4] (xyxy)."""
    if a.size == 0 or b.size == 0:
        return np.zeros((a.shape[0], b.shape[0]), np.float32)
    # Element-wise products, not np.prod: the tracker calls this on every frame, where reductions' overhead shows.
    wh = np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])
    np.maximum(wh, 0.0, out=wh)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    iou: np.ndarray = (inter / (area_a[:, None] + area_b[None, :] - inter + 1e-12)).astype(np.float32)
    return iou


def average_precision(tp: np.ndarray, scores: np.ndarray, positives: int) -> float:
    """AP at 101 recall points from per-detection true-positive flags."""
    if positives == 0:
        return float("nan")
    if tp.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = tp[order].astype(np.float64)
    cum_tp = np.cumsum(hits)
    recall = cum_tp / positives
    precision = cum_tp / np.arange(1, hits.size + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    points = np.linspace(0.0, 1.0, 101)
    idx = np.searchsorted(recall, points, side="left")
    sampled = np.where(idx < envelope.size, envelope[np.minimum(idx, envelope.size - 1)], 0.0)
    return float(sampled.mean())


def _match(ref: np.ndarray, cand: np.ndarray, cand_scores: np.ndarray,
           iou_threshold: float) -> tuple[np.ndarray, list[float], np.ndarray]:
    """Greedy matching by candidate score; returns tp flags, matched IoUs, and matched ref flags."""
    tp = np.zeros(cand.shape[0], bool)
    ious: list[float] = []
    taken = np.zeros(ref.shape[0], bool)
    if ref.size and cand.size:
        overlap = box_iou(cand, ref)
        for i in np.argsort(-cand_scores, kind="stable"):
            row = np.where(taken, -1.0, overlap[i])
            j = int(row.argmax())
            if row[j] >= iou_threshold:
                tp[i] = True
                taken[j] = True
                ious.append(float(row[j]))
    return tp, ious, taken


def compare(reference: list[Detections], candidate: list[Detections], labels: list[str],
            threshold: float, iou_threshold: float = 0.5) -> Agreement:
    """Agreement of ``candidate`` with ``reference`` over the same frames, in order."""
    if len(reference) != len(candidate):
        raise ValueError("reference and candidate cover different frames")
    per_tp: dict[int, list[np.ndarray]] = {}
    per_scores: dict[int, list[np.ndarray]] = {}
    positives: dict[int, int] = {}
    hits_at_threshold: dict[int, int] = {}
    matched_ious: list[float] = []
    candidate_boxes = 0
    for ref, cand in zip(reference, candidate):
        keep_ref = ref.scores >= threshold
        ref_boxes, ref_classes = ref.boxes[keep_ref], ref.classes[keep_ref]
        for cls in np.unique(np.concatenate([ref_classes, cand.classes])).tolist():
            r = ref_boxes[ref_classes == cls]
            mask = cand.classes == cls
            c, s = cand.boxes[mask], cand.scores[mask]
            tp, _, _ = _match(r, c, s, iou_threshold)
            per_tp.setdefault(cls, []).append(tp)
            per_scores.setdefault(cls, []).append(s)
            positives[cls] = positives.get(cls, 0) + int(r.shape[0])
            strong = s >= threshold
            candidate_boxes += int(strong.sum())
            _, ious, taken = _match(r, c[strong], s[strong], iou_threshold)
            hits_at_threshold[cls] = hits_at_threshold.get(cls, 0) + int(taken.sum())
            matched_ious.extend(ious)
    per_class = []
    for cls in sorted(positives):
        if positives[cls] == 0:
            continue
        ap = average_precision(np.concatenate(per_tp[cls]), np.concatenate(per_scores[cls]), positives[cls])
        per_class.append(ClassAgreement(labels[cls], positives[cls], ap, hits_at_threshold[cls] / positives[cls]))
    aps = [c.ap50 for c in per_class]
    return Agreement(
        frames=len(reference),
        map50=float(np.mean(aps)) if aps else float("nan"),
        mean_iou=float(np.mean(matched_ious)) if matched_ious else float("nan"),
        reference_boxes=sum(positives.values()),
        candidate_boxes=candidate_boxes,
        per_class=per_class,
    )
