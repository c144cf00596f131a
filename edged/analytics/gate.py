"""The motion gate of one camera: which frames go to the detector, and where to look in them.

Runs on the camera's thread, on the grey copy of each frame the scheduler would take
(before that frame is converted to colour, where the source allows it). A frame goes
to the detector when there is motion (and for ``hold_s`` after it), when the last
inference is ``refresh_s`` old, to confirm an object just seen (at most
``CONFIRM_LOOKS`` frames per refresh), or always when gating is off; otherwise it is
*gated*: not converted, not inferred, nothing published for it; the camera's tracked
objects stay as they were. Tamper checks run on the same grey copy, twice a second,
after the frame is on its way (``after``), so no frame waits for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edged.analytics.motion import MotionDetector, MotionResult, grey_shape
from edged.analytics.tamper import TamperState, TamperWatch, Transition
from edged.config.models import CameraConfig
from edged.sources.demand import Demand
from edged.sources.state import Verdict

TamperListener = Callable[[str, Transition], None]  # camera, transition
EVERY_FRAME = Verdict("off", None)  # gating is off: every due frame goes to the detector
# Frames a still camera may look at, after each refresh, to confirm an object it has just seen (a track needs
# consecutive looks): counts are right within a fraction of a second of a start, and a detection that flickers
# in a still scene costs at most this many more inferences per refresh_s.
CONFIRM_LOOKS = 2


@dataclass(frozen=True)
class MotionStats:
    """Per-camera telemetry: ``"motion": {"active", "inferred", "gated"}`` and more."""

    enabled: bool
    active: bool
    inferred: int
    gated: int
    by_motion: int
    refreshes: int
    confirms: int
    storms: int
    fraction: float
    tamper: dict[str, str]  # kind -> reason, the conditions firing now

    def as_dict(self) -> dict[str, object]:
        return {"enabled": self.enabled, "active": self.active, "inferred": self.inferred, "gated": self.gated,
                "by_motion": self.by_motion, "refreshes": self.refreshes, "confirms": self.confirms,
                "light_changes": self.storms,
                "moving_fraction": self.fraction}


class CameraGate:
    def __init__(self, name: str, config: CameraConfig, on_tamper: TamperListener,
                 demand: Demand | None = None) -> None:
        self.name = name
        self.motion = MotionDetector(config.motion)
        self.tamper = TamperWatch(config.tamper)
        self._config = config
        self._on_tamper = on_tamper
        self._lock = threading.Lock()  # a reload changes masks from the loop
        self.last: MotionResult = MotionResult(False, [], 0.0)
        self._last_motion = -1e18
        self._last_inferred = -1e18
        self.demand = demand or Demand()  # its confirm deadline: analytics wants frames for a new object
        self._confirm_left = CONFIRM_LOOKS
        self.inferred = self.gated = self.by_motion = self.refreshes = self.confirms = 0

    # -- the camera thread -----------------------------------------------------------

    def grey_shape(self, width: int, height: int) -> tuple[int, int]:
        return grey_shape(width, height, self._config.motion.width)

    def without_look(self, now: float) -> Verdict | None:
        """The verdict on a frame that needs no grey copy, or None when it does. With gating off a frame needs
        one only for the tamper check (twice a second): every frame goes to the detector, and motion is measured
        on those looks alone."""
        if self._config.motion.enabled or self.tamper.due(now):
            return None
        self.inferred += 1
        return EVERY_FRAME

    def decide(self, grey: np.ndarray, now: float) -> Verdict | None:
        """Motion on ``grey``; a Verdict when the frame goes to the detector, None when it is gated.

        Only what the verdict needs happens here, before the frame is committed; ``after`` does the rest."""
        cfg = self._config.motion
        if not cfg.enabled:
            self.inferred += 1
            return EVERY_FRAME  # motion is measured in after(), off the frame's way
        with self._lock:
            result = self.last = self.motion.update(grey, now)
        if result.active:
            self._last_motion = now
        moving = now - self._last_motion <= cfg.hold_s
        # A light change or a cut changed the whole picture: not motion, but the detector looks at once.
        refresh = now - self._last_inferred >= cfg.refresh_s or result.storm
        confirm = not moving and now <= self.demand.confirm and self._confirm_left > 0
        if not moving and not refresh and not confirm:
            self.gated += 1
            return None
        self._last_inferred = now
        self.inferred += 1
        if moving and not refresh:
            self.by_motion += 1
            return Verdict("motion", result.union() if result.active else None)
        if refresh:
            self.refreshes += 1
            self._confirm_left = CONFIRM_LOOKS
            return Verdict("refresh", None)
        self._confirm_left -= 1
        self.confirms += 1
        return Verdict("confirm", None)

    def after(self, grey: np.ndarray, now: float) -> None:
        """Once the frame is on its way (committed or held back): the tamper checks when due, and with gating off
        the motion figures; a few milliseconds twice a second that no frame waits for."""
        with self._lock:
            if not self._config.motion.enabled:
                self.last = self.motion.update(grey, now)
            if self.tamper.due(now):
                for transition in self.tamper.update(grey, now):
                    self._on_tamper(self.name, transition)

    def reopened(self) -> None:
        """The stream opened again: its first frame is inferred and the background relearned."""
        with self._lock:
            self.motion.reset()
        self._last_inferred = -1e18

    # -- the loop --------------------------------------------------------------------

    def set_masks(self, config: CameraConfig) -> None:
        with self._lock:
            self.motion.set_masks(config.motion.masks)
            self._config = self._config.model_copy(update={"motion": self.motion.config})

    def set_gating(self, on: bool) -> None:
        """Gate on motion, or look at every due frame (a control from MQTT); motion is learned afresh."""
        with self._lock:
            if self._config.motion.enabled == on:
                return
            motion = self._config.motion.model_copy(update={"enabled": on})
            self._config = self._config.model_copy(update={"motion": motion})
            self.motion.reset()
        self._last_inferred = -1e18

    @property
    def gating(self) -> bool:
        return self._config.motion.enabled

    def stats(self) -> MotionStats:
        last = self.last
        tamper: TamperState = self.tamper.state
        return MotionStats(self._config.motion.enabled, last.active, self.inferred, self.gated, self.by_motion,
                           self.refreshes, self.confirms, self.motion.storms, last.fraction, dict(tamper.firing))
