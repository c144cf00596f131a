"""Scheduler: fresh frames -> batches -> engine -> decoded detections.

- Each camera has a target rate; a camera is *due* when its next slot in time has
  come and its FrameSlot holds a frame nobody leased yet.
- Due cameras are gathered into one batch up to the engine's batch size, waiting
  at most ``batch_window_s`` for more once the first is ready.
- The engine has ``num_slots`` preallocated input buffers (at least two: ping-pong).

Frames travel on one thread, never through the event loop: with a fast engine (a
few ms per frame) an asyncio hop or a thread switch per stage costs more than the
stage itself. The *scheduler* thread waits on one Event, which camera threads set
when they commit a frame and the engine's callback sets when an output is back. It
decodes returned outputs in the order batches were formed (so each camera's sequence
numbers reach subscribers in order) and frees their buffers; then, with a free
buffer and due cameras, it leases a batch, letterboxes it straight into the buffer
and submits it, while the previous batch still infers. The sink (the result stage)
runs on this thread too: a wake-up of the event loop per frame would cost more than
the sink's own work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edged.config.models import DetectConfig
from edged.engines.base import Engine
from edged.logs import Every
from edged.models.heads import Decoder
from edged.models.yolo import Detections, Letterbox
from edged.pipeline.pictures import Picture, PictureRing
from edged.pipeline.regions import Crop, crop_for, regions_apply
from edged.pipeline.stats import EngineStats, Percentiles, Window
from edged.pipeline.tracker import LOW_SHARE
from edged.sources.slot import FrameInfo, FrameSlot, Lease

log = logging.getLogger(__name__)


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
    detecting: bool = True  # False: detection is switched off (mqtt controls); frames are not leased
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
        """
        interval = self.interval
        if interval:
            phase = self.phase * interval
            following = self.next_due + interval
            if following >= now + interval / 2:  # on its grid: unchanged; else the nearest tick
                tick = round((following - phase) / interval) * interval + phase
            else:  # far behind (a stall): no burst of catch-up leases
                tick = math.ceil((now + interval / 2 - phase) / interval) * interval + phase
            if tick <= now:
                tick += interval
            self.next_due = tick
            self.slot.wanted_after = tick
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
        return self.detect.min_score * LOW_SHARE

    def crop(self, info: FrameInfo, dst_w: int, dst_h: int) -> Crop | None:
        """Where in this frame to detect: a crop around its motion, or None for the whole frame."""
        if info.motion is None or not regions_apply(self.regions, info.width, info.height, dst_w, dst_h):
            return None
        return crop_for(info.motion, info.width, info.height, dst_w, dst_h, self.region_margin)


@dataclass
class Result:
    lane: CameraLane
    info: FrameInfo
    detections: Detections
    timing_ms: dict[str, float]
    batch_id: int
    region: tuple[float, float, float, float] | None = None  # the crop detected on (normalised); None: all
    picture: Picture | None = None  # a copy of the frame, when the camera's pictures were wanted


ResultSink = Callable[[Result], None]


@dataclass
class SchedulerCounters:
    batches: int = 0
    frames: int = 0
    batch_slots: int = 0  # sum of batch capacity over batches: frames / batch_slots is the fill
    engine_errors: int = 0
    non_finite: int = 0  # frames whose output held NaN or inf: not published (no detections to trust)


@dataclass
class _Batch:
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


_Outcome = tuple[int, "np.ndarray | BaseException"]


