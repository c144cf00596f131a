"""Counting lines with hysteresis: a crossing counts once, when an object has settled on the other side.

An object's footpoint (the bottom centre of its box) must first have *settled* on one side of the line: been at
least ``hysteresis`` (a fraction of the frame) away from it, or stayed on that side ``hysteresis_s``. A crossing
counts when it then settles on the other side, having moved there across the segment itself (not around one of
its ends). So a footpoint that jitters along the line counts nothing, one that steps over and back counts
nothing, and a track that resumes after a gap on the other side counts once (its side is kept for as long as
the tracker keeps its identity). ``in`` is from the line's left to its right, looking from its first point to
its second (for a line drawn left to right: downwards in the picture).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LineSide:
    """Where one object stands against one line."""

    settled: int = 0  # +1 right / -1 left once settled there; 0: not yet
    side: int = 0  # the side it is on now (0: not seen yet)
    since: float = 0.0  # when it came to ``side``
    across: bool = False  # it came to ``side`` over the segment itself


@dataclass
class Line:
    start: np.ndarray
    end: np.ndarray
    labels: frozenset[str]
    hysteresis: float = 0.0
    hysteresis_s: float = 0.0

    def __post_init__(self) -> None:
        self._d = self.end - self.start
        self._length = float(np.hypot(*self._d))

    def side(self, point: np.ndarray) -> float:
        """Positive right of the line (looking from start to end), negative left; in frame fractions away."""
        d = self._d
        return float(d[0] * (point[1] - self.start[1]) - d[1] * (point[0] - self.start[0])) / self._length

    def over_segment(self, before: np.ndarray, after: np.ndarray) -> bool:
        """The move from ``before`` to ``after`` passes between the segment's two ends (not beside it)."""
        move = after - before
        e0 = move[0] * (self.start[1] - before[1]) - move[1] * (self.start[0] - before[0])
        e1 = move[0] * (self.end[1] - before[1]) - move[1] * (self.end[0] - before[0])
        return bool((e0 > 0) != (e1 > 0) or e0 == 0 or e1 == 0)

    def step(self, state: LineSide, before: np.ndarray | None, point: np.ndarray, ts: float) -> str | None:
        """The object is at ``point`` at ``ts`` (it was at ``before``): ``in``/``out`` when that completes a
        crossing, else None."""
        distance = self.side(point)
        side = 1 if distance > 0 else -1  # a point on the line counts as on its left
        if side != state.side:
            state.across = state.side != 0 and before is not None and self.over_segment(before, point)
            state.side, state.since = side, ts
        if side == state.settled:
            return None
        if abs(distance) < self.hysteresis and (self.hysteresis_s <= 0 or ts - state.since < self.hysteresis_s):
            return None
        was, state.settled = state.settled, side
        if was == 0 or not state.across:
            return None  # first settled, or came round an end of the segment
        return "in" if side > 0 else "out"
