"""Frames kept as the decoder's 4:2:0 planes, converted to BGR only at the size they are used.

A camera decoded by FFmpeg (PyAV) hands over planar YUV 4:2:0: a 1280x720 frame is
1.4 MB of planes against 2.8 MB of BGR. The camera thread copies the planes into the
frame slot as they are (``I420``: Y, then U, then V, each row-packed, in one
``[h * 3 / 2, w]`` array); the scheduler resizes the planes straight to the model's
input size and converts only that many pixels. Pictures (snapshots, the page, second
looks) stay planes at their own size (``into_planes``) and are converted where they
are encoded or cropped (``to_bgr``, ``I420Crop.into``). Converting the
whole frame first and resizing the BGR cost 0.59-0.64 core-ms per 720p frame for
the letterbox; resizing the planes and converting 416x234 costs 0.35-0.36, with a
mean difference of 0.08 levels in the model's input (2-core AMD EPYC, ``cv2``
single-threaded, the copy of the planes included). In ``edged bench`` (same machine,
one run before and two after): eight 720p30 RTSP cameras 382 -> 348-349 MB resident;
one unthrottled, the camera thread's decode stage 3.18 -> 2.53-2.71 core-ms per frame
and the letterbox 0.32 -> 0.37-0.40.

The planes in the slot may be the frame's shrunk by a whole factor (``CameraLane.held_scale``, ``FrameInfo.scale``):
no larger than the model's input and the pictures use them.

Only what OpenCV converts exactly as swscale does goes this way: BT.601, limited range,
even width and height (``sources.pyav`` decides); anything else arrives as BGR.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

_staging = threading.local()  # per thread: (width, height) -> [h * 3 / 2, w] planes, and BGR for odd sizes


def planar_shape(height: int, width: int) -> tuple[int, int]:
    """The ``I420`` array of a ``width`` x ``height`` frame."""
    return height * 3 // 2, width


def chroma_planes(planes: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The U and V planes (``[h / 2, w / 2]`` views) of the ``I420`` array of a ``width`` x ``height`` frame: they
    follow the luma, U's rows then V's, each row ``w / 2`` long."""
    rows = planes[height:].reshape(height, width // 2)
    return rows[:height // 2], rows[height // 2:]


def frame_size(image: np.ndarray) -> tuple[int, int]:
    """(height, width) of a frame held as BGR ``[h, w, 3]`` or as ``I420`` planes ``[h * 3 / 2, w]``."""
    if image.ndim == 2:
        return image.shape[0] * 2 // 3, image.shape[1]
    return image.shape[0], image.shape[1]


class I420Crop:
    """A part of an ``I420`` frame (the whole frame by default), on even coordinates (chroma is half-size)."""

    __slots__ = ("h", "planes", "w", "x", "y")

    def __init__(self, planes: np.ndarray, crop: tuple[int, int, int, int] | None = None) -> None:
        self.planes = planes
        height, width = frame_size(planes)
        self.x, self.y, self.w, self.h = crop if crop is not None else (0, 0, width, height)

    @staticmethod
    def even(crop: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
        """``crop`` (x, y, w, h) widened to even coordinates inside a ``width`` x ``height`` frame."""
        x, y, w, h = crop
        x0, y0 = x & ~1, y & ~1
        x1, y1 = min(width, (x + w + 1) & ~1), min(height, (y + h + 1) & ~1)
        return x0, y0, x1 - x0, y1 - y0

    def _views(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        planes = self.planes
        u, v = chroma_planes(planes, *frame_size(planes))
        x, y, w, h = self.x, self.y, self.w, self.h
        cx, cy, cw, ch = x // 2, y // 2, w // 2, h // 2
        return planes[y:y + h, x:x + w], u[cy:cy + ch, cx:cx + cw], v[cy:cy + ch, cx:cx + cw]

    def into(self, dst: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> None:
        """This crop resized to ``dst`` (a BGR ``[h, w, 3]`` array or view) and converted, allocating nothing
        after the first call at a size."""
        out_h, out_w = dst.shape[:2]
        even_w, even_h = out_w + (out_w & 1), out_h + (out_h & 1)
        cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]] = getattr(_staging, "cache", None) or {}
        _staging.cache = cache
        staged = cache.get((even_w, even_h))
        if staged is None:
            odd = (even_w, even_h) != (out_w, out_h)
            staged = cache[even_w, even_h] = (np.empty(planar_shape(even_h, even_w), np.uint8),
                                              np.empty((even_h, even_w, 3), np.uint8) if odd else None)
        small, bgr = staged
        self._resize(small, out_w, out_h, interpolation)
        if bgr is None:
            cv2.cvtColor(small, cv2.COLOR_YUV2BGR_I420, dst=dst)
            return
        cv2.cvtColor(small, cv2.COLOR_YUV2BGR_I420, dst=bgr)
        np.copyto(dst, bgr[:out_h, :out_w])

    def into_planes(self, dst: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> None:
        """This crop resized into ``dst``, the ``I420`` array of an even-sized picture, without converting it."""
        height, width = frame_size(dst)
        self._resize(dst, width, height, interpolation)

    def _resize(self, small: np.ndarray, out_w: int, out_h: int, interpolation: int) -> None:
        """Into ``small``, the ``I420`` array of the even size around ``out_w`` x ``out_h``: the luma to the exact
        size (an odd one: its last column or row repeated), the chroma to half the even size."""
        even_h, even_w = frame_size(small)
        luma, u, v = self._views()
        small_u, small_v = chroma_planes(small, even_h, even_w)
        for source, target in ((luma, small[:out_h, :out_w]), (u, small_u), (v, small_v)):
            if source.shape[:2] == target.shape[:2]:
                np.copyto(target, source)
            else:
                cv2.resize(source, (target.shape[1], target.shape[0]), dst=target, interpolation=interpolation)
        if out_w & 1:
            small[:out_h, out_w] = small[:out_h, out_w - 1]
        if out_h & 1:
            small[out_h, :even_w] = small[out_h - 1, :even_w]


def to_bgr(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """A picture as BGR: ``image`` itself when it is BGR; an ``I420`` picture converted (into ``out`` where its
    shape fits, else a new array)."""
    if image.ndim == 3:
        return image
    height, width = frame_size(image)
    if out is None or out.shape != (height, width, 3):
        out = np.empty((height, width, 3), np.uint8)
    cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420, dst=out)
    return out
