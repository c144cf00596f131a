"""INT8-vs-FP32 agreement: AP at IoU 0.5, recall at the operating threshold, matched IoU."""

from __future__ import annotations

import numpy as np
import pytest

from edged.models.agreement import average_precision, box_iou, compare
from edged.models.yolo import Detections

LABELS = ["person", "car", "dog"]


def dets(*rows: tuple[float, float, float, float, float, int]) -> Detections:
    if not rows:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    a = np.array(rows, np.float64)
    return Detections(a[:, :4].astype(np.float32), a[:, 4].astype(np.float32), a[:, 5].astype(np.int64))


def test_box_iou() -> None:
    a = np.array([[0, 0, 0.5, 0.5]], np.float32)
    b = np.array([[0, 0, 0.5, 0.5], [0.25, 0, 0.75, 0.5], [0.6, 0.6, 0.9, 0.9]], np.float32)
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 1 / 3, 0.0], atol=1e-6)


def test_average_precision_by_hand() -> None:
    # ranked: TP, FP, TP with 2 positives -> precision 1, .5, .667 at recall .5, .5, 1
    ap = average_precision(np.array([True, False, True]), np.array([0.9, 0.8, 0.7]), 2)
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101  # envelope: 1.0 up to recall .5, then 2/3
    assert ap == pytest.approx(expected, abs=1e-9)
    assert average_precision(np.array([], bool), np.array([]), 3) == 0.0


def test_identical_detections_agree_perfectly() -> None:
    frame = dets((0.1, 0.1, 0.3, 0.5, 0.9, 0), (0.5, 0.5, 0.9, 0.9, 0.7, 1))
    a = compare([frame, frame], [frame, frame], LABELS, threshold=0.4)
    assert a.map50 == pytest.approx(1.0) and a.mean_iou == pytest.approx(1.0)
    assert [(c.label, c.reference, c.recall) for c in a.per_class] == [("person", 2, 1.0), ("car", 2, 1.0)]


def test_missed_and_moved_boxes_lower_the_figures() -> None:
    ref = dets((0.1, 0.1, 0.3, 0.5, 0.9, 0), (0.5, 0.5, 0.9, 0.9, 0.8, 0))
    cand = dets((0.12, 0.1, 0.32, 0.5, 0.85, 0), (0.5, 0.5, 0.9, 0.9, 0.2, 0))  # second one is weak
    a = compare([ref], [cand], LABELS, threshold=0.4)
    person = a.per_class[0]
    assert person.recall == 0.5  # only one candidate box above the operating threshold
    assert person.ap50 == pytest.approx(1.0)  # ranked by score, both are still found
    assert 0.8 < a.mean_iou < 1.0


def test_wrong_class_and_low_reference_scores() -> None:
    ref = dets((0.1, 0.1, 0.3, 0.5, 0.9, 0), (0.6, 0.6, 0.7, 0.7, 0.2, 2))  # the dog is under the threshold
    cand = dets((0.1, 0.1, 0.3, 0.5, 0.9, 1))  # right place, wrong class
    a = compare([ref], [cand], LABELS, threshold=0.4)
    assert a.reference_boxes == 1 and a.map50 == 0.0
    assert [c.label for c in a.per_class] == ["person"]


def test_frames_must_line_up() -> None:
    with pytest.raises(ValueError):
        compare([dets()], [], LABELS, 0.4)
