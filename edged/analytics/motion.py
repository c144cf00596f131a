"""Motion per camera, on a small grey copy of the frame, before any colour conversion.

The camera thread hands over a grey image ``motion.width`` pixels wide (PyAV: the
decoder's own luma plane, shrunk; OpenCV: the BGR frame, shrunk, then made grey).
Against a background that adapts (a running average, time constant
``background_s``), a pixel moves when it differs by more than ``threshold`` grey
levels once the frame's overall brightness change is taken out, so lamps, clouds and
auto exposure do not read as motion. Moving pixels are grown a little, grouped into
blobs, and blobs under ``min_area`` of the frame are noise. When more than
``storm_fraction`` of the picture changes at once (the lights went on, the camera
switched to infrared at dusk) the background is relearned from this frame and there is
no motion: a storm of it would wake every detector at once for nothing. Pixels under
a motion mask (a clock overlay, a tree) never move.

Every array here is allocated once per frame size; a 320x180 copy costs a few tenths
of a millisecond (``edged bench``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edged.config.models import MotionConfig, Point

Box = tuple[float, float, float, float]  # normalised x1, y1, x2, y2


def grey_shape(width: int, height: int, grey_width: int) -> tuple[int, int]:
    """(height, width) of the grey copy for a frame: ``grey_width`` wide (never wider than the frame)."""
    gw = min(grey_width, width)
    gh = max(8, round(height * gw / width))
    return gh, gw


def polygon_mask(polygons: Sequence[Sequence[Point]], height: int, width: int) -> np.ndarray | None:
    """A uint8 mask (255 inside any polygon) of the given size; None when there is no polygon."""
    if not polygons:
        return None
    mask = np.zeros((height, width), np.uint8)
    for polygon in polygons:
        points = np.array([[x * (width - 1), y * (height - 1)] for x, y in polygon], np.float32)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 255)
    return mask


@dataclass
class MotionResult:
    active: bool
    boxes: list[Box]
    fraction: float  # share of the (unmasked) picture that moved
    storm: bool = False  # the whole picture changed at once: relearned, not motion

    def union(self) -> Box | None:
        if not self.boxes:
            return None
        x1, y1, x2, y2 = zip(*self.boxes)
        return min(x1), min(y1), max(x2), max(y2)


class MotionDetector:
    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self._shape: tuple[int, int] | None = None
        self._background: np.ndarray | None = None  # float32, the running average
        self._blurred = np.empty(0, np.uint8)
        self._shifted = np.empty(0, np.uint8)
        self._pixels = 1
        self._moving: np.ndarray = np.empty((0, 0), np.uint8)
        self._ignore: np.ndarray | None = None  # 255 where masks are
        self._keep: np.ndarray | None = None  # its inverse
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self._last_mono: float | None = None
        self.storms = 0

    def set_masks(self, masks: Sequence[Sequence[Point]]) -> None:
        """New motion masks (a reload); they apply from the next frame."""
        self.config = self.config.model_copy(update={"masks": list(masks)})
        if self._shape is not None:
            self._set_ignore()

    def reset(self) -> None:
        """Forget the background (the stream reopened, maybe with another picture)."""
        self._background = None
        self._last_mono = None

    def _allocate(self, shape: tuple[int, int]) -> None:
        self._shape = shape
        self._blurred = np.empty(shape, np.uint8)
        self._shifted = np.empty(shape, np.uint8)
        self._moving = np.empty(shape, np.uint8)
        self._set_ignore()
        self._background = None

    def _set_ignore(self) -> None:
        assert self._shape is not None
        self._ignore = polygon_mask(self.config.masks, *self._shape)
        self._keep = None if self._ignore is None else cv2.bitwise_not(self._ignore)
        height, width = self._shape
        self._pixels = max(1, height * width - (0 if self._ignore is None else cv2.countNonZero(self._ignore)))

    def update(self, grey: np.ndarray, now: float) -> MotionResult:
        """Compare ``grey`` (uint8, the camera's grey copy) with the background, then adapt the background."""
        cfg = self.config
        if grey.shape != self._shape:
            self._allocate((grey.shape[0], grey.shape[1]))
        blurred = self._blurred
        cv2.GaussianBlur(grey, (5, 5), 0, dst=blurred)
        background = self._background
        dt = 0.0 if self._last_mono is None else max(0.0, now - self._last_mono)
        self._last_mono = now
        if background is None:
            self._background = blurred.astype(np.float32)
            return MotionResult(False, [], 0.0)
        keep = self._keep
        # Take out the overall brightness change: exposure and lamps move every pixel alike. All in 8 bits
        # (OpenCV's vectorised paths): the background, shifted, against the frame.
        shift = cv2.mean(blurred, mask=keep)[0] - cv2.mean(background, mask=keep)[0]
        cv2.convertScaleAbs(background, dst=self._shifted, alpha=1.0, beta=shift)
        cv2.absdiff(blurred, self._shifted, dst=self._moving)
        cv2.threshold(self._moving, cfg.threshold, 255, cv2.THRESH_BINARY, dst=self._moving)
        if self._ignore is not None:
            cv2.bitwise_and(self._moving, keep, dst=self._moving)  # type: ignore[arg-type]
        fraction = cv2.countNonZero(self._moving) / self._pixels
        if fraction > cfg.storm_fraction:
            np.copyto(background, blurred, casting="unsafe")  # relearn at once: the picture as a whole changed
            self.storms += 1
            return MotionResult(False, [], round(fraction, 4), storm=True)
        boxes: list[Box] = []
        if fraction > 0:
            cv2.dilate(self._moving, self._kernel, dst=self._moving, iterations=2)
            boxes = self._blobs()
        # Adapt, everywhere alike: a car that parks becomes background within a few background_s, and the place
        # a car left stops reading as motion as fast (adapting moving pixels slower leaves such ghosts for long).
        alpha = 1.0 - math.exp(-dt / cfg.background_s) if dt else 0.0
        if alpha:
            cv2.accumulateWeighted(blurred, background, alpha)
        return MotionResult(bool(boxes), boxes, round(fraction, 4))

    def _blobs(self) -> list[Box]:
        height, width = self._moving.shape[0], self._moving.shape[1]
        min_px = self.config.min_area * height * width
        contours, _ = cv2.findContours(self._moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[Box] = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if cv2.contourArea(contour) < min_px:
                continue
            boxes.append((x / width, y / height, (x + w) / width, (y + h) / height))
        return boxes
