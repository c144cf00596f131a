"""The identity bench: a tracker's take-ups after a gap are recorded and judged by the hand-judged pairs that hold
them, and the colour cue is scored by the area under its ROC curve."""

from __future__ import annotations

from typing import Any

import numpy as np

from edged.analytics import Tracker
from edged.bench import identity
from edged.models.yolo import Detections


def person(x: float | None) -> Detections:
    """One person at ``x``, or nobody."""
    boxes = np.array([[x, 0.4, x + 0.03, 0.48]] if x is not None else [], np.float32).reshape(-1, 4)
    return Detections(boxes, np.full(len(boxes), 0.8, np.float32), np.zeros(len(boxes), np.int64), True)


def pair(a_t: float, a_x: float, b_t: float, b_x: float, same: bool | None) -> dict[str, Any]:
    return {"a": {"t": a_t, "box": [a_x, 0.4, a_x + 0.03, 0.48]}, "b": {"t": b_t, "box": [b_x, 0.4, b_x + 0.03, 0.48]},
            "same": same}


def test_a_take_up_after_a_gap_is_recorded_with_where_it_was_last_seen() -> None:
    tracker, gaps = Tracker(), identity.Gaps(cls=0)
    x = 0.2
    for step in range(20):  # seen, unseen from 0.5 to 0.9 s (a gap of 0.5 s), seen again
        x += 0.01
        ts = step * 0.1
        tracker.update(person(x if not 5 <= step < 10 else None), ts)
        gaps.after(tracker, ts)
    assert len(gaps.take_ups) == 1 and [t.id for t in tracker.tracks] == [1]  # the same track again
    taken = gaps.take_ups[0]
    assert abs(taken.a_t - 0.4) < 1e-9 and abs(taken.b_t - 1.0) < 1e-9
    assert abs(float(taken.a_box[0]) - 0.25) < 1e-6 and abs(float(taken.b_box[0]) - 0.31) < 1e-6


def test_take_ups_are_judged_by_the_pair_that_holds_both_boxes_at_the_same_frames() -> None:
    def take(a_t: float, a_x: float, b_t: float, b_x: float) -> identity.TakeUp:
        return identity.TakeUp(1, a_t, np.array([a_x, 0.4, a_x + 0.03, 0.48], np.float32), b_t,
                               np.array([b_x, 0.4, b_x + 0.03, 0.48], np.float32))

    pairs = [pair(1.0, 0.2, 1.5, 0.3, True), pair(2.0, 0.5, 2.4, 0.6, False), pair(3.0, 0.1, 3.3, 0.1, None)]
    found = [take(1.0, 0.201, 1.5, 0.301),  # the first pair's boxes, a hair off: same
             take(2.0, 0.5, 2.4, 0.6),  # other
             take(3.0, 0.1, 3.3, 0.1),  # unclear
             take(2.0, 0.5, 2.5, 0.6),  # a frame later than the pair: not judged
             take(1.0, 0.2, 1.5, 0.32)]  # the second box 0.02 (two thirds of its width) off: not judged
    assert identity.judge(found, pairs) == {"same": 1, "other": 1, "unclear": 1, "not_judged": 2}


def test_the_cue_is_scored_by_the_area_under_its_roc_curve() -> None:
    assert identity.auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert identity.auc([0.1], [0.9]) == 0.0
    assert identity.auc([0.5, 0.9], [0.5, 0.1]) == 0.875  # one tie counts half: (1 + 1 + 0.5 + 1) / 4
    red, grey = np.zeros(512, np.float32), np.zeros(512, np.float32)
    red[6], grey[4 * 64 + 4 * 8 + 4] = 1.0, 1.0
    pairs = [pair(1.0, 0.2, 1.5, 0.3, True), pair(2.0, 0.5, 2.4, 0.6, False), pair(3.0, 0.1, 3.3, 0.1, None)]
    colours = {(0, "a"): red, (0, "b"): red, (1, "a"): red, (1, "b"): grey, (2, "a"): red, (2, "b"): grey}
    assert identity.cue_auc(colours, pairs) == {"same": 1, "other": 1, "auc": 1.0}
    assert identity.frame_boxes(pairs)[15] == [(0, "b")] and identity.frame_boxes(pairs)[33] == [(2, "b")]
