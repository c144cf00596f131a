"""Motion on the grey copy: noise, brightness changes, masks and blobs; the gate; regions."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edged.analytics.gate import CameraGate
from edged.analytics.motion import MotionDetector, grey_shape
from edged.analytics.regions import crop_for, regions_apply
from edged.config.models import CameraConfig, MotionConfig
from edged.models.heads.raw import RawYoloDecoder
from edged.models.yolo import Letterbox

RNG = np.random.default_rng(7)
# A scene with structure: blocks of different grey, softened.
SCENE = cv2.GaussianBlur(cv2.resize(RNG.integers(30, 220, (18, 32), dtype=np.uint8), (320, 180),
                                    interpolation=cv2.INTER_NEAREST), (0, 0), 2)


def noisy(image: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    return np.clip(image + RNG.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def with_square(image: np.ndarray, x: int, y: int, size: int = 20, value: int = 250) -> np.ndarray:
    out = image.copy()
    out[y:y + size, x:x + size] = value
    return out


def warmed(config: MotionConfig | None = None) -> MotionDetector:
    detector = MotionDetector(config or MotionConfig())
    for i in range(10):
        assert not detector.update(noisy(SCENE), i * 0.1).active
    return detector


def test_sensor_noise_is_not_motion() -> None:
    detector = warmed()
    assert not any(detector.update(noisy(SCENE, 5.0), 1 + i * 0.1).active for i in range(30))


def test_a_moving_object_is_found_where_it_is() -> None:
    detector = warmed()
    result = detector.update(noisy(with_square(SCENE, 200, 100)), 1.0)
    assert result.active and len(result.boxes) == 1
    x1, y1, x2, y2 = result.boxes[0]
    assert x1 <= 200 / 320 <= x2 and y1 <= 100 / 180 <= y2 and (x2 - x1) < 0.2


def test_the_whole_picture_getting_brighter_is_not_motion() -> None:
    detector = warmed()
    brighter = np.clip(SCENE.astype(np.int16) + 40, 0, 255).astype(np.uint8)
    assert not detector.update(noisy(brighter), 1.0).active  # a lamp, auto exposure: taken out


def test_a_sudden_change_of_everything_is_relearned_not_motion() -> None:
    detector = warmed()
    infrared = 255 - SCENE  # the camera switched to IR at dusk: every pixel changed differently
    first = detector.update(infrared, 1.0)
    assert first.storm and not first.active and detector.storms == 1
    assert not detector.update(noisy(infrared), 1.1).active  # the new picture is the background now


def test_motion_under_a_mask_is_ignored_and_a_reload_moves_the_mask() -> None:
    mask = [[(0.5, 0.4), (0.8, 0.4), (0.8, 0.8), (0.5, 0.8)]]
    detector = warmed(MotionConfig(masks=mask))
    assert not detector.update(noisy(with_square(SCENE, 200, 100)), 1.0).active
    detector.set_masks([])
    assert detector.update(noisy(with_square(SCENE, 200, 100)), 1.1).active


def test_grey_shape_keeps_the_aspect_and_never_upscales() -> None:
    assert grey_shape(1280, 720, 320) == (180, 320)
    assert grey_shape(176, 144, 320) == (144, 176)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0


def gate(**motion: object) -> CameraGate:
    config = CameraConfig(url="x.mp4", motion=MotionConfig(**motion))
    return CameraGate("cam", config, lambda camera, transition: None)


def test_the_gate_holds_back_still_frames_and_refreshes() -> None:
    g = gate(refresh_s=2.0, hold_s=0.5)
    verdicts = [g.decide(noisy(SCENE), i * 0.1) for i in range(50)]  # 5 s of a still scene at 10/s
    inferred = [i for i, v in enumerate(verdicts) if v is not None]
    assert inferred == [0, 20, 40] and all(verdicts[i].gate == "refresh" for i in inferred)  # type: ignore[union-attr]
    moved = g.decide(noisy(with_square(SCENE, 100, 50)), 5.0)
    assert moved is not None and moved.gate == "motion" and moved.motion is not None
    held = [g.decide(noisy(with_square(SCENE, 100, 50)), 5.0 + i * 0.1) for i in range(1, 10)]
    assert sum(v is not None for v in held[:4]) == 4  # within hold_s of the motion
    stats = g.stats()
    assert stats.inferred + stats.gated == 60 and stats.by_motion >= 1


def test_gating_off_infers_every_frame_but_still_measures() -> None:
    g = gate(enabled=False)
    verdicts = [g.decide(noisy(SCENE), i * 0.1) for i in range(10)]
    assert all(v is not None and v.gate == "off" for v in verdicts)


def test_regions_only_for_large_frames_and_inside_them() -> None:
    assert regions_apply("auto", 3840, 2160, 416, 416) and not regions_apply("auto", 1280, 720, 416, 416)
    assert regions_apply("on", 640, 480, 416, 416) and not regions_apply("off", 3840, 2160, 416, 416)
    crop = crop_for((0.9, 0.9, 0.95, 0.98), 3840, 2160, 416, 416, 0.5)
    assert crop is not None
    x, y, w, h = crop
    assert (w, h) == (416, 416) and x + w <= 3840 and y + h <= 2160 and x <= 0.9 * 3840
    assert crop_for((0.1, 0.1, 0.9, 0.9), 3840, 2160, 416, 416, 0.5) is None  # most of the frame: all of it


def test_boxes_found_in_a_crop_map_back_to_the_whole_frame() -> None:
    # One YOLOv5-style box at the centre of a 416x416 input, 100x200 input pixels.
    output = np.zeros((1, 6), np.float32)
    output[0] = [208, 208, 100, 200, 0.9, 1.0]
    crop = (1000, 500, 832, 832)  # 2x larger than the input: scale 0.5
    box = Letterbox.fit(832, 832, 416, 416, (*crop[:2], 3840, 2160))
    dets = RawYoloDecoder("yolov5", 1, 1).decode(output, box, 0.5)
    expected = [(1000 + 416 - 100) / 3840, (500 + 416 - 200) / 2160, (1000 + 416 + 100) / 3840,
                (500 + 416 + 200) / 2160]
    assert dets.boxes[0] == pytest.approx(expected, abs=1e-4)


def test_a_new_object_is_confirmed_within_a_budget_of_extra_looks() -> None:
    g = gate(refresh_s=5.0)
    assert g.decide(noisy(SCENE), 0.0) is not None  # the first frame: a refresh
    g.demand.want_until("confirm", 10.0)  # analytics has an object to confirm (it keeps asking: a flicker)
    verdicts = [g.decide(noisy(SCENE), 0.1 * i) for i in range(1, 49)]
    looks = [v.gate for v in verdicts if v is not None]
    assert looks == ["confirm", "confirm"]  # then nothing until the next refresh
    after = g.decide(noisy(SCENE), 5.2)  # refresh_s after the last look
    assert after is not None and after.gate == "refresh"
    assert g.decide(noisy(SCENE), 5.3) is not None  # a fresh budget after each refresh


def test_with_gating_off_only_the_tamper_check_takes_a_grey_copy() -> None:
    g = gate(enabled=False)
    looks = 0
    for i in range(30):  # 3 s at 10/s
        now = i * 0.1
        verdict = g.without_look(now)
        if verdict is None:
            looks += 1
            grey = noisy(SCENE)
            verdict = g.decide(grey, now)
            g.after(grey, now)  # as the camera does once the frame is on its way
        assert verdict is not None and verdict.gate == "off"
    assert looks == 6 and g.stats().inferred == 30
    assert gate().without_look(0.0) is None  # gating on: every due frame is looked at
