"""Letterbox geometry, decoding of both YOLO layouts, class-aware NMS."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence

import numpy as np
import pytest

from edged.errors import ModelError
from edged.models.heads import recognise
from edged.models.heads.raw import RawYoloDecoder
from edged.models.yolo import PAD_VALUE, Detections, Letterbox, class_mask


@pytest.mark.parametrize(
    ("src", "expect"),
    [
        ((1280, 720), (416, 234, 0, 91)),
        ((810, 1080), (312, 416, 52, 0)),
        ((416, 416), (416, 416, 0, 0)),
        ((640, 272), (416, 177, 0, 119)),
    ],
)
def test_letterbox_geometry(src: tuple[int, int], expect: tuple[int, int, int, int]) -> None:
    box = Letterbox.fit(src[0], src[1], 416, 416)
    assert (box.new_w, box.new_h, box.dx, box.dy) == expect


def test_letterbox_writes_in_place_and_pads() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    tensor = np.zeros((2, 416, 416, 3), dtype=np.uint8)
    box = Letterbox.fit(1280, 720, 416, 416)
    box.apply(image, tensor[1])
    assert (tensor[0] == 0).all()  # the other batch item is untouched
    assert (tensor[1, : box.dy] == PAD_VALUE).all() and (tensor[1, box.dy + box.new_h:] == PAD_VALUE).all()
    inner = tensor[1, box.dy: box.dy + box.new_h]
    assert not (inner == PAD_VALUE).all()
    # A flat grey image stays that grey after resizing.
    box.apply(np.full((720, 1280, 3), 77, np.uint8), tensor[1])
    assert (tensor[1, box.dy: box.dy + box.new_h] == 77).all()


def test_letterbox_allocates_nothing_frame_sized() -> None:
    image = np.random.default_rng(1).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    tensor = np.zeros((1, 416, 416, 3), dtype=np.uint8)
    box = Letterbox.fit(1280, 720, 416, 416)
    box.apply(image, tensor[0])  # warm OpenCV's internal buffers
    tracemalloc.start()
    for _ in range(50):
        box.apply(image, tensor[0])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 416 * 416 * 3 // 10, peak


def v5_output(rows: Sequence[tuple[float, float, float, float, float, int, float]], classes: int = 3,
              total: int = 20) -> np.ndarray:
    """[total, 5 + classes] with the given (cx, cy, w, h, obj, class, class_prob) rows, the rest empty."""
    out = np.zeros((total, 5 + classes), np.float32)
    for i, (cx, cy, w, h, obj, cls, prob) in enumerate(rows):
        out[i, :5] = (cx, cy, w, h, obj)
        out[i, 5 + cls] = prob
    return out


def test_decode_v5_maps_boxes_back_to_the_source_frame() -> None:
    box = Letterbox.fit(1280, 720, 416, 416)  # scale 0.325, dy 91
    # A box covering x 104..312, y 141..291 of the input: x 320..960, y 153.8..615.4 of the frame.
    out = v5_output([(208, 216, 208, 150, 0.9, 1, 0.8)])
    dets = RawYoloDecoder("yolov5", 3, 20).decode(out, box, min_score=0.5)
    assert len(dets) == 1 and dets.classes[0] == 1
    assert dets.scores[0] == pytest.approx(0.72, abs=1e-6)
    np.testing.assert_allclose(dets.boxes[0], [320 / 1280, (141 - 91) / 0.325 / 720, 960 / 1280,
                                               (291 - 91) / 0.325 / 720], atol=1e-4)


def test_decode_v8_layout_and_score_threshold() -> None:
    box = Letterbox.fit(416, 416, 416, 416)
    rows = np.zeros((4 + 3, 30), np.float32)
    rows[:4, 0] = (100, 100, 40, 40)
    rows[4 + 2, 0] = 0.6
    rows[:4, 1] = (300, 300, 40, 40)
    rows[4 + 0, 1] = 0.3  # below min_score
    dets = RawYoloDecoder("yolov8", 3, 30).decode(rows, box, min_score=0.5)
    assert len(dets) == 1 and int(dets.classes[0]) == 2
    np.testing.assert_allclose(dets.boxes[0], [80 / 416, 80 / 416, 120 / 416, 120 / 416], atol=1e-5)


def test_nms_is_class_aware() -> None:
    box = Letterbox.fit(416, 416, 416, 416)
    out = v5_output([
        (100, 100, 50, 50, 0.9, 0, 1.0),
        (102, 101, 50, 50, 0.8, 0, 1.0),  # same class, overlapping: suppressed
        (101, 100, 50, 50, 0.7, 1, 1.0),  # other class, same place: kept
        (300, 300, 50, 50, 0.6, 0, 1.0),  # same class, elsewhere: kept
    ])
    dets = RawYoloDecoder("yolov5", 3, 20, iou=0.45).decode(out, box, min_score=0.5)
    kept = sorted(zip(dets.classes.tolist(), [round(float(s), 2) for s in dets.scores]))
    assert kept == [(0, 0.6), (0, 0.9), (1, 0.7)]


def test_max_detections_and_class_mask() -> None:
    box = Letterbox.fit(416, 416, 416, 416)
    rows = [(20 + 40 * i, 200, 30, 30, 0.9 - 0.01 * i, i % 3, 1.0) for i in range(9)]
    out = v5_output(rows)
    assert len(RawYoloDecoder("yolov5", 3, 20, max_det=4).decode(out, box, 0.5)) == 4
    mask = class_mask(["a", "b", "c"], ["b"])
    dets = RawYoloDecoder("yolov5", 3, 20).decode(out, box, 0.5, mask)
    assert set(dets.classes.tolist()) == {1} and len(dets) == 3


def test_class_mask_rejects_unknown_labels() -> None:
    assert class_mask(["a", "b"], []) is None
    with pytest.raises(ModelError, match="'zebra' is not one of the model's 2 labels"):
        class_mask(["a", "b"], ["zebra"])


def test_head_is_told_apart_by_shape() -> None:
    assert recognise((1, 2535, 85), 80, (416, 416)).head == "yolov5"
    assert recognise((1, 84, 8400), 80, (640, 640)).head == "yolov8"
    with pytest.raises(ModelError, match="do the labels match the model"):
        recognise((1, 2535, 85), 20, (416, 416))


def test_two_tiles_cover_the_frame_and_an_object_in_their_overlap_is_one_detection() -> None:
    from edged.analytics.regions import tiles
    from edged.models.heads.common import merge

    assert tiles(768, 576) == ((0, 0, 461, 576), (307, 0, 461, 576))
    assert tiles(576, 768) == ((0, 0, 576, 461), (0, 307, 576, 461))
    left = Detections(np.array([[0.45, 0.2, 0.5, 0.4], [0.1, 0.1, 0.2, 0.3]], np.float32),
                      np.array([0.6, 0.9], np.float32), np.array([0, 0], np.int64))
    right = Detections(np.array([[0.451, 0.2, 0.5, 0.41], [0.45, 0.2, 0.5, 0.4]], np.float32),
                       np.array([0.7, 0.5], np.float32), np.array([0, 2], np.int64))
    merged = merge([left, right], 0.45)
    assert len(merged) == 3  # the person in the overlap once (its best score), the car at the same place kept
    assert sorted(merged.scores.tolist()) == pytest.approx([0.5, 0.7, 0.9])