@dataclass
class StageTimes:
    """Per-batch milliseconds, in preallocated windows (percentiles are computed on demand)."""

    pre: Window = field(default_factory=Window)
    infer: Window = field(default_factory=Window)
    post: Window = field(default_factory=Window)
    fill: Window = field(default_factory=Window)


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        decoder: Decoder,
        lanes: list[CameraLane],
        sink: ResultSink,
        batch_window_s: float,
        resize: str = "letterbox",
    ) -> None:
        self.engine = engine
        self.decoder = decoder
        self.resize = resize  # how the model takes frames (models.yolo.RESIZES): DETRs stretched, YOLOX in a corner
        self.lanes = list(lanes)  # replaced, never changed in place: the scheduler thread reads it unlocked
        self.sink = sink
        self.batch_window_s = batch_window_s
        self.counters = SchedulerCounters()
        self.times = StageTimes()
        self._stopping = False
        self._abandoned = False  # run() was cancelled: threads stop waiting for in-flight batches
        self._wake = threading.Event()  # a frame was committed, a slot came free, or stop()
        self._lock = threading.Lock()  # batches in flight (read by stats from the loop)
        self._free: deque[int] = deque()  # free input buffers (the scheduler thread's alone)
        self._painted: dict[tuple[int, int], Letterbox] = {}  # (buffer, batch index) -> the borders it holds
        self._in_flight: dict[int, _Batch] = {}
        self._outcomes: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self._waiting: dict[int, np.ndarray | BaseException] = {}  # outcomes that came back before earlier ones
        self._following = 1  # the batch whose results go next
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch_id = 0
        self._failure: BaseException | None = None
        self._non_finite_log = Every(60.0)
        self.last_tick = time.monotonic()  # the scheduler thread's heartbeat
        # The scheduler thread's CPU seconds in each step; pictures: copies of frames for the page and snapshots.
        self.cpu_s = {"letterbox": 0.0, "box_decode": 0.0, "pictures": 0.0}
        self.spread_phases()

    # -- wake-ups from other threads ---------------------------------------------

    def notify(self) -> None:
        """Called by source threads on every committed frame."""
        if not self._wake.is_set():
            self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def add_lane(self, lane: CameraLane) -> None:
        self.lanes = [*self.lanes, lane]
        self.spread_phases()
        self._wake.set()

    def remove_lane(self, lane: CameraLane) -> None:
        self.lanes = [each for each in self.lanes if each is not lane]
        self.spread_phases()

    def spread_phases(self) -> None:
        """Cameras of one rate, a batch of them at a time, fall due at evenly spread phases."""
        batch = self.engine.input_spec.batch
        by_rate: dict[float, list[CameraLane]] = {}
        for lane in self.lanes:
            if lane.interval:
                by_rate.setdefault(round(lane.interval, 9), []).append(lane)
        for lanes in by_rate.values():
            groups = -(-len(lanes) // batch)
            for index, lane in enumerate(sorted(lanes, key=lambda each: each.name)):
                lane.phase = (index // batch) / groups

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        """Run until stop() or an engine failure; in-flight batches are delivered before it returns."""
        loop = self._loop = asyncio.get_running_loop()
        self._free.extend(range(self.engine.num_slots))
        finished: asyncio.Future[None] = loop.create_future()
        thread = threading.Thread(target=self._thread_main, args=(finished,), name="scheduler", daemon=True)
        thread.start()
        try:
            await finished
        except asyncio.CancelledError:
            self._abandoned = True
            self.stop()
            raise

    def _thread_main(self, finished: asyncio.Future[None]) -> None:
        """One thread forms batches, letterboxes, submits, and decodes what comes back, in batch order."""
        deadline: float | None = None  # the batch window, once a first camera is due
        try:
            while True:
                self._wake.clear()
                self._take_outcomes()
                now = self.last_tick = time.monotonic()
                if self._stopping:
                    if self._abandoned or not self._in_flight:
                        return
                    self._wake.wait(0.05)  # batches in flight still come back (pipeline.stop bounds the wait)
                    continue
                timeout = 1.0
                if self._free:
                    leases, deadline, timeout = self._collect(now, deadline)
                    if leases:
                        self._submit(self._prepare(self._free.popleft(), leases))
                        continue
                self._wake.wait(timeout)
        except Exception as exc:  # a bug must stop the pipeline visibly, not leave it silent
            log.exception("the scheduler failed")
            self._failure = self._failure or exc
        finally:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, finished)

    # -- stats -----------------------------------------------------------------------

    def stats(self, now: float, settings: dict[str, Any]) -> EngineStats:
        c, t = self.counters, self.times
        return EngineStats(
            settings=settings, batches=c.batches, frames=c.frames,
            batch_fill=round(c.frames / c.batch_slots, 3) if c.batch_slots else None,
            in_flight=len(self._in_flight), errors=c.engine_errors, oldest_in_flight_s=self.oldest_in_flight_s(now),
            non_finite=c.non_finite,
            infer_ms=Percentiles.of(t.infer), pre_ms=Percentiles.of(t.pre), post_ms=Percentiles.of(t.post),
            failure=str(self._failure) if self._failure is not None else None, tick_age_s=now - self.last_tick,
        )

    def oldest_in_flight_s(self, now: float) -> float:
        """How long the oldest batch has been waiting for the engine (0 when none is)."""
        with self._lock:
            formed = [batch.formed for batch in self._in_flight.values()]
        return now - min(formed) if formed else 0.0

    @property
    def failure(self) -> BaseException | None:
        """The engine error that stopped the scheduler, if any."""
        return self._failure

    # -- the scheduler thread --------------------------------------------------------

    def _collect(self, now: float, deadline: float | None) -> tuple[list[tuple[CameraLane, Lease]], float | None,
                                                                    float]:
        """Lease up to one batch of due cameras with fresh frames, once the batch is full or its window closed.

        Returns the leases, the batch window's deadline, and how long to wait when there is nothing to lease.
        """
        batch = self.engine.input_spec.batch
        lanes = self.lanes
        due = [lane for lane in lanes if lane.is_due(now)]
        if due and (len(due) >= batch or self.batch_window_s <= 0 or (deadline is not None and now >= deadline)):
            if len(due) > 1:
                due.sort(key=_due_time)
            leases = []
            for lane in due[:batch]:
                lease = lane.slot.lease()
                if lease is not None:
                    lane.mark_leased(now)
                    leases.append((lane, lease))
            if leases:
                return leases, None, 0.0
        if due and deadline is None:
            deadline = now + self.batch_window_s
        return [], deadline, _next_wake(lanes, now, deadline)

    def _prepare(self, slot: int, leases: list[tuple[CameraLane, Lease]]) -> _Batch:
        """Letterbox the leased frames into ``slot``'s buffer, then give the frames back."""
        spec = self.engine.input_spec
        buffer = self.engine.input_buffer(slot)
        started, cpu = time.perf_counter(), time.thread_time()
        boxes = []
        pictures: list[Picture | None] = []
        now = time.monotonic()
        picture_s = 0.0
        try:
            painted = self._painted
            for index, (lane, lease) in enumerate(leases):
                info = lease.info
                ring = lane.pictures
                if ring is not None and ring.wanted(now):
                    taken = time.thread_time()
                    pictures.append(ring.take(lease.image, info))
                    picture_s += time.thread_time() - taken
                else:
                    pictures.append(None)
                crop = lane.crop(info, spec.width, spec.height)
                if crop is None:
                    box = lane.letterbox(info.width, info.height, spec.width, spec.height, self.resize)
                    image = lease.image
                else:
                    x, y, w, h = crop
                    box = Letterbox.fit(w, h, spec.width, spec.height, (x, y, info.width, info.height),
                                        resize=self.resize)
                    image = lease.image[y:y + h, x:x + w]
                # The borders stay in the buffer: paint them only when this place held another geometry.
                box.apply(image, buffer[index], borders=not box.same_borders(painted.get((slot, index))))
                painted[slot, index] = box
                boxes.append(box)
        finally:
            for _, lease in leases:
                lease.release()
        self._batch_id += 1
        self.cpu_s["letterbox"] += time.thread_time() - cpu - picture_s
        self.cpu_s["pictures"] += picture_s
        return _Batch(self._batch_id, slot, [lane for lane, _ in leases], [lease.info for _, lease in leases],
                      [lease.leased_mono for _, lease in leases], boxes, time.monotonic(),
                      time.perf_counter() - started, pictures)

    def _submit(self, batch: _Batch) -> None:
        outcomes, wake = self._outcomes, self._wake
        batch_id = batch.batch_id

        def done(result: np.ndarray | BaseException) -> None:  # an engine thread
            outcomes.put((batch_id, result))
            wake.set()

        with self._lock:
            self._in_flight[batch_id] = batch
        batch.submitted = time.perf_counter()
        try:
            self.engine.submit(batch.slot, done)
        except Exception as exc:
            done(exc)

    def _take_outcomes(self) -> None:
        """Decode what the engine returned, in the order batches were formed."""
        while True:
            try:
                batch_id, outcome = self._outcomes.get_nowait()
            except queue.Empty:
                return
            if batch_id < self._following:
                continue  # an engine that answered twice
            self._waiting[batch_id] = outcome
            while self._following in self._waiting:
                following = self._following
                self._following += 1
                try:
                    self._finish(following, self._waiting.pop(following))
                except Exception:
                    log.exception("decoding batch %d failed", following)

    def _finish(self, batch_id: int, outcome: np.ndarray | BaseException) -> None:
        received = time.perf_counter()
        with self._lock:
            batch = self._in_flight.get(batch_id)
        if batch is None:
            return
        try:
            if isinstance(outcome, BaseException):
                self._failed(outcome)
                return
            results = self._decode(batch, outcome, received)
        finally:
            with self._lock:
                self._in_flight.pop(batch_id, None)
            self._free.append(batch.slot)
        for result in results:
            try:
                self.sink(result)
            except Exception:
                log.exception("publishing the result of camera %s failed", result.lane.name)

    def _failed(self, exc: BaseException) -> None:
        self.counters.engine_errors += 1
        log.error("batch failed: %s", exc)
        if not self._stopping:
            self._failure = exc
            self.stop()

    def _decode(self, batch: _Batch, output: np.ndarray, received: float) -> list[Result]:
        spec = self.engine.input_spec
        cpu = time.thread_time()
        decoded = []
        post_s = 0.0
        for index, (lane, box) in enumerate(zip(batch.lanes, batch.boxes, strict=True)):
            started = time.perf_counter()
            dets = self.decoder.decode(output[index], box, lane.decode_score, lane.class_mask)
            spent = time.perf_counter() - started
            post_s += spent
            decoded.append((dets, spent))
        count = len(batch.lanes)
        self.counters.batches += 1
        self.counters.frames += count
        self.counters.batch_slots += spec.batch
        pre_ms, infer_ms = batch.pre_s * 1e3, (received - batch.submitted) * 1e3
        self.times.pre.add(pre_ms)
        self.times.infer.add(infer_ms)
        self.times.post.add(post_s * 1e3)
        self.times.fill.add(count / spec.batch)
        if log.isEnabledFor(logging.DEBUG):
            self._log_batch(batch, pre_ms, infer_ms, post_s * 1e3)
        results = []
        for lane, info, leased, box, picture, (dets, spent) in zip(batch.lanes, batch.infos, batch.leased, batch.boxes,
                                                                   batch.pictures, decoded, strict=True):
            lane.processed += 1
            if not dets.finite:
                self._non_finite(lane.name)
                continue
            timing = {"leased": (leased - info.mono) * 1e3, "pre": pre_ms, "infer": infer_ms, "post": spent * 1e3}
            region = None
            if box.full_w:
                region = (box.ox / box.full_w, box.oy / box.full_h, (box.ox + box.src_w) / box.full_w,
                          (box.oy + box.src_h) / box.full_h)
            results.append(Result(lane, info, dets, timing, batch.batch_id, region, picture))
        self.cpu_s["box_decode"] += time.thread_time() - cpu
        return results

    def _non_finite(self, camera: str) -> None:
        self.counters.non_finite += 1
        if self._non_finite_log.due():
            log.error("the engine returned NaN or inf for camera %s (%d frame(s) so far): those frames publish no "
                      "detections; a float precision this device computes wrongly? (inference_precision: f32)",
                      camera, self.counters.non_finite)

    def _log_batch(self, batch: _Batch, pre_ms: float, infer_ms: float, post_ms: float) -> None:
        fields = {
            "batch": batch.batch_id, "cameras": [lane.name for lane in batch.lanes], "fill": len(batch.lanes),
            "frames": [f"{info.width}x{info.height}" for info in batch.infos], "size": self.engine.input_spec.batch,
            "pre_ms": round(pre_ms, 2), "infer_ms": round(infer_ms, 2), "post_ms": round(post_ms, 2),
        }
        log.debug(
            "batch %(batch)d cameras=%(cameras)s frames=%(frames)s fill=%(fill)d/%(size)d pre=%(pre_ms).1fms "
            "infer=%(infer_ms).1fms post=%(post_ms).1fms", fields, extra={"fields": fields},
        )


def _due_time(lane: CameraLane) -> float:
    return lane.next_due


def _next_wake(lanes: list[CameraLane], now: float, deadline: float | None) -> float:
    """Seconds until the next camera falls due or the batch window closes (at most 1 s)."""
    soonest = deadline if deadline is not None else now + 1.0
    for lane in lanes:
        if lane.next_due > now and lane.next_due < soonest and lane.slot.has_fresh:
            soonest = lane.next_due
    return max(0.0, soonest - now)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
