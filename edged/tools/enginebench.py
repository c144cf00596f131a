"""Running a started engine outside the daemon: on a list of frames, or flat out for speed.

Shared by ``edged calibrate`` (INT8 against FP32 on held-out frames, and their speed
ratio measured in the same run) and the benchmarks.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edged.artifacts.info import ModelInfo
from edged.engines.base import Engine
from edged.errors import EngineError
from edged.models.yolo import Detections, Letterbox


def infer_once(engine: Engine, slot: int, timeout: float = 60.0) -> np.ndarray:
    done = threading.Event()
    box: list[Any] = []

    def finished(result: Any) -> None:
        box.append(result)
        done.set()

    engine.submit(slot, finished)
    if not done.wait(timeout):
        raise EngineError(f"inference did not finish within {timeout:g} s")
    if isinstance(box[0], BaseException):
        raise box[0]
    return np.asarray(box[0])


def detect_frames(engine: Engine, model: ModelInfo, frames: Iterable[np.ndarray], min_score: float,
                  iou: float = 0.45) -> list[Detections]:
    """Detections for each frame, one at a time, exactly as the daemon letterboxes and decodes."""
    decoder = model.make_decoder(engine.output_shape, iou=iou, max_det=300)
    buffer = engine.input_buffer(0)
    out = []
    for frame in frames:
        box = Letterbox.fit(frame.shape[1], frame.shape[0], model.width, model.height, resize=model.resize)
        box.apply(frame, buffer[0])
        output = infer_once(engine, 0)
        out.append(decoder.decode(output[0], box, min_score))
    return out


@dataclass
class Throughput:
    fps: float
    latency_ms_p50: float
    latency_ms_p95: float
    frames: int
    seconds: float


def throughput(engine: Engine, seconds: float, in_flight: int | None = None) -> Throughput:
    """``in_flight`` slots (all by default) kept busy with random input (as OpenVINO's benchmark_app does).

    The calling thread resubmits each slot as it comes back, never the engine's own
    callback thread.
    """
    slots = range(min(in_flight or engine.num_slots, engine.num_slots))
    rng = np.random.default_rng(0)
    for slot in slots:
        engine.input_buffer(slot)[:] = rng.integers(0, 255, engine.input_spec.shape, dtype=np.uint8)
    returned: queue.SimpleQueue[tuple[int, float]] = queue.SimpleQueue()
    started: dict[int, float] = {}
    latencies: list[float] = []

    def submit(slot: int) -> None:
        def done(_result: object) -> None:
            returned.put((slot, time.perf_counter()))

        started[slot] = time.perf_counter()
        engine.submit(slot, done)

    began = time.monotonic()
    stop_at = began + seconds
    for slot in slots:
        submit(slot)
    outstanding = len(slots)
    while outstanding:
        slot, finished = returned.get(timeout=60)
        latencies.append((finished - started[slot]) * 1e3)
        if time.monotonic() < stop_at:
            submit(slot)
        else:
            outstanding -= 1
    elapsed = time.monotonic() - began
    frames = len(latencies) * engine.input_spec.batch
    ordered = sorted(latencies)
    p95 = ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan")
    return Throughput(frames / elapsed, statistics.median(ordered) if ordered else float("nan"), p95, frames, elapsed)
