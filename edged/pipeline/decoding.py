"""Decoding a batch's output beside the results: each frame's head decoded through its letterbox or crop (down to
the lane's decode score, for the tracker), the batch's stage times kept, non-finite outputs refused, and one
``Result`` per frame for the result stage."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from edged.analytics.appearance import colours
from edged.engines.base import Engine
from edged.logs import Every
from edged.models.heads import Decoder
from edged.models.heads.common import merge
from edged.models.yolo import Detections, Letterbox
from edged.pipeline.batch import Batch
from edged.pipeline.lanes import CameraLane
from edged.pipeline.pictures import Picture
from edged.pipeline.stats import Window
from edged.sources.slot import FrameInfo

log = logging.getLogger(__name__)


@dataclass
class Result:
    lane: CameraLane
    info: FrameInfo
    detections: Detections
    timing_ms: dict[str, float]
    batch_id: int
    region: tuple[float, float, float, float] | None = None  # the crop detected on (normalised); None: all
    picture: Picture | None = None  # a copy of the frame, when the camera's pictures were wanted


@dataclass
class SchedulerCounters:
    batches: int = 0
    frames: int = 0
    batch_slots: int = 0  # sum of batch capacity over batches: frames / batch_slots is the fill
    engine_errors: int = 0
    non_finite: int = 0  # frames whose output held NaN or inf: not published (no detections to trust)


@dataclass
class StageTimes:
    """Per-batch milliseconds, in preallocated windows (percentiles are computed on demand)."""

    pre: Window = field(default_factory=Window)
    infer: Window = field(default_factory=Window)
    post: Window = field(default_factory=Window)
    fill: Window = field(default_factory=Window)


class BatchDecoder:
    def __init__(self, engine: Engine, decoder: Decoder, cpu_s: dict[str, float]) -> None:
        self.engine = engine
        self.decoder = decoder
        self.cpu_s = cpu_s  # box_decode: the scheduler thread's CPU seconds
        self.counters = SchedulerCounters()
        self.times = StageTimes()
        self._non_finite_log = Every(60.0)

    def decode(self, batch: Batch, output: np.ndarray, received: float) -> list[Result]:
        spec = self.engine.input_spec
        cpu = time.thread_time()
        decoded = []
        post_s = appearance_s = 0.0
        pixels = None
        frame_of = batch.frame_of
        for index, box in enumerate(batch.boxes):
            lane = batch.lanes[index if frame_of is None else frame_of[index]]
            started = time.perf_counter()
            dets = self.decoder.decode(output[index], box, lane.decode_score, lane.class_mask)
            spent = time.perf_counter() - started
            post_s += spent
            if lane.appearance and len(dets):  # the picture the detector saw, still in its buffer
                looked = time.thread_time()
                pixels = self.engine.input_buffer(batch.slot) if pixels is None else pixels
                # The tracker compares colours where it matches published (high-score) detections; a low one is
                # matched by overlap alone (and would cost as much to read).
                dets.colours = colours(pixels[index], box.to_input(dets.boxes), dets.scores >= lane.detect.min_score)
                appearance_s += time.thread_time() - looked
            decoded.append((dets, spent))
        frame_boxes: list[Letterbox | None] = list(batch.boxes)
        if frame_of is not None:  # tiles: one frame's places merged into its detections
            started = time.perf_counter()
            decoded, frame_boxes = _merged(decoded, batch.boxes, frame_of, len(batch.lanes), self.decoder.iou)
            post_s += time.perf_counter() - started
        count = len(batch.lanes)
        self.counters.batches += 1
        self.counters.frames += count
        self.counters.batch_slots += spec.batch
        pre_ms, infer_ms = batch.pre_s * 1e3, (received - batch.submitted) * 1e3
        self.times.pre.add(pre_ms)
        self.times.infer.add(infer_ms)
        self.times.post.add(post_s * 1e3)
        self.times.fill.add(len(batch.boxes) / spec.batch)
        if log.isEnabledFor(logging.DEBUG):
            self._log_batch(batch, pre_ms, infer_ms, post_s * 1e3)
        results = []
        for lane, info, leased, box, picture, (dets, spent) in zip(batch.lanes, batch.infos, batch.leased, frame_boxes,
                                                                   batch.pictures, decoded, strict=True):
            lane.processed += 1
            if not dets.finite:
                self._non_finite(lane.name)
                continue
            timing = {"leased": (leased - info.mono) * 1e3, "pre": pre_ms, "infer": infer_ms, "post": spent * 1e3}
            region = None
            if box is not None and box.full_w:
                region = (box.ox / box.full_w, box.oy / box.full_h, (box.ox + box.src_w) / box.full_w,
                          (box.oy + box.src_h) / box.full_h)
            results.append(Result(lane, info, dets, timing, batch.batch_id, region, picture))
        self.cpu_s["box_decode"] += time.thread_time() - cpu - appearance_s
        self.cpu_s["appearance"] += appearance_s
        return results

    def _non_finite(self, camera: str) -> None:
        self.counters.non_finite += 1
        if self._non_finite_log.due():
            log.error("the engine returned NaN or inf for camera %s (%d frame(s) so far): those frames publish no "
                      "detections; a float precision this device computes wrongly? (inference_precision: f32)",
                      camera, self.counters.non_finite)

    def _log_batch(self, batch: Batch, pre_ms: float, infer_ms: float, post_ms: float) -> None:
        fields = {
            "batch": batch.batch_id, "cameras": [lane.name for lane in batch.lanes], "fill": len(batch.lanes),
            "frames": [f"{info.width}x{info.height}" for info in batch.infos], "size": self.engine.input_spec.batch,
            "pre_ms": round(pre_ms, 2), "infer_ms": round(infer_ms, 2), "post_ms": round(post_ms, 2),
        }
        log.debug(
            "batch %(batch)d cameras=%(cameras)s frames=%(frames)s fill=%(fill)d/%(size)d pre=%(pre_ms).1fms "
            "infer=%(infer_ms).1fms post=%(post_ms).1fms", fields, extra={"fields": fields},
        )


def _merged(decoded: list[tuple[Detections, float]], boxes: list[Letterbox], frame_of: list[int], frames: int,
            iou: float) -> tuple[list[tuple[Detections, float]], list[Letterbox | None]]:
    """Per frame: its places' detections merged (``heads.common.merge``), their decode time summed, and its fit
    (None for a tiled frame: the tiles cover it all, no region)."""
    parts: list[list[Detections]] = [[] for _ in range(frames)]
    spent = [0.0] * frames
    fits: list[Letterbox | None] = [None] * frames
    for (dets, seconds), box, frame in zip(decoded, boxes, frame_of, strict=True):
        parts[frame].append(dets)
        spent[frame] += seconds
        fits[frame] = box if not parts[frame][1:] else None
    merged = [(each[0] if len(each) == 1 else merge(each, iou), seconds) for each, seconds in zip(parts, spent)]
    return merged, fits
