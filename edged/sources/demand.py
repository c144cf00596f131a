"""What the later stages want of one camera's frames, flowing one way: each reason says until when it wants frames
(``want_until``), the camera thread and the scheduler read. It replaces four flags that later stages used to write
into earlier ones (the gate's look_until, the picture ring's keep and live_until, the slot's wanted_after).

Each write is one float store (atomic under the GIL): no lock, no wake-up, nothing allocated per frame.
"""

from __future__ import annotations

import math

REASONS = ("confirm", "snapshots", "live", "looks")
NEVER = -math.inf
ALWAYS = math.inf


class Demand:
    """Reasons (monotonic deadlines): ``confirm``: a new object waits to be confirmed, so the motion gate lets frames
    through; ``snapshots``: objects are followed and their best frames may improve, so the scheduler copies
    pictures; ``live``: the page shows the camera; ``looks``: objects a second look wants crops of. ``next_after``:
    the scheduler's cadence, before which a new frame is not wanted (the camera thread skips converting it)."""

    __slots__ = ("confirm", "live", "looks", "next_after", "snapshots")

    def __init__(self) -> None:
        self.confirm = NEVER
        self.snapshots = NEVER
        self.live = NEVER
        self.looks = NEVER
        self.next_after = 0.0

    def want_until(self, reason: str, mono: float) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown demand reason {reason!r}; one of {', '.join(REASONS)}")
        setattr(self, reason, mono)

    def wants(self, reason: str, now: float) -> bool:
        return bool(now < getattr(self, reason))

    def pictures(self, now: float) -> bool:
        """A copy of the frame is wanted: for snapshots, for the page, or for a second look at its objects."""
        return now < self.snapshots or now < self.live or now < self.looks
