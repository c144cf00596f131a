"""The head decoders on made-up outputs (the real weights, rewritten into each layout, are in the integration
tests), and the layout recognised from shape and metadata."""

from __future__ import annotations

import numpy as np
import pytest

from edged.errors import ModelError
from edged.models.heads import make_decoder, recognise
from edged.models.heads.raw import yolox_boxes, yolox_grid
from edged.models.yolo import Letterbox

SQUARE = Letterbox.fit(416, 416, 416, 416)


def test_end_to_end_rows_need_no_nms_and_skip_padding() -> None:
    out = np.zeros((300, 6), np.float32)
    out[0] = [10, 20, 110, 220, 0.9, 2]
    out[1] = [12, 22, 112, 222, 0.8, 2]  # overlaps the first: the model kept both, so do we
    out[2] = [0, 0, 50, 50, 0.3, 0]
    out[3] = [0, 0, 50, 50, 0.95, 99]  # not a class of this model
    dets = make_decoder("end2end", 3, (1, 300, 6), (416, 416)).decode(out, SQUARE, 0.5)
    assert len(dets) == 2 and dets.classes.tolist() == [2, 2]
    assert np.allclose(dets.boxes[0], [10 / 416, 20 / 416, 110 / 416, 220 / 416], atol=1e-6)
    masked = make_decoder("end2end", 3, (1, 300, 6), (416, 416)).decode(out, SQUARE, 0.2, np.array([1, 0, 0.0]))
    assert masked.classes.tolist() == [0]


def test_rtdetr_boxes_are_fractions_of_a_stretched_input() -> None:
    out = np.zeros((300, 6), np.float32)
    out[0] = [0.5, 0.5, 0.5, 0.25, 0.7, 1]  # the middle, half as wide and a quarter as tall as the input
    stretched = Letterbox.fit(1280, 720, 640, 640, resize="stretch")
    dets = make_decoder("rtdetr", 2, (1, 300, 6), (640, 640)).decode(out, stretched, 0.5)
    assert np.allclose(dets.boxes[0], [0.25, 0.375, 0.75, 0.625], atol=1e-6)  # fractions of the frame, too


def test_detr_scores_as_probabilities_or_logits() -> None:
    probs = np.zeros((300, 4 + 3), np.float32)
    probs[5] = [0.5, 0.5, 0.2, 0.2, 0.1, 0.8, 0.05]
    dets = make_decoder("detr", 3, (1, 300, 7), (416, 416)).decode(probs, SQUARE, 0.5)
    assert dets.classes.tolist() == [1] and dets.scores[0] == pytest.approx(0.8)
    logits = np.full((300, 7), -9.0, np.float32)
    logits[:, :4] = 0.5
    logits[7, 4:] = [-3.0, 2.0, -1.0]
    decoder = make_decoder("detr", 3, (1, 300, 7), (416, 416))
    dets = decoder.decode(logits, SQUARE, 0.5)
    assert dets.classes.tolist() == [1] and dets.scores[0] == pytest.approx(1 / (1 + np.exp(-2.0)), rel=1e-5)


def test_yolox_grid_is_decoded_only_for_candidates() -> None:
    cells, strides = yolox_grid(416, 416)
    assert cells.shape[0] == yolox_boxes(416, 416) == 52 * 52 + 26 * 26 + 13 * 13
    out = np.zeros((cells.shape[0], 5 + 2), np.float32)
    index = 52 * 52 + 3 * 26 + 5  # stride 16, cell (5, 3)
    assert strides[index] == 16 and cells[index].tolist() == [5, 3]
    out[index] = [0.5, 0.5, np.log(4.0), np.log(2.0), 0.9, 0.1, 0.95]  # centre (88, 56), 64 x 32 px
    dets = make_decoder("yolox", 2, (1, cells.shape[0], 7), (416, 416)).decode(out, SQUARE, 0.5)
    assert dets.classes.tolist() == [1]
    assert np.allclose(dets.boxes[0] * 416, [56, 40, 120, 72], atol=1e-3)


@pytest.mark.parametrize(("shape", "meta", "head", "resize"), [
    ((1, 2535, 85), {}, "yolov5", "letterbox"),
    ((1, 84, 8400), {}, "yolov8", "letterbox"),
    ((1, 300, 6), {"end2end": "True"}, "end2end", "letterbox"),
    ((1, 300, 6), {"end2end": "False", "description": "Ultralytics rtdetr-l model"}, "rtdetr", "stretch"),
    ((1, 300, 84), {}, "detr", "stretch"),
    ((1, 3549, 85), {}, "yolox", "corner"),
])
def test_the_layout_is_recognised(shape: tuple[int, ...], meta: dict[str, str], head: str, resize: str) -> None:
    layout = recognise(shape, 80, (416, 416), meta)
    assert (layout.head, layout.resize) == (head, resize)


def test_what_is_assumed_is_said_and_what_fits_nothing_is_refused() -> None:
    assert "no end2end key" in recognise((1, 300, 6), 80, (640, 640)).assumed
    with pytest.raises(ModelError, match=r"\[1, 17, 17\] with 80 labels fits no layout edged reads: raw YOLOv5"):
        recognise((1, 17, 17), 80, (640, 640))
    with pytest.raises(ModelError, match=r"Ultralytics pose model .* keypoints"):
        recognise((1, 56, 8400), 1, (640, 640), {"task": "pose"})
    decoded = recognise((1, 3549, 85), 80, (416, 416), probe=lambda: np.full((1, 3549, 85), 120.0, np.float32))
    assert decoded.head == "yolov5"  # YOLOX exported with its decoding on: sizes in pixels


def test_stretch_fills_the_input_and_maps_back() -> None:
    box = Letterbox.fit(1280, 720, 640, 640, resize="stretch")
    assert (box.new_w, box.new_h, box.dx, box.dy) == (640, 640, 0, 0) and box.sy == pytest.approx(640 / 720)
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[:, 640:] = 255
    dst = np.zeros((640, 640, 3), np.uint8)
    box.apply(frame, dst)
    assert dst[:, :318].max() == 0 and dst[:, 322:].min() == 255
    xyxy = np.array([[320.0, 0.0, 640.0, 640.0]], np.float32)
    box.to_frame(xyxy)
    assert np.allclose(xyxy, [[0.5, 0.0, 1.0, 1.0]])


def test_yoloxs_corner_letterbox_pads_right_and_below_and_maps_back() -> None:
    """YOLOX's own preproc: the picture at the top left, 114 to its right and below, no centring."""
    box = Letterbox.fit(1280, 720, 416, 416, resize="corner")
    assert (box.new_w, box.new_h, box.dx, box.dy) == (416, 234, 0, 0)
    dst = np.zeros((416, 416, 3), np.uint8)
    box.apply(np.full((720, 1280, 3), 9, np.uint8), dst)
    assert (dst[:234] == 9).all() and (dst[234:] == 114).all()
    xyxy = np.array([[0.0, 0.0, 208.0, 234.0]], np.float32)
    box.to_frame(xyxy)
    assert np.allclose(xyxy, [[0.0, 0.0, 0.5, 1.0]])


def test_a_sidecar_written_before_resize_still_reads() -> None:
    from edged.artifacts.meta import InputMeta

    assert InputMeta.model_validate({"height": 8, "width": 8, "letterbox": False}).resize == "stretch"
    assert InputMeta.model_validate({"height": 8, "width": 8, "letterbox": True}).resize == "letterbox"
    assert InputMeta.model_validate({"height": 8, "width": 8, "resize": "corner"}).resize == "corner"
