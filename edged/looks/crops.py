"""Where a second look crops an object from the picture of the frame the detector saw, and how the crop goes into a
model's input, straight into a preallocated buffer (no crop-sized copy is kept). A picture is BGR or the decoder's
``I420`` planes (``models.planes``); a crop of planes is taken on even coordinates and converted at the model's size."""

from __future__ import annotations

import cv2
import numpy as np

from edged.models.planes import I420Crop, frame_size

Rect = tuple[int, int, int, int]  # x, y, width, height in the picture's pixels


def shorter_side(box: np.ndarray, width: int, height: int) -> float:
    """The shorter side of a normalised xyxy box, in pixels of a ``width`` x ``height`` frame."""
    return float(min((box[2] - box[0]) * width, (box[3] - box[1]) * height))


def rect(box: np.ndarray, width: int, height: int, scale: float = 1.0, square: bool = False,
         part: tuple[float, float, float, float] | None = None) -> Rect | None:
    """The crop of a normalised xyxy ``box`` in a ``width`` x ``height`` picture: ``part`` of it (shares of its width
    and height: x0, x1, y0, y1), enlarged ``scale`` times about its centre, made square (on its longer side) where
    asked, clipped to the picture. None: less than 2 pixels either way."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, x2, y1, y2 = x1 * width, x2 * width, y1 * height, y2 * height
    if part is not None:
        w, h = x2 - x1, y2 - y1
        x1, x2, y1, y2 = x1 + part[0] * w, x1 + part[1] * w, y1 + part[2] * h, y1 + part[3] * h
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = (x2 - x1) * scale, (y2 - y1) * scale
    if square:
        w = h = max(w, h)
    left, top = max(0, round(cx - w / 2)), max(0, round(cy - h / 2))
    right, bottom = min(width, round(cx + w / 2)), min(height, round(cy + h / 2))
    if right - left < 2 or bottom - top < 2:
        return None
    return left, top, right - left, bottom - top


def picture_size(image: np.ndarray) -> tuple[int, int]:
    """(width, height) of a picture, BGR or planes."""
    height, width = frame_size(image)
    return width, height


def crop_of(image: np.ndarray, where: Rect) -> np.ndarray | I420Crop:
    """The part ``where`` of a picture: a view of BGR, or the planes' crop (``where`` on even coordinates, as
    ``even_for`` makes it)."""
    x, y, w, h = where
    return I420Crop(image, where) if image.ndim == 2 else image[y:y + h, x:x + w]


def even_for(image: np.ndarray, where: Rect) -> Rect:
    """``where`` as a crop of this picture can take it: widened to even coordinates for planes, as it is for BGR."""
    return I420Crop.even(where, *picture_size(image)) if image.ndim == 2 else where


def resize_into(image: np.ndarray, where: Rect, dst: np.ndarray) -> None:
    """The crop ``where`` of ``image``, stretched into ``dst`` ([H, W, 3]): area averaging when it shrinks."""
    where = even_for(image, where)
    _, _, w, h = where
    height, width = dst.shape[:2]
    interpolation = cv2.INTER_AREA if w >= width and h >= height else cv2.INTER_LINEAR
    crop = crop_of(image, where)
    if isinstance(crop, I420Crop):
        crop.into(dst, interpolation)
    else:
        cv2.resize(crop, (width, height), dst=dst, interpolation=interpolation)
