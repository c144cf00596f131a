"""Typed stats snapshots of the pipeline, and the rolling windows they are computed from.

``Window.add`` writes one float into a preallocated ring on the hot path; percentiles
are computed only when a snapshot is taken (telemetry, /metrics, every few seconds).
``Pipeline.stats()`` returns a ``PipelineStats``; with the publisher's own snapshot it
makes a ``Snapshot``, which is all that telemetry, alerts, the governor, /healthz and
/metrics ever read. Nothing outside the daemon holds the daemon.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edged.analytics.gate import MotionStats
from edged.publish.stats import PublisherStats
from edged.sources.state import CameraState, WorkerStats

# Upper bounds (ms) of the lifetime histograms that /metrics exports (in seconds): frame ages and engine stages.
BUCKETS_MS = (1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0)


class Window:
    """The last ``size`` values (for percentiles), and every value since start counted into ``BUCKETS_MS`` (for
    a Prometheus histogram, which must only grow: ``clear`` forgets the window, not the counts)."""

    def __init__(self, size: int = 512) -> None:
        self._values = np.zeros(size, dtype=np.float64)
        self._next = 0
        self._count = 0
        self._buckets = [0] * (len(BUCKETS_MS) + 1)  # the last one: above the largest bound
        self._sum = 0.0

    def add(self, value: float) -> None:
        self._values[self._next] = value
        self._next = (self._next + 1) % self._values.size
        if self._count < self._values.size:
            self._count += 1
        self._buckets[bisect_left(BUCKETS_MS, value)] += 1
        self._sum += value

    def histogram(self) -> tuple[tuple[int, ...], float]:
        """(count per bucket, not cumulative; sum in ms) since start."""
        return tuple(self._buckets), self._sum

    def __len__(self) -> int:
        return self._count

    def percentiles(self, *qs: float) -> list[float | None]:
        if self._count == 0:
            return [None for _ in qs]
        values = np.percentile(self._values[: self._count], qs)
        return [round(float(v), 2) for v in values]

    def clear(self) -> None:
        self._next = self._count = 0


class Rate:
    """Events per second between two reads of a monotonically increasing counter."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None

    def update(self, count: float, now: float) -> float | None:
        last, self._last = self._last, (count, now)
        if last is None or now <= last[1]:
            return None
        return round((count - last[0]) / (now - last[1]), 2)


@dataclass(frozen=True)
class Percentiles:
    """A window's percentiles (ms), and the lifetime histogram behind it (counts per ``BUCKETS_MS`` bucket)."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    buckets: tuple[int, ...] = ()
    sum_ms: float = 0.0

    @classmethod
    def of(cls, window: Window) -> Percentiles:
        p50, p95, p99 = window.percentiles(50, 95, 99)
        buckets, total = window.histogram()
        return cls(p50, p95, p99, buckets, total)

    def as_dict(self, *keys: str) -> dict[str, float | None]:
        return {key: getattr(self, key) for key in keys or ("p50", "p95", "p99")}


@dataclass(frozen=True)
class CameraStats:
    name: str
    worker: WorkerStats
    frames_processed: int
    target_fps: float | None
    governed_fps: float | None
    age_ms: Percentiles  # capture -> handed to the publisher
    motion: MotionStats | None = None

    @property
    def state(self) -> CameraState:
        return self.worker.state

    def as_dict(self) -> dict[str, Any]:
        w = self.worker
        return {
            "state": w.state.value, "reason": w.reason, "frames_read": w.frames_read,
            "frames_decoded": w.frames_decoded, "frames_skipped": w.frames_skipped,
            "frames_dropped": w.frames_dropped, "frames_processed": self.frames_processed,
            "reconnects": w.reconnects, "stalls": w.stalls, "flapping": w.flapping,
            "target_fps": self.target_fps, "governed_fps": self.governed_fps,
            "age_ms": self.age_ms.as_dict("p50", "p95"), "heartbeat_age_s": w.heartbeat_age_s,
            **({"motion": self.motion.as_dict(), "tamper": self.motion.tamper} if self.motion is not None else {}),
        }


@dataclass(frozen=True)
class EngineStats:
    settings: Mapping[str, Any]  # what the engine reports of itself (backend, device, precision, ...)
    batches: int = 0
    frames: int = 0
    batch_fill: float | None = None
    in_flight: int = 0
    errors: int = 0
    oldest_in_flight_s: float = 0.0
    infer_ms: Percentiles = field(default_factory=Percentiles)
    pre_ms: Percentiles = field(default_factory=Percentiles)
    post_ms: Percentiles = field(default_factory=Percentiles)
    failure: str | None = None  # the engine error that stopped inference
    non_finite: int = 0  # frames whose output held NaN or inf (not published)
    tick_age_s: float = 0.0  # since the scheduler loop last ran

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.settings, "oldest_in_flight_s": round(self.oldest_in_flight_s, 2),
            "batches": self.batches, "frames": self.frames, "batch_fill": self.batch_fill,
            "in_flight": self.in_flight, "errors": self.errors, "non_finite": self.non_finite,
            "infer_ms": self.infer_ms.as_dict(),
            "pre_ms": self.pre_ms.as_dict("p50", "p95"), "post_ms": self.post_ms.as_dict("p50", "p95"),
        }


@dataclass(frozen=True)
class PipelineStats:
    cameras: Mapping[str, CameraStats]
    engine: EngineStats
    uptime_s: float
    started: bool = True  # False until the engine is warm and the scheduler runs
    # CPU seconds of the steps two threads clock themselves: {"scheduling": {...}, "event_loop": {...}}
    timed_cpu_s: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # JPEG encodes by kind: snapshot, live, live_reused (served again), replaced (a newer snapshot came first)
    encodes: Mapping[str, int] = field(default_factory=dict)
    # Second looks: per station (classify:<name>, verify, colors) crops, batches, skipped, seconds in the model; per
    # camera (camera:<name>) the verifier's verdicts and the sub-labels given
    looks: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """Everything the readers of stats get: the pipeline's and the publisher's snapshots."""

    pipeline: PipelineStats
    mqtt: PublisherStats
