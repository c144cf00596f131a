"""Pictures of frames, for people: the web page's live picture and the object snapshots.

The frame slot gives a frame back as soon as it is letterboxed into the engine's
input, long before its detections come out, so a picture is a small copy taken at
that moment (``PictureRing.take``, on the scheduler's thread), and only while
someone wants one: the page asked for the camera's live picture in the last few
seconds, or the camera follows objects whose best frame may still come. A camera
with nothing to show costs nothing.

Copies go into a ring of buffers, at most ``width`` pixels wide and a whole fraction of the frame
(area averaging). The result stage gives a picture back once its frame's result is handled
(``done``), and a copy goes into the first buffer given back, so a camera whose results come back
before its next picture is taken holds one or two buffers, not the ring's depth; a buffer is added
only while all are out, up to the depth, which is deeper than the number of batches that can be in
flight: past it (a result that never came back) the oldest picture is overwritten, as a plain ring
would. What outlives the result (a live frame, an object's best frame) is copied out of the ring
into buffers the result stage owns. A camera decoded by PyAV hands over its frame's 4:2:0 planes,
and its pictures stay planes: the ring, the best frames and the live picture hold half the bytes
they would as BGR, the scheduler resizes planes without converting them, and the one JPEG thread
converts the few pictures it encodes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edged.models.planes import I420Crop, planar_shape, to_bgr
from edged.sources.demand import Demand
from edged.sources.slot import FrameInfo

if TYPE_CHECKING:
    from edged.pipeline.snapshots import BestFrames

LIVE_S = 5.0  # after a request for the live picture, keep taking pictures this long


@dataclass(frozen=True)
class Picture:
    """A copy of frame ``seq``, at the ring's width (valid until the ring comes round again): BGR ``[h, w, 3]``, or
    ``I420`` planes ``[h * 3 / 2, w]`` where the frame came as planes (``models.planes``)."""

    image: np.ndarray
    seq: int
    ts: float
    index: int = -1  # its buffer in the ring and when it was taken, for ``PictureRing.done``
    taken: int = 0


def fit(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The picture's size: the frame divided by the smallest whole number that makes it at most ``max_width``
    wide. A whole factor is OpenCV's fast path: 1280x720 to 640x360 takes 0.17 ms where 960x540 took 0.94."""
    factor = -(-width // max_width)
    return max(2, width // factor), max(2, height // factor)


class PictureRing:
    def __init__(self, width: int, depth: int) -> None:
        self.width = width
        self.depth = max(2, depth)
        self._buffers: list[np.ndarray] = []
        self._taken: list[int] = []  # per buffer: when its picture was taken (a count), 0 once given back
        self._count = 0
        self._lock = threading.Lock()  # taken on the scheduler's thread, given back on the result stage's

    def take(self, image: np.ndarray, info: FrameInfo) -> Picture:
        """Copy (or shrink) ``image`` into the next buffer of the ring (the scheduler clocks it: ``pictures``). A
        frame held as the decoder's 4:2:0 planes stays planes (``I420``, even-sized): half the bytes of BGR, kept
        and copied as such, and converted only where a picture is shown, encoded or cropped (``to_bgr``)."""
        w, h = fit(info.width, info.height, self.width)
        planar = image.ndim == 2
        shape = planar_shape(h & ~1, w & ~1) if planar else (h, w, 3)
        with self._lock:
            if self._buffers and self._buffers[0].shape != shape:
                self._buffers, self._taken = [], []
            index = self._free(shape)
            self._count += 1
            self._taken[index] = taken = self._count
        out = self._buffers[index]
        if planar:
            I420Crop(image).into_planes(out, cv2.INTER_AREA)
        elif (w, h) == (info.width, info.height):
            np.copyto(out, image)
        else:
            cv2.resize(image, (w, h), dst=out, interpolation=cv2.INTER_AREA)
        return Picture(out, info.seq, info.ts, index, taken)

    def _free(self, shape: tuple[int, ...]) -> int:
        """A buffer given back, a new one while fewer than ``depth``, else the one taken longest ago."""
        taken = self._taken
        for index, when in enumerate(taken):
            if not when:
                return index
        if len(taken) < self.depth:
            self._buffers.append(np.empty(shape, np.uint8))
            taken.append(0)
            return len(taken) - 1
        return taken.index(min(taken))

    def done(self, picture: Picture) -> None:
        """The result stage has handled ``picture``'s frame: its buffer takes the next copy (unless a newer
        picture went into it meanwhile, the ring having come round)."""
        with self._lock:
            index = picture.index
            if 0 <= index < len(self._taken) and self._taken[index] == picture.taken:
                self._taken[index] = 0

    @property
    def held(self) -> int:
        """Buffers allocated (what the ring costs now)."""
        return len(self._buffers)


@dataclass(frozen=True)
class Shown:
    """What the live picture shows: boxes normalised xyxy, their labels and scores."""

    seq: int
    ts: float
    boxes: np.ndarray
    labels: tuple[str, ...]
    scores: np.ndarray


class LiveFrame:
    """A camera's latest picture with its detections, for the page; written by the result stage, read by the
    encoder. The writer never waits: while the encoder holds the picture, a newer frame is skipped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self.shown: Shown | None = None

    def offer(self, picture: Picture, boxes: np.ndarray, labels: tuple[str, ...], scores: np.ndarray) -> None:
        if not self._lock.acquire(blocking=False):
            return
        try:
            image = self._image
            if image is None or image.shape != picture.image.shape:
                image = self._image = np.empty_like(picture.image)
            np.copyto(image, picture.image)
            self.shown = Shown(picture.seq, picture.ts, boxes.copy(), labels, scores.copy())
        finally:
            self._lock.release()

    def read(self, into: np.ndarray | None) -> tuple[np.ndarray, Shown] | None:
        """The latest picture as BGR (a copy, into ``into`` where its size fits) and what it shows; None: none
        yet."""
        with self._lock:
            if self._image is None or self.shown is None:
                return None
            if self._image.ndim == 2:
                return to_bgr(self._image, into), self.shown
            out = into if into is not None and into.shape == self._image.shape else np.empty_like(self._image)
            np.copyto(out, self._image)
            return out, self.shown


@dataclass
class CameraPictures:
    """One camera's pictures: the ring the scheduler copies frames into while the camera's Demand wants them, the
    page's live picture, each object's best frame (None: snapshots are off), the labels with a snapshot topic."""

    ring: PictureRing
    demand: Demand
    best: BestFrames | None = None
    live: LiveFrame = field(default_factory=LiveFrame)
    snapshot_labels: set[str] = field(default_factory=set)

    def want_live(self) -> None:
        """The page asked for the live picture (the event loop): pictures for the next ``LIVE_S`` seconds."""
        self.demand.want_until("live", time.monotonic() + LIVE_S)
