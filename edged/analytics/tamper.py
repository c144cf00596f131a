"""Tamper: a camera covered, defocused or turned away, on the motion stage's grey copy.

Each check compares the camera with itself, over ``learn_s`` of its own footage first:

- **covered**: most of the picture is flat (``covered_fraction`` of its blocks have
  almost no texture: a hand, tape, a bag, a lens cap), or it is dark and mostly flat.
  A scene that is flat on a normal day (a white wall) raises the bar to above its own.
- **defocused**: sharpness (variance of the Laplacian) far under the camera's own
  baseline (``defocus_ratio`` of it); the baseline follows slow changes (dusk) only
  while nothing is wrong.
- **moved**: the picture's structure (edges, at low resolution, brightness taken out)
  no longer correlates with the learned view, and stays so. Objects passing by change
  a part of it; a camera turned away changes all of it. A view that stays moved for
  ``relearn_s`` becomes the new normal (someone repositioned the camera on purpose).

A condition fires after holding for ``hold_s`` and resolves after being gone for
``hold_s``; covered outranks the others (a covered lens is also blurred and changed).
Checks run at most twice a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from edged.config.models import TamperConfig

KINDS = ("covered", "defocused", "moved")
_FLAT_TEXTURE = 1.0  # mean |Laplacian| of the softened picture around a pixel under this: no texture there
_SMALL = (80, 45)  # structure is compared at this size
_PERIOD_S = 0.5


@dataclass
class TamperReading:
    flat: float  # share of the picture without texture
    mean: float  # mean grey level
    sharpness: float
    similarity: float | None  # correlation with the learned view; None while learning


@dataclass
class Transition:
    kind: str
    firing: bool
    reason: str
    held_s: float


@dataclass
class _Condition:
    firing: bool = False
    since: float | None = None  # when the pending change (on or off) began
    fired_at: float = 0.0


@dataclass
class TamperState:
    """What telemetry shows: the conditions firing now, and the last reading."""

    firing: dict[str, str] = field(default_factory=dict)  # kind -> reason
    reading: TamperReading | None = None
    learned: bool = False


class TamperWatch:
    def __init__(self, config: TamperConfig) -> None:
        self.config = config
        self.state = TamperState()
        self._conditions = {kind: _Condition() for kind in KINDS}
        self._started: float | None = None
        self._last_check = -math.inf
        self._flat_base: list[float] = []
        self._sharp_base: float | None = None
        self._sharp_learning: list[float] = []
        self._view: np.ndarray | None = None  # float32 edges of the learned view, zero mean, unit norm
        self._moved_since: float | None = None
        self._relearned = False
        self._current = np.zeros((_SMALL[1], _SMALL[0]), np.float32)
        self._small = np.empty((_SMALL[1], _SMALL[0]), np.uint8)
        self._laplacian = np.empty(0, np.float32)
        self._texture = np.empty(0, np.float32)
        self._soft = np.empty(0, np.float32)

    def due(self, now: float) -> bool:
        return self.config.enabled and now - self._last_check >= _PERIOD_S

    def update(self, grey: np.ndarray, now: float) -> list[Transition]:
        """Check ``grey`` (call when ``due``); returns the conditions that fired or resolved."""
        self._last_check = now
        if self._started is None:
            self._started = now
        reading = self._read(grey)
        self.state.reading = reading
        learning = now - self._started < self.config.learn_s
        if learning:
            self._learn(reading)
            return []
        if not self.state.learned:
            self._finish_learning()
        active = self._judge(reading, now)
        out = []
        for kind in KINDS:
            transition = self._hold(kind, active.get(kind), now)
            if transition is not None:
                out.append(transition)
        if not any(c.firing for c in self._conditions.values()):
            self._follow(reading)
        return out

    # -- measurements ----------------------------------------------------------------

    def _read(self, grey: np.ndarray) -> TamperReading:
        if self._laplacian.shape != grey.shape:
            self._laplacian = np.empty(grey.shape, np.float32)
            self._texture = np.empty(grey.shape, np.float32)
            self._soft = np.empty(grey.shape, np.float32)
        cv2.Laplacian(grey, cv2.CV_32F, dst=self._laplacian, ksize=3)
        sharpness = float(self._laplacian.var())
        # Texture: how much the (softened: sensor noise is not texture) picture varies around each pixel; a
        # covered lens has none anywhere.
        np.copyto(self._soft, grey, casting="unsafe")
        cv2.GaussianBlur(self._soft, (0, 0), 2.0, dst=self._soft)
        cv2.Laplacian(self._soft, cv2.CV_32F, dst=self._texture, ksize=3)
        np.abs(self._texture, out=self._texture)
        cv2.blur(self._texture, (9, 9), dst=self._texture)
        flat = float(np.count_nonzero(self._texture < _FLAT_TEXTURE)) / self._texture.size
        edges = self._edges(grey)
        similarity = None if self._view is None else float(np.dot(edges.ravel(), self._view.ravel()))
        self._current = edges
        return TamperReading(round(flat, 3), round(float(grey.mean()), 1), round(sharpness, 1),
                             None if similarity is None else round(similarity, 3))

    def _edges(self, grey: np.ndarray) -> np.ndarray:
        cv2.resize(grey, _SMALL, dst=self._small, interpolation=cv2.INTER_AREA)
        gx = cv2.Sobel(self._small, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(self._small, cv2.CV_32F, 0, 1, ksize=3)
        magnitude = cv2.magnitude(gx, gy)
        magnitude -= magnitude.mean()
        norm = float(np.linalg.norm(magnitude))
        return magnitude / norm if norm > 1e-6 else magnitude

    # -- learning --------------------------------------------------------------------

    def _learn(self, reading: TamperReading) -> None:
        self._flat_base.append(reading.flat)
        self._sharp_learning.append(reading.sharpness)
        view = self._current
        self._view = view.copy() if self._view is None else self._view * 0.8 + view * 0.2

    def _finish_learning(self) -> None:
        self.state.learned = True
        self._sharp_base = float(np.median(self._sharp_learning)) if self._sharp_learning else None
        self._renormalise()

    def _renormalise(self) -> None:
        if self._view is not None:
            view = self._view - self._view.mean()
            norm = float(np.linalg.norm(view))
            self._view = view / norm if norm > 1e-6 else view

    def _follow(self, reading: TamperReading) -> None:
        """Nothing is wrong: the baselines follow slow changes of the scene (light over the day)."""
        if self._sharp_base is not None and reading.sharpness > 0:
            self._sharp_base = math.exp(0.998 * math.log(self._sharp_base) + 0.002 * math.log(reading.sharpness))
        if self._view is not None:
            self._view = self._view * 0.99 + self._current * 0.01
            self._renormalise()

    # -- judgement -------------------------------------------------------------------

    def _judge(self, reading: TamperReading, now: float) -> dict[str, str]:
        cfg = self.config
        usual_flat = float(np.median(self._flat_base)) if self._flat_base else 0.0
        flat_bar = max(cfg.covered_fraction, min(0.98, usual_flat + 0.15))
        active: dict[str, str] = {}
        if reading.flat >= flat_bar:
            active["covered"] = f"{reading.flat:.0%} of the picture has no texture (usual {usual_flat:.0%})"
        elif reading.mean < cfg.dark_level and reading.flat >= 0.5:
            active["covered"] = f"the picture is dark (mean grey {reading.mean:g}) and {reading.flat:.0%} flat"
        if "covered" in active:
            self._moved_since = None
            return active
        base = self._sharp_base
        if base and reading.sharpness < cfg.defocus_ratio * base:
            active["defocused"] = (f"sharpness {reading.sharpness:g} is {reading.sharpness / base:.0%} of this "
                                   f"camera's usual {base:g}")
        similarity = reading.similarity
        if similarity is not None and similarity < cfg.moved_similarity:
            if self._moved_since is None:
                self._moved_since = now
            if now - self._moved_since >= cfg.relearn_s:
                self._view = self._current.copy()  # the new view is the normal one now
                self._moved_since = None
                self._relearned = True
            else:
                active["moved"] = (f"the picture's structure matches the learned view at {similarity:.2f} "
                                   f"(threshold {cfg.moved_similarity:g})")
        else:
            self._moved_since = None
        return active

    def _hold(self, kind: str, reason: str | None, now: float) -> Transition | None:
        condition = self._conditions[kind]
        wanted = reason is not None
        if wanted == condition.firing:
            condition.since = None
            if wanted and reason is not None:
                self.state.firing[kind] = reason
            return None
        if condition.since is None:
            condition.since = now
        if now - condition.since < self.config.hold_s:
            return None
        condition.firing, condition.since = wanted, None
        if wanted:
            assert reason is not None
            condition.fired_at = now
            self.state.firing[kind] = reason
            return Transition(kind, True, reason, 0.0)
        self.state.firing.pop(kind, None)
        resolved = "back to normal"
        if kind == "moved":
            resolved = (f"the view stayed moved for {self.config.relearn_s:g} s: it is the normal view now"
                        if self._relearned else "the view matches the learned one again")
            self._relearned = False
        return Transition(kind, False, resolved, round(now - condition.fired_at, 1))
