"""Frames of a clip written as images, for what takes a directory of them (INT8 calibration)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np


def write_frames(clip: Path, directory: Path, stop: int, step: int,
                 shape: Callable[[np.ndarray], np.ndarray] = lambda image: image) -> Path:
    """Frames ``0, step, ... < stop`` of ``clip`` into ``directory`` as ``NNN.jpg`` (through ``shape``)."""
    directory.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(clip))
    try:
        for index in range(0, stop, step):
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, image = capture.read()
            assert ok, f"{clip}: no frame {index}"
            cv2.imwrite(str(directory / f"{index:03d}.jpg"), shape(image))
    finally:
        capture.release()
    return directory
