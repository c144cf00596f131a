"""Preparing a batch, on the scheduler's thread: each leased frame copied for pictures when its camera's Demand
wants them, fitted (letterbox, stretch, or a crop around its motion) straight into the engine's input buffer, and
given back to its camera."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edged.analytics.regions import Crop
from edged.engines.base import Engine
from edged.models.planes import I420Crop, frame_size
from edged.models.yolo import Letterbox
from edged.pipeline.lanes import CameraLane
from edged.pipeline.pictures import Picture
from edged.sources.slot import FrameInfo, Lease


@dataclass
class Batch:
    """A batch from the moment it is letterboxed until its output is decoded."""

    batch_id: int
    slot: int
    lanes: list[CameraLane]
    infos: list[FrameInfo]
    leased: list[float]  # each frame's lease time (monotonic)
    boxes: list[Letterbox]
    formed: float  # monotonic
    pre_s: float
    pictures: list[Picture | None]  # per frame, a copy for the page and snapshots (when wanted)
    submitted: float = 0.0  # perf_counter
    frame_of: list[int] | None = None  # batch place -> its frame (tiles: two places a frame); None: one each



def frame_fit(image: np.ndarray, crop: Crop | None, dst_w: int, dst_h: int, resize: str,
              whole: Callable[[int, int, int, int, str], Letterbox] | None = None
              ) -> tuple[Letterbox, np.ndarray | I420Crop]:
    """How ``image`` (or its ``crop``) goes into a ``dst_w`` x ``dst_h`` input as the model takes it (``resize``),
    and the pixels to put there (a frame held as 4:2:0 planes: its planes, the crop on even coordinates). ``whole``:
    the caller's cached fit for whole frames (the lane's). The scheduler and the bench both fit frames here."""
    height, width = frame_size(image)
    planar = image.ndim == 2
    if crop is None:
        fit = whole or (lambda w, h, dw, dh, how: Letterbox.fit(w, h, dw, dh, resize=how))
        return fit(width, height, dst_w, dst_h, resize), I420Crop(image) if planar else image
    if planar:
        crop = I420Crop.even(crop, width, height)
    x, y, w, h = crop
    box = Letterbox.fit(w, h, dst_w, dst_h, (x, y, width, height), resize=resize)
    return box, I420Crop(image, crop) if planar else image[y:y + h, x:x + w]


class BatchPreparer:
    def __init__(self, engine: Engine, resize: str, cpu_s: dict[str, float]) -> None:
        self.engine = engine
        self.resize = resize  # how the model takes frames (models.yolo.RESIZES): DETRs stretched, YOLOX in a corner
        self.cpu_s = cpu_s  # letterbox, pictures: the scheduler thread's CPU seconds
        self._painted: dict[tuple[int, int], Letterbox] = {}  # (buffer, batch index) -> the borders it holds
        self._batch_id = 0

    def prepare(self, slot: int, leases: list[tuple[CameraLane, Lease]]) -> Batch:
        """Letterbox the leased frames into ``slot``'s buffer, then give the frames back."""
        spec = self.engine.input_spec
        buffer = self.engine.input_buffer(slot)
        started, cpu = time.perf_counter(), time.thread_time()
        boxes: list[Letterbox] = []
        frame_of: list[int] = []
        pictures: list[Picture | None] = []
        now = time.monotonic()
        picture_s = 0.0
        try:
            painted = self._painted
            for frame, (lane, lease) in enumerate(leases):
                info = lease.info
                ring = lane.pictures
                if ring is not None and lane.demand.pictures(now):
                    taken = time.thread_time()
                    pictures.append(ring.take(lease.image, info))
                    picture_s += time.thread_time() - taken
                else:
                    pictures.append(None)
                for crop in lane.fits(info, spec.width, spec.height):
                    index = len(boxes)
                    box, image = frame_fit(lease.image, crop, spec.width, spec.height, self.resize, lane.letterbox)
                    # The borders stay in the buffer: paint them only when this place held another geometry.
                    box.apply(image, buffer[index], borders=not box.same_borders(painted.get((slot, index))))
                    painted[slot, index] = box
                    boxes.append(box)
                    frame_of.append(frame)
        finally:
            for _, lease in leases:
                lease.release()
        self._batch_id += 1
        self.cpu_s["letterbox"] += time.thread_time() - cpu - picture_s
        self.cpu_s["pictures"] += picture_s
        return Batch(self._batch_id, slot, [lane for lane, _ in leases], [lease.info for _, lease in leases],
                      [lease.leased_mono for _, lease in leases], boxes, time.monotonic(),
                      time.perf_counter() - started, pictures,
                      frame_of=frame_of if len(frame_of) != len(leases) else None)
