"""Calibration frames: de-duplication, held-out split, capture from a real clip, directories."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edged.config.models import CameraConfig
from edged.tools.calibration import CalibrationSet, Deduplicator, capture, split_every


def test_dedup_keeps_only_new_scenes() -> None:
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (72, 128, 3), dtype=np.uint8)
    dedup = Deduplicator(threshold=2.5)
    assert dedup.is_new(scene)
    noisy = np.clip(scene.astype(np.int16) + rng.integers(-2, 3, scene.shape), 0, 255).astype(np.uint8)
    assert not dedup.is_new(noisy)  # sensor noise on a static scene
    assert dedup.is_new(255 - scene)


def test_split_holds_out_every_kth_frame() -> None:
    assert split_every(10, 5).count("held_out") == 2
    assert split_every(2, 5) == ["calibration", "held_out"]
    assert split_every(1, 5) == ["calibration"]


def test_capture_from_files_spreads_and_dedups(tmp_path: Path, media: dict[str, Path]) -> None:
    cameras = {
        "street": CameraConfig(url=str(media["street.mp4"])),
        "still": CameraConfig(url=str(media["zidane.mp4"])),  # one photo, 20 s long
    }
    result = capture(cameras, tmp_path / "set", frames_per_camera=20, duration_s=30)
    assert result.cameras["street"].kept == 20
    assert result.cameras["still"].kept == 1 and result.cameras["still"].duplicates >= 19
    held = result.paths("held_out")
    calib = result.paths("calibration")
    assert len(held) == 4 and len(calib) == 17 and not set(held) & set(calib)
    assert all(cv2.imread(str(p)) is not None for p in held + calib)
    again = CalibrationSet.load(tmp_path / "set")
    assert again.digest() == result.digest() and len(again.frames) == 21


def test_calibration_directory(tmp_path: Path) -> None:
    for i in range(10):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), i * 20, np.uint8))
    result = CalibrationSet.from_directory(tmp_path)
    assert len(result.paths("held_out")) == 2 and len(result.paths("calibration")) == 8
