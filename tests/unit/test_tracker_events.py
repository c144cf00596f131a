"""Tracks confirmed after consecutive frames, ended after misses; events numbered per camera."""

from __future__ import annotations

import json

import numpy as np

from edged.analytics.events import EventBuilder
from edged.analytics.tracker import Tracker
from edged.models.yolo import Detections
from edged.pipeline.sinks import EventsSink
from tests.unit.test_zones import Recorder


def dets(*boxes: tuple[float, float, float, float, int]) -> Detections:
    if not boxes:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    a = np.array(boxes, np.float32)
    return Detections(a[:, :4], np.full(len(boxes), 0.8, np.float32), a[:, 4].astype(np.int64))


def test_confirmation_matching_and_end() -> None:
    tracker = Tracker(iou=0.3, min_hits=2, max_missed=2, lost_s=0.0)
    first = tracker.update(dets((0.1, 0.1, 0.3, 0.5, 0)), 0.0)
    assert first.started == [] and first.ids.tolist() == [0]  # tentative
    second = tracker.update(dets((0.12, 0.1, 0.32, 0.5, 0), (0.6, 0.6, 0.7, 0.7, 2)), 0.1)
    assert [t.id for t in second.started] == [1] and second.ids.tolist() == [1, 0]
    for ts in (0.2, 0.3):
        assert tracker.update(dets((0.6, 0.6, 0.7, 0.7, 2)), ts).ended == []
    gone = tracker.update(dets((0.6, 0.6, 0.7, 0.7, 2)), 0.4)
    assert [t.id for t in gone.ended] == [1]


def test_classes_never_match_each_other_and_flickers_never_start() -> None:
    tracker = Tracker(min_hits=2)
    tracker.update(dets((0.1, 0.1, 0.3, 0.5, 0)), 0.0)
    other = tracker.update(dets((0.1, 0.1, 0.3, 0.5, 1)), 0.1)  # same place, other class
    assert other.started == []
    assert tracker.update(dets(), 0.2).ended == [] and tracker.update(dets(), 0.3).ended == []
    assert tracker.tracks == []


def test_events_new_update_end_with_contiguous_seq() -> None:
    tracker = Tracker(min_hits=1, max_missed=0, lost_s=0.0)
    builder = EventBuilder(update_s=1.0)
    sink = EventsSink(Recorder(), "dev", "run1", ["person", "bicycle", "car"], {"serialise": 0.0, "publish": 0.0})
    out = []
    for ts, frame in [(0.0, dets((0.1, 0.1, 0.3, 0.5, 2))), (0.5, dets((0.1, 0.1, 0.3, 0.5, 2))),
                      (1.2, dets((0.1, 0.1, 0.3, 0.5, 2))), (1.3, dets())]:
        update = tracker.update(frame, ts)
        out += [json.loads(sink.payload("gate", e)) for e in builder.events(update, tracker.tracks, ts, int(ts * 10))]
    assert [(e["event"], e["seq"]) for e in out] == [("new", 1), ("update", 2), ("end", 3)]
    assert out[0]["label"] == "car" and out[0]["run"] == "run1" and out[0]["camera"] == "gate"
    assert out[2]["duration_s"] == 1.2


def scored(*rows: tuple[float, float, float, float, int, float]) -> Detections:
    a = np.array(rows, np.float32)
    return Detections(a[:, :4], a[:, 5].astype(np.float32), a[:, 4].astype(np.int64))


def test_a_low_score_detection_keeps_an_identity_but_never_starts_one() -> None:
    tracker = Tracker(min_hits=2, max_missed=1)
    for ts in (0.0, 0.1):
        tracker.update(scored((0.1, 0.1, 0.3, 0.5, 0, 0.9)), ts, high_score=0.4)
    # Occluded: the detector is unsure (0.25 < 0.4) for three frames; the track holds on to it.
    for ts in (0.2, 0.3, 0.4):
        update = tracker.update(scored((0.11, 0.1, 0.31, 0.5, 0, 0.25)), ts, high_score=0.4)
        assert update.ended == [] and update.ids.tolist() == [1]
    assert [t.id for t in tracker.tracks] == [1]
    fresh = Tracker(min_hits=1)
    assert fresh.update(scored((0.5, 0.5, 0.6, 0.6, 0, 0.25)), 0.0, high_score=0.4).started == []


