"""Scheduler: fresh frames -> batches -> engine -> decoded detections, on asyncio.

- Each camera has a target rate; a camera is *due* when its next slot in time has
  come and its FrameSlot holds a frame nobody leased yet.
- Due cameras are gathered into one batch up to the engine's batch size, waiting
  at most ``batch_window_s`` for more once the first is ready.
- The engine has ``num_slots`` preallocated input buffers (two: ping-pong). A
  batch is letterboxed straight into a free buffer on a worker thread while the
  previous batch is still inferring, then submitted; inference runs off the loop.
- Results are handed on in the order batches were formed, so each camera's
  sequence numbers reach subscribers in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edged.config.models import DetectConfig
from edged.engines.base import Engine
from edged.models.yolo import Detections, Letterbox, YoloDecoder
from edged.pipeline.stats import EngineStats, Percentiles, Window
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
        return self.slot.has_fresh and self.next_due <= now

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

    def letterbox(self, width: int, height: int, dst_w: int, dst_h: int) -> Letterbox:
        box = self._box
        if box is None or (box.src_w, box.src_h) != (width, height):
            box = self._box = Letterbox.fit(width, height, dst_w, dst_h)
        return box


@dataclass
class Result:
    lane: CameraLane
    info: FrameInfo
    detections: Detections
    timing_ms: dict[str, float]
    batch_id: int


ResultSink = Callable[[Result], None]


@dataclass
class SchedulerCounters:
    batches: int = 0
    frames: int = 0
    batch_slots: int = 0  # sum of batch capacity over batches: frames / batch_slots is the fill
    engine_errors: int = 0
    in_flight: int = 0  # batches formed and not yet delivered


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
        decoder: YoloDecoder,
        lanes: list[CameraLane],
        sink: ResultSink,
        batch_window_s: float,
    ) -> None:
        self.engine = engine
        self.decoder = decoder
        self.lanes = lanes
        self.sink = sink
        self.batch_window_s = batch_window_s
        self.counters = SchedulerCounters()
        self.times = StageTimes()
        self._stopping = False
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pre = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preprocess")
        self._post = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postprocess")
        self._batch_id = 0
        self._failure: BaseException | None = None
        self._submitted: dict[int, float] = {}  # batch id -> monotonic time it was formed
        self.last_tick = time.monotonic()  # the loop's own heartbeat
        self.spread_phases()

    # -- wake-ups from source threads ------------------------------------------------

    def notify(self) -> None:
        """Called by source threads on every committed frame; coalesced."""
        loop = self._loop
        if loop is not None and not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        self._wake_pending = False
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def add_lane(self, lane: CameraLane) -> None:
        self.lanes.append(lane)
        self.spread_phases()
        self._wake.set()

    def remove_lane(self, lane: CameraLane) -> None:
        self.lanes.remove(lane)
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

    # -- main loop -----------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        free: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(self.engine.num_slots):
            free.put_nowait(slot)
        ordered: asyncio.Queue[asyncio.Task[list[Result]] | None] = asyncio.Queue()
        deliver = asyncio.create_task(self._deliver(ordered), name="deliver")
        try:
            while not self._stopping:
                slot = await free.get()
                leases = await self._collect()
                if not leases:
                    free.put_nowait(slot)
                    break
                self._batch_id += 1
                task = asyncio.create_task(self._process(slot, leases, self._batch_id, free))
                self._submitted[self._batch_id] = time.monotonic()
                self.counters.in_flight += 1
                ordered.put_nowait(task)
        finally:
            ordered.put_nowait(None)
            await deliver
            self._pre.shutdown(wait=True)
            self._post.shutdown(wait=True)

    async def _deliver(self, ordered: asyncio.Queue[asyncio.Task[list[Result]] | None]) -> None:
        while True:
            task = await ordered.get()
            if task is None:
                return
            try:
                results = await task
            except Exception as exc:
                self._submitted.clear()
                self.counters.in_flight -= 1
                self.counters.engine_errors += 1
                log.error("batch failed: %s", exc)
                if not self._stopping:
                    self._failure = exc
                    self.stop()
                continue
            self.counters.in_flight -= 1
            if results:
                self._submitted.pop(results[0].batch_id, None)
            for result in results:
                try:
                    self.sink(result)
                except Exception:
                    log.exception("publishing the result of camera %s failed", result.lane.name)

    def stats(self, now: float, settings: dict[str, Any]) -> EngineStats:
        c, t = self.counters, self.times
        return EngineStats(
            settings=settings, batches=c.batches, frames=c.frames,
            batch_fill=round(c.frames / c.batch_slots, 3) if c.batch_slots else None,
            in_flight=c.in_flight, errors=c.engine_errors, oldest_in_flight_s=self.oldest_in_flight_s(now),
            infer_ms=Percentiles.of(t.infer), pre_ms=Percentiles.of(t.pre), post_ms=Percentiles.of(t.post),
            failure=str(self._failure) if self._failure is not None else None, tick_age_s=now - self.last_tick,
        )

    def oldest_in_flight_s(self, now: float) -> float:
        """How long the oldest batch has been waiting for the engine (0 when none is)."""
        return now - min(self._submitted.values()) if self._submitted else 0.0

    @property
    def failure(self) -> BaseException | None:
        """The engine error that stopped the scheduler, if any."""
        return self._failure

    async def _collect(self) -> list[tuple[CameraLane, Lease]]:
        """Wait for due cameras with fresh frames and lease up to one batch of them."""
        batch = self.engine.input_spec.batch
        deadline: float | None = None
        while not self._stopping:
            self._wake.clear()
            now = self.last_tick = time.monotonic()
            due = [lane for lane in self.lanes if lane.is_due(now)]
            if due and (len(due) >= batch or self.batch_window_s <= 0 or (deadline is not None and now >= deadline)):
                due.sort(key=lambda lane: lane.next_due)
                leases = []
                for lane in due[:batch]:
                    lease = lane.slot.lease()
                    if lease is not None:
                        lane.mark_leased(now)
                        leases.append((lane, lease))
                if leases:
                    return leases
            if due and deadline is None:
                deadline = now + self.batch_window_s
            await self._sleep(self._next_wake(now, deadline))
        return []

    def _next_wake(self, now: float, deadline: float | None) -> float:
        times = [lane.next_due for lane in self.lanes if lane.slot.has_fresh and lane.next_due > now]
        if deadline is not None:
            times.append(deadline)
        return max(0.0, min(times) - now) if times else 1.0

    async def _sleep(self, timeout: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    # -- one batch -----------------------------------------------------------------

    async def _process(
        self, slot: int, leases: list[tuple[CameraLane, Lease]], batch_id: int, free: asyncio.Queue[int]
    ) -> list[Result]:
        loop = asyncio.get_running_loop()
        spec = self.engine.input_spec
        try:
            t0 = time.perf_counter()
            boxes, infos = await loop.run_in_executor(self._pre, self._preprocess, slot, leases)
            t1 = time.perf_counter()
            output = await self._infer(slot)
            t2 = time.perf_counter()
            decoded = await loop.run_in_executor(self._post, self._postprocess, output, leases, boxes)
        finally:
            free.put_nowait(slot)
        self.counters.batches += 1
        self.counters.frames += len(leases)
        self.counters.batch_slots += spec.batch
        post_ms = sum(p for _, p in decoded) * 1e3
        self.times.pre.add((t1 - t0) * 1e3)
        self.times.infer.add((t2 - t1) * 1e3)
        self.times.post.add(post_ms)
        self.times.fill.add(len(leases) / spec.batch)
        if log.isEnabledFor(logging.DEBUG):
            fields = {
                "batch": batch_id, "cameras": [lane.name for lane, _ in leases], "fill": len(leases),
                "frames": [f"{lease.info.width}x{lease.info.height}" for _, lease in leases],
                "size": spec.batch, "pre_ms": round((t1 - t0) * 1e3, 2), "infer_ms": round((t2 - t1) * 1e3, 2),
                "post_ms": round(sum(p for _, p in decoded) * 1e3, 2),
            }
            log.debug(
                "batch %(batch)d cameras=%(cameras)s frames=%(frames)s fill=%(fill)d/%(size)d pre=%(pre_ms).1fms "
                "infer=%(infer_ms).1fms post=%(post_ms).1fms", fields, extra={"fields": fields},
            )
        results = []
        for (lane, lease), info, (dets, post_s) in zip(leases, infos, decoded, strict=False):
            lane.processed += 1
            timing = {"leased": (lease.leased_mono - info.mono) * 1e3, "pre": (t1 - t0) * 1e3,
                      "infer": (t2 - t1) * 1e3, "post": post_s * 1e3}
            results.append(Result(lane, info, dets, timing, batch_id))
        return results

    def _preprocess(self, slot: int, leases: list[tuple[CameraLane, Lease]]) -> tuple[list[Letterbox], list[FrameInfo]]:
        spec = self.engine.input_spec
        buffer = self.engine.input_buffer(slot)
        boxes, infos = [], []
        try:
            for index, (lane, lease) in enumerate(leases):
                info = lease.info
                box = lane.letterbox(info.width, info.height, spec.width, spec.height)
                box.apply(lease.image, buffer[index])
                boxes.append(box)
                infos.append(info)
        finally:
            for _, lease in leases:
                lease.release()
        return boxes, infos

    def _infer(self, slot: int) -> asyncio.Future[np.ndarray]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()

        def resolve(result: np.ndarray | BaseException) -> None:
            if future.done():
                return
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

        def done(result: np.ndarray | BaseException) -> None:  # engine thread
            loop.call_soon_threadsafe(resolve, result)

        self.engine.submit(slot, done)
        return future

    def _postprocess(
        self, output: np.ndarray, leases: list[tuple[CameraLane, Lease]], boxes: list[Letterbox]
    ) -> list[tuple[Detections, float]]:
        out = []
        for index, ((lane, _), box) in enumerate(zip(leases, boxes, strict=False)):
            started = time.perf_counter()
            dets = self.decoder.decode(output[index], box, lane.detect.min_score, lane.class_mask)
            out.append((dets, time.perf_counter() - started))
        return out
