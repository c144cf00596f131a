"""Each zone's last stays per label: how long objects stayed (median, p95) and how fast they crossed (median),
as the retained ``<camera>/<zone>/<label>/dwell`` and ``.../speed`` topics' values. Kept in memory: after a restart
the figures start over (the broker keeps the last values until the first new stay)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np

from edged.analytics.zones import ZoneChange

Figures = dict[str, float | int]


class StayFigures:
    def __init__(self, stays: Mapping[str, int]) -> None:
        self.size = dict(stays)  # zone -> how many last stays the figures are over
        self._dwell: dict[tuple[str, str], deque[float]] = {}
        self._speed: dict[tuple[str, str], deque[float]] = {}

    def left(self, changes: Sequence[ZoneChange], labels: Sequence[str]) -> list[tuple[tuple[str, ...], Figures]]:
        """The figures that changed with these zone changes' ``leave``s: (zone, label, dwell|speed) -> figures."""
        out: list[tuple[tuple[str, ...], Figures]] = []
        for change in changes:
            if change.kind != "leave" or change.dwell_s is None or change.zone not in self.size:
                continue
            key = (change.zone, labels[change.track.cls])
            dwell = self._dwell.setdefault(key, deque(maxlen=self.size[change.zone]))
            dwell.append(change.dwell_s)
            out.append(((*key, "dwell"), _figures(dwell, "s", p95=True)))
            if change.speed_kmh is not None:
                speed = self._speed.setdefault(key, deque(maxlen=self.size[change.zone]))
                speed.append(change.speed_kmh)
                out.append(((*key, "speed"), _figures(speed, "kmh", p95=False)))
        return out


def _figures(values: deque[float], unit: str, p95: bool) -> Figures:
    array = np.fromiter(values, np.float64, len(values))
    out: Figures = {f"last_{unit}": round(values[-1], 2), f"median_{unit}": round(float(np.median(array)), 2)}
    if p95:
        out[f"p95_{unit}"] = round(float(np.percentile(array, 95)), 2)
    out["stays"] = len(values)
    return out