WALK = [0.0, 0.1, 0.2, 0.3, 1.3, 2.3, 4.3, 4.8]  # seen at 10/s, then once a second, then 2 s apart


def test_identity_survives_a_low_and_uneven_rate() -> None:
    """A person walking 0.1 of the frame per second (more than its own width between two looks)."""
    tracker = Tracker(min_hits=2, max_missed=3)
    followed = []
    for ts in WALK:
        x = 0.1 + 0.1 * ts
        followed.append(tracker.update(scored((x, 0.3, x + 0.06, 0.6, 0, 0.9)), ts, high_score=0.4).ids[0])
    assert followed == [0, 1, 1, 1, 1, 1, 1, 1] and len(tracker.tracks) == 1


def test_the_old_greedy_tracker_loses_that_walk() -> None:
    """The same walk through the tracker edged had before: the baseline the bench compares with."""
    from edged.bench.greedy_tracker import Tracker as Greedy

    tracker = Greedy(min_hits=2, max_missed=3)
    followed = []
    for ts in WALK:
        x = 0.1 + 0.1 * ts
        followed.append(int(tracker.update(dets((x, 0.3, x + 0.06, 0.6, 0)), ts).ids[0]))
    assert followed[4:] == [0, 0, 0, 0]  # once it jumps past its own width, the object is not followed


def test_objects_outside_the_region_looked_at_are_not_missed() -> None:
    tracker = Tracker(min_hits=1, max_missed=0, lost_s=0.0)
    tracker.update(scored((0.8, 0.8, 0.9, 0.9, 2, 0.9)), 0.0, high_score=0.4)
    update = tracker.update(scored((0.1, 0.1, 0.2, 0.2, 0, 0.9)), 1.0, high_score=0.4, region=(0.0, 0.0, 0.5, 0.5))
    assert update.ended == [] and sorted(t.cls for t in tracker.tracks) == [0, 2]
    gone = tracker.update(scored((0.1, 0.1, 0.2, 0.2, 0, 0.9)), 2.0, high_score=0.4)
    assert [t.cls for t in gone.ended] == [2]


def test_a_moment_behind_a_passing_van_does_not_end_an_object() -> None:
    """10 looks a second; the cyclist is hidden for 0.9 s (9 looks, more than max_missed): the same id after."""
    tracker = Tracker(min_hits=2, max_missed=5, lost_s=2.0)
    cyclist = (0.6, 0.2, 0.8, 0.9, 0, 0.9)
    for i in range(5):
        tracker.update(scored(cyclist), i * 0.1, high_score=0.4)
    for i in range(5, 14):
        assert tracker.update(dets(), i * 0.1).ended == []
    assert tracker.update(scored(cyclist), 1.4, high_score=0.4).ids.tolist() == [1]
    for i in range(15, 40):
        update = tracker.update(dets(), i * 0.1)
        if update.ended:
            assert i * 0.1 - 1.4 > 2.0 and [t.id for t in update.ended] == [1]
            break
    else:
        raise AssertionError("the cyclist never ended")


def test_a_second_box_inside_an_object_starts_no_object_of_its_own() -> None:
    """The detector boxes a car and, inside it, its headlight as another car: one object, not two."""
    tracker = Tracker(min_hits=1)
    car, headlight = (0.1, 0.4, 0.5, 0.9, 2, 0.9), (0.12, 0.6, 0.2, 0.7, 2, 0.6)
    first = tracker.update(scored(car, headlight), 0.0, high_score=0.4)
    assert first.ids.tolist() == [1, 0] and len(tracker.tracks) == 1
    person_in_front = (0.15, 0.5, 0.25, 0.85, 0, 0.8)  # another class inside the box: an object of its own
    assert tracker.update(scored(car, person_in_front), 0.1, high_score=0.4).ids.tolist() == [1, 2]
