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
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from edged.engines.base import Engine
from edged.models.heads import Decoder
from edged.pipeline.batch import Batch, BatchPreparer
from edged.pipeline.decoding import BatchDecoder, Result
from edged.pipeline.lanes import CameraLane
from edged.pipeline.stats import EngineStats, Percentiles
from edged.sources.slot import Lease

log = logging.getLogger(__name__)


ResultSink = Callable[[Result], None]


_Outcome = tuple[int, "np.ndarray | BaseException"]


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
        self.lanes = list(lanes)  # replaced, never changed in place: the scheduler thread reads it unlocked
        self.sink = sink
        self.batch_window_s = batch_window_s
        self._stopping = False
        self._abandoned = False  # run() was cancelled: threads stop waiting for in-flight batches
        self._wake = threading.Event()  # a frame was committed, a slot came free, or stop()
        self._lock = threading.Lock()  # batches in flight (read by stats from the loop)
        self._free: deque[int] = deque()  # free input buffers (the scheduler thread's alone)
        self._in_flight: dict[int, Batch] = {}
        self._outcomes: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self._waiting: dict[int, np.ndarray | BaseException] = {}  # outcomes that came back before earlier ones
        self._following = 1  # the batch whose results go next
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: BaseException | None = None
        self.last_tick = time.monotonic()  # the scheduler thread's heartbeat
        # The scheduler thread's CPU seconds in each step; pictures: copies of frames for the page and snapshots.
        self.cpu_s = {"letterbox": 0.0, "box_decode": 0.0, "appearance": 0.0, "pictures": 0.0}
        self.preparer = BatchPreparer(engine, resize, self.cpu_s)
        self.decoding = BatchDecoder(engine, decoder, self.cpu_s)
        self.counters, self.times = self.decoding.counters, self.decoding.times
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
                        self._submit(self.preparer.prepare(self._free.popleft(), leases))
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
        places = sum(lane.places for lane in due)
        if due and (places >= batch or self.batch_window_s <= 0 or (deadline is not None and now >= deadline)):
            if len(due) > 1:
                due.sort(key=_due_time)
            leases = []
            used = 0
            for lane in due:
                if used + lane.places > batch:
                    continue  # a tiled camera's two places do not fit this batch: the next one
                lease = lane.slot.lease()
                if lease is not None:
                    lane.mark_leased(now)
                    leases.append((lane, lease))
                    used += lane.places
            if leases:
                return leases, None, 0.0
        if due and deadline is None:
            deadline = now + self.batch_window_s
        return [], deadline, _next_wake(lanes, now, deadline)

    def _submit(self, batch: Batch) -> None:
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
            results = self.decoding.decode(batch, outcome, received)
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
