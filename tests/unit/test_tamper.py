"""Tamper: covered, defocused and moved fire after holding, resolve after, and never on a normal scene."""

from __future__ import annotations

import cv2
import numpy as np

from edged.analytics.tamper import TamperWatch, Transition
from edged.config.models import TamperConfig

RNG = np.random.default_rng(3)
# A scene with structure at several scales: blocks of grey, and fine texture on them.
SCENE = np.clip(cv2.resize(RNG.integers(30, 220, (18, 32), dtype=np.uint8), (320, 180),
                           interpolation=cv2.INTER_NEAREST) + RNG.normal(0, 12, (180, 320)), 0, 255).astype(np.uint8)


def noisy(image: np.ndarray) -> np.ndarray:
    return np.clip(image + RNG.normal(0, 3, image.shape), 0, 255).astype(np.uint8)


def play(watch: TamperWatch, frames: list[np.ndarray], start: float) -> list[tuple[float, Transition]]:
    out = []
    for i, frame in enumerate(frames):
        now = start + i * 0.5
        if watch.due(now):
            out += [(now, t) for t in watch.update(frame, now)]
    return out


def learned() -> TamperWatch:
    watch = TamperWatch(TamperConfig(learn_s=3.0, hold_s=2.0))
    assert play(watch, [noisy(SCENE) for _ in range(10)], 0.0) == []
    return watch


def test_a_normal_scene_with_people_passing_raises_nothing() -> None:
    watch = learned()
    frames = []
    for i in range(120):
        frame = noisy(SCENE)
        x = (i * 7) % 280
        frame[60:160, x:x + 30] = 90  # someone walking through
        frames.append(frame)
    assert play(watch, frames, 5.0) == []


def kinds(events: list[tuple[float, Transition]]) -> list[tuple[str, bool]]:
    return [(t.kind, t.firing) for _, t in events]


def test_covered_fires_after_holding_and_resolves() -> None:
    watch = learned()
    covered = np.full_like(SCENE, 20)
    covered[:10] = SCENE[:10]
    events = play(watch, [noisy(covered) for _ in range(10)] + [noisy(SCENE) for _ in range(10)], 5.0)
    assert kinds(events) == [("covered", True), ("covered", False)]
    fired = events[0][0]
    assert 5.0 + 2.0 <= fired <= 5.0 + 3.0 and "no texture" in events[0][1].reason


def test_defocused_is_far_under_the_cameras_own_sharpness() -> None:
    watch = learned()
    blurred = cv2.GaussianBlur(SCENE, (0, 0), 3)
    events = play(watch, [blurred for _ in range(10)] + [noisy(SCENE) for _ in range(10)], 5.0)
    assert ("defocused", True) in kinds(events) and ("defocused", False) in kinds(events)
    assert ("covered", True) not in kinds(events)


def test_moved_when_the_view_changes_and_relearned_when_it_stays() -> None:
    watch = TamperWatch(TamperConfig(learn_s=3.0, hold_s=2.0, relearn_s=20.0))
    play(watch, [noisy(SCENE) for _ in range(10)], 0.0)
    turned = np.roll(SCENE, (40, 90), axis=(0, 1))
    events = play(watch, [noisy(turned) for _ in range(60)], 5.0)
    assert kinds(events) == [("moved", True), ("moved", False)]
    assert "normal view now" in events[1][1].reason
