"""Scheduler logic with a fake engine: batching, rates, ping-pong overlap, ordering."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edged.config.models import DetectConfig
from edged.engines.base import Done, InputSpec
from edged.errors import EngineError
from edged.models.heads.raw import RawYoloDecoder
from edged.pipeline.decoding import Result
from edged.pipeline.lanes import CameraLane
from edged.pipeline.scheduler import Scheduler
from edged.sources.slot import FrameInfo, FrameSlot


class FakeEngine:
    """Completes each submit after ``delays[slot]`` seconds on its own timer thread."""

    def __init__(self, batch: int = 1, slots: int = 2, delay: float = 0.02, fail_after: int | None = None) -> None:
        self.input_spec = InputSpec(batch, 32, 32)
        self.num_slots = slots
        self.output_shape: tuple[int, ...] = (batch, 10, 7)
        self.delays = [delay] * slots
        self.fail_after = fail_after
        self._buffers = [np.zeros(self.input_spec.shape, np.uint8) for _ in range(slots)]
        self._output = np.zeros(self.output_shape, np.float32)
        self.events: list[tuple[str, int, float]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.submits = 0
        self._lock = threading.Lock()

    def start(self) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        return {"backend": "fake"}

    def input_buffer(self, slot: int) -> np.ndarray:
        return self._buffers[slot]

    def submit(self, slot: int, done: Done) -> None:
        with self._lock:
            self.submits += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.events.append(("submit", slot, time.monotonic()))
            failing = self.fail_after is not None and self.submits > self.fail_after

        def finish() -> None:
            with self._lock:
                self.in_flight -= 1
                self.events.append(("done", slot, time.monotonic()))
            done(EngineError("device lost") if failing else self._output)

        threading.Timer(self.delays[slot], finish).start()


def lane(name: str, fps: float | None = None) -> CameraLane:
    return CameraLane(name, FrameSlot(name), fps, DetectConfig(), None)


def commit(slot: FrameSlot, seq: int) -> None:
    buf = slot.begin_write(24, 40)
    buf[:] = seq % 255
    slot.commit(FrameInfo(seq, time.time(), time.monotonic(), 40, 24))


class Feeder:
    """Commits frames into every lane at ``hz`` from a thread, like cameras would."""

    def __init__(self, lanes: list[CameraLane], hz: float) -> None:
        self.lanes, self.period = lanes, 1.0 / hz
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        seq = 0
        while not self._stop.wait(self.period):
            seq += 1
            for ln in self.lanes:
                commit(ln.slot, seq)

    def __enter__(self) -> Feeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()


async def run_for(scheduler: Scheduler, seconds: float) -> None:
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(seconds)
    scheduler.stop()
    await asyncio.wait_for(task, 5)


async def run_until(scheduler: Scheduler, done: Callable[[], bool], limit: float = 30.0) -> None:
    """Run the scheduler until ``done()`` (a generous limit only stops a broken run, it is not what is tested)."""
    task = asyncio.create_task(scheduler.run())
    deadline = time.monotonic() + limit
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    scheduler.stop()
    await asyncio.wait_for(task, 5)


def make(engine: FakeEngine, lanes: list[CameraLane], window: float = 0.0) -> tuple[Scheduler, list[Result]]:
    results: list[Result] = []
    decoder = RawYoloDecoder("yolov5", 2, 10)
    scheduler = Scheduler(engine, decoder, lanes, results.append, window)
    for each in lanes:  # as the pipeline wires a camera: its slot wakes the scheduler
        each.slot.set_listener(scheduler.notify)
    return scheduler, results


def test_fresh_frames_from_several_cameras_share_a_batch() -> None:
    engine = FakeEngine(batch=4)
    lanes = [lane(f"c{i}") for i in range(4)]
    scheduler, results = make(engine, lanes, window=0.2)
    for ln in lanes:
        commit(ln.slot, 1)
    asyncio.run(run_for(scheduler, 0.3))
    assert results and {r.lane.name for r in results if r.batch_id == 1} == {"c0", "c1", "c2", "c3"}
    assert scheduler.counters.frames == 4 and scheduler.counters.batches == 1


def test_a_lone_frame_goes_after_the_batch_window() -> None:
    engine = FakeEngine(batch=4)
    lanes = [lane("only"), lane("idle")]
    scheduler, results = make(engine, lanes, window=0.05)
    commit(lanes[0].slot, 1)
    asyncio.run(run_for(scheduler, 0.4))
    assert [r.lane.name for r in results] == ["only"]
    assert scheduler.counters.batch_slots == 4  # one batch, one of four places used


def test_camera_rate_follows_its_fps() -> None:
    engine = FakeEngine(delay=0.005)
    fast, slow = lane("fast"), lane("slow", fps=5.0)
    scheduler, results = make(engine, [fast, slow])
    with Feeder([fast, slow], hz=100):
        asyncio.run(run_until(scheduler, lambda: sum(r.lane.name == "slow" for r in results) >= 4))
    leased = [r.info.mono for r in results if r.lane.name == "slow"]
    fast_count = sum(r.lane.name == "fast" for r in results)
    # Never faster than its rate, however fast or slow the machine: leases at least half an interval apart,
    # and no more of them than the clock allows. (Counts in a fixed window would depend on the machine.)
    assert all(b - a >= 0.08 for a, b in itertools.pairwise(leased)), leased  # 0.1 s, less a 100 Hz frame
    assert len(leased) - 1 <= (leased[-1] - leased[0]) * 5.0 + 1
    assert fast_count > len(leased)


def test_lane_clock_keeps_the_average_rate_without_bursts() -> None:
    ln = lane("cam", fps=10.0)
    # Frames every 40 ms (25 fps source); a lease happens at the first frame on or after next_due.
    leases, t = [], 0.0
    while t < 10.0:
        if ln.next_due <= t:
            ln.mark_leased(t)
            leases.append(t)
        t = round(t + 0.04, 6)
    assert len(leases) == pytest.approx(100, abs=2)
    ln2 = lane("late", fps=10.0)
    ln2.mark_leased(0.0)
    ln2.mark_leased(5.0)  # after a 5 s gap, no burst of catch-up leases: the first tick at least 50 ms on
    assert ln2.next_due == pytest.approx(5.1)
    assert ln2.demand.next_after == ln2.next_due  # what the camera thread reads: no frame converted before


def test_a_source_at_the_camera_rate_off_its_phase_keeps_the_rate() -> None:
    """Two file cameras at 10 frames/s asked for 10/s: the second one's phase (50 ms into each interval) is not
    where its frames arrive (20 ms). Each frame that arrived before its due time was skipped by the camera thread,
    the next one came 80 ms late, and the lane jumped a tick ahead for it: 5 detections/s (edged bench, the plaza
    cameras). A lease less than an interval late stays on the grid."""
    ln = lane("second", fps=10.0)
    ln.phase = 0.5
    fresh, leases = False, 0
    for ms in range(10_000):
        t = ms / 1000
        if ms % 100 == 20 and ln.demand.next_after <= t:  # the camera thread converts only frames it is due
            fresh = True
        if fresh and ln.next_due <= t:
            ln.mark_leased(t)
            fresh, leases = False, leases + 1
    assert leases >= 98, leases


def test_cameras_of_one_rate_fall_due_together_whenever_they_started() -> None:
    early, late = lane("early", fps=4.0), lane("late", fps=4.0)
    starts = {"early": 100.013, "late": 100.131}  # the second came online half an interval later
    dues: dict[str, list[float]] = {"early": [], "late": []}
    t = 100.0
    while t < 103.0:  # 30 fps sources; each camera is leased at the first frame on or after it is due
        for ln in (early, late):
            if t >= starts[ln.name] and ln.next_due <= t:
                ln.mark_leased(t)
                dues[ln.name].append(round(ln.next_due, 6))
        t += 1 / 30
    assert [d for d in dues["early"] if d > 100.6] == [d for d in dues["late"] if d > 100.6]
    assert len(dues["early"]) == pytest.approx(12, abs=1)  # still 4 per second


def test_batches_of_same_rate_cameras_are_spread_over_the_interval() -> None:
    lanes = [lane(f"cam{i}", fps=10.0) for i in range(8)] + [lane("free")]
    make(FakeEngine(batch=2), lanes)
    assert sorted(ln.phase for ln in lanes[:8]) == [0.0, 0.0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75]
    cam = lanes[5]  # phase 0.5: falls due at 50 ms into each 100 ms
    cam.mark_leased(200.01)
    assert cam.next_due == pytest.approx(200.15)
    make(FakeEngine(batch=1), lanes[:4])
    assert [ln.phase for ln in lanes[:4]] == [0.0, 0.25, 0.5, 0.75]  # one camera at a time: evenly staggered


def test_preprocessing_overlaps_inference_with_two_buffers() -> None:
    engine = FakeEngine(slots=2, delay=0.1)
    lanes = [lane("a"), lane("b")]
    scheduler, _ = make(engine, lanes)
    with Feeder(lanes, hz=200):
        asyncio.run(run_for(scheduler, 0.6))
    assert engine.max_in_flight == 2  # the next batch is submitted while the last still infers
    first_done = next(t for kind, _, t in engine.events if kind == "done")
    submits_before = [t for kind, _, t in engine.events if kind == "submit" and t < first_done]
    assert len(submits_before) == 2
    slots = [slot for kind, slot, _ in engine.events if kind == "submit"]
    assert set(slots) == {0, 1}


def test_results_are_delivered_in_batch_order() -> None:
    engine = FakeEngine(slots=2)
    engine.delays = [0.15, 0.01]  # slot 1 finishes long before slot 0
    lanes = [lane("a"), lane("b")]
    scheduler, results = make(engine, lanes)
    with Feeder(lanes, hz=100):
        asyncio.run(run_until(scheduler, lambda: len(results) >= 4))
    ids = [r.batch_id for r in results]
    assert ids == sorted(ids) and len(ids) >= 4
    for name in ("a", "b"):
        seqs = [r.info.seq for r in results if r.lane.name == name]
        assert seqs == sorted(seqs)


def test_an_engine_failure_stops_the_scheduler() -> None:
    engine = FakeEngine(fail_after=2)
    lanes = [lane("a")]
    scheduler, results = make(engine, lanes)

    async def go() -> None:
        with Feeder(lanes, hz=100):
            await asyncio.wait_for(scheduler.run(), 5)

    asyncio.run(go())
    assert isinstance(scheduler.failure, EngineError)
    assert len(results) == 2


def test_a_tiled_camera_takes_two_places_and_gets_one_result_a_frame() -> None:
    engine = FakeEngine(batch=3)
    tiled, plain = lane("tiled"), lane("plain")
    tiled.tiles = True
    scheduler, results = make(engine, [tiled, plain], window=0.2)
    for ln in (tiled, plain):
        commit(ln.slot, 1)
    asyncio.run(run_until(scheduler, lambda: len(results) >= 2))
    assert sorted(r.lane.name for r in results if r.batch_id == 1) == ["plain", "tiled"]  # 2 + 1 places of 3
    tiled_result = next(r for r in results if r.lane.name == "tiled")
    assert tiled_result.region is None  # the two tiles cover the whole frame
    assert scheduler.counters.frames == 2
    other = FakeEngine(batch=2)
    first, second = lane("a"), lane("b")
    first.tiles = second.tiles = True
    scheduler, results = make(other, [first, second], window=0.0)
    for ln in (first, second):
        commit(ln.slot, 1)
    asyncio.run(run_until(scheduler, lambda: len(results) >= 2))
    assert len({r.batch_id for r in results}) == 2  # two places a frame: one tiled camera per batch of 2
