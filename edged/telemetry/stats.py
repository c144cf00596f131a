"""Rolling windows for percentiles, allocated once and filled on the hot path.

``Window.add`` writes one float into a preallocated ring; percentiles are computed
only when telemetry asks (every few seconds), never per frame.
"""

from __future__ import annotations

import numpy as np


class Window:
    def __init__(self, size: int = 512) -> None:
        self._values = np.zeros(size, dtype=np.float64)
        self._next = 0
        self._count = 0

    def add(self, value: float) -> None:
        self._values[self._next] = value
        self._next = (self._next + 1) % self._values.size
        if self._count < self._values.size:
            self._count += 1

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
