"""The scheduler's view of one camera: its slot, rate and due time, detection settings, how its frames fit the
engine's input (a cached letterbox, a crop around motion), and its Demand (pictures wanted; the cadence the camera
thread reads)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edged.analytics.regions import Crop, detect_region, regions_apply, tiles
from edged.analytics.tracker import decode_floor
from edged.config.models import DetectConfig
from edged.models.yolo import Letterbox
from edged.pipeline.pictures import PictureRing, fit
from edged.sources.demand import Demand
from edged.sources.slot import FrameInfo, FrameSlot


@dataclass
class CameraLane:
    """The scheduler's view of one camera."""

    name: str
    slot: FrameSlot
    fps: float | None
    detect: DetectConfig
    class_mask: np.ndarray | None
    next_due: float = 0.0
    processed: int = 0
    priority: int = 50
    governed_fps: float | None = None  # the governor's cap while the device is hot (cap_rate)
    phase: float = 0.0  # where in each interval this camera falls due, 0..1 (set by the scheduler)
    regions: str = "off"  # motion regions: auto, on, off (config motion.regions)
    region_margin: float = 0.5
    pictures: PictureRing | None = None  # copies of frames for the page and snapshots, taken while wanted
    demand: Demand = field(default_factory=Demand)  # the camera's: pictures wanted, and the cadence it reads
    detecting: bool = True  # False: detection is switched off (mqtt controls); frames are not leased
    appearance: bool = True  # read each detection's colours for the tracker (events.appearance)
    tiles: bool = False  # two overlapping tiles per frame (two batch places), not the whole frame
    _box: Letterbox | None = field(default=None, repr=False)

    def configure(self, detect: DetectConfig, class_mask: np.ndarray | None) -> None:
        """New labels and score threshold (a reload); they apply from the next batch."""
        self.detect, self.class_mask = detect, class_mask

    def cap_rate(self, fps: float | None) -> None:
        """The governor's cap on this camera's rate; None lifts it."""
        self.governed_fps = fps

    @property
    def effective_fps(self) -> float | None:
        if self.governed_fps is None:
            return self.fps
        return min(self.fps, self.governed_fps) if self.fps else self.governed_fps

    @property
    def interval(self) -> float:
        fps = self.effective_fps
        return 1.0 / fps if fps else 0.0

    def is_due(self, now: float) -> bool:
        return self.detecting and self.slot.has_fresh and self.next_due <= now

    def mark_leased(self, now: float) -> None:
        """Advance the camera's clock by one interval, without bursts after a stall.

        Due times are snapped to the camera's grid: multiples of the interval on the
        monotonic clock, shifted by its ``phase`` (a share of the interval). The scheduler gives cameras of one
        rate phases so that each batch's worth of them falls due together and the
        batches are spread evenly over the interval, whenever each camera came online.
        A lease up to one interval late keeps the grid: a source whose frames come at the camera's own rate but
        off its phase has each frame arrive after its due time, by up to an interval (the one before was
        skipped, early); jumping a tick ahead for it halved that camera's rate.
        """
        interval = self.interval
        if interval:
            phase = self.phase * interval
            following = self.next_due + interval
            if following > now:  # on its grid: unchanged; else the nearest tick
                tick = round((following - phase) / interval) * interval + phase
            else:  # far behind (a stall): no burst of catch-up leases
                tick = math.ceil((now + interval / 2 - phase) / interval) * interval + phase
            if tick <= now:
                tick += interval
            self.next_due = tick
            self.demand.next_after = tick
        else:
            self.next_due = now

    def letterbox(self, width: int, height: int, dst_w: int, dst_h: int, resize: str = "letterbox") -> Letterbox:
        box = self._box
        if box is None or (box.src_w, box.src_h) != (width, height):
            box = self._box = Letterbox.fit(width, height, dst_w, dst_h, resize=resize)
        return box

    @property
    def decode_score(self) -> float:
        """Decode down to this score: the tracker uses detections under ``min_score`` (not published)."""
        return decode_floor(self.detect.min_score)

    @property
    def places(self) -> int:
        """Batch places one of its frames takes."""
        return 2 if self.tiles else 1

    def held_scale(self, width: int, height: int, dst_w: int, dst_h: int, resize: str,
                   picture_width: int | None) -> int:
        """How many times smaller than a ``width`` x ``height`` frame its planes may be held (``sources.camera``):
        the largest whole factor, up to 4, that leaves even sides no smaller than the model's input takes the
        frame at or the pictures are kept at; 1 with tiles or motion regions, which crop the frame at its own
        resolution. A 1280x720 camera and a 416 model: 640x360 (a quarter of the bytes, and the letterbox and the
        pictures read a quarter of the pixels)."""
        if self.tiles or regions_apply(self.regions, width, height, dst_w, dst_h):
            return 1
        box = Letterbox.fit(width, height, dst_w, dst_h, resize=resize)
        need_w, need_h = box.new_w, box.new_h
        if picture_width:
            picture_w, picture_h = fit(width, height, picture_width)
            need_w, need_h = max(need_w, picture_w), max(need_h, picture_h)
        for factor in (4, 3, 2):
            w, h = width // factor, height // factor
            if w * factor == width and h * factor == height and not (w | h) & 1 and w >= need_w and h >= need_h:
                return factor
        return 1

    def fits(self, info: FrameInfo, dst_w: int, dst_h: int) -> tuple[Crop | None, ...]:
        """Where in this frame to detect, one entry per batch place: its two tiles, a crop around its motion, or
        the whole frame (None), in the pixels of the image held (the frame shrunk by ``info.scale``)."""
        crops = tiles(info.width, info.height) if self.tiles else (self.crop(info, dst_w, dst_h),)
        if info.scale == 1:
            return crops
        return tuple(None if c is None else (c[0] // info.scale, c[1] // info.scale, c[2] // info.scale,
                                             c[3] // info.scale) for c in crops)

    def crop(self, info: FrameInfo, dst_w: int, dst_h: int) -> Crop | None:
        """Where in this frame to detect: a crop around its motion, or None for the whole frame."""
        return detect_region(info.motion, info.width, info.height, dst_w, dst_h, self.regions, self.region_margin)
