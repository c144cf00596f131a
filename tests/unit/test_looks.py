"""Second looks without models: the agreement rule, colour names, crops, which objects are due, the looks thread's
trays, and what the analytics publish while the verifier holds an object back."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edged.analytics.camera import CameraAnalytics
from edged.analytics.looked import CONFIRMED, PENDING, REJECTED, Look
from edged.analytics.tallies import Tallies
from edged.config.models import CameraConfig, EventsConfig
from edged.errors import ConfigError
from edged.looks.colours import name_colours
from edged.looks.crops import rect
from edged.looks.plan import CameraLooks
from edged.looks.station import Answer, Ask, LooksThread, Station, Tray
from edged.looks.votes import ColourVotes, Votes
from edged.models.yolo import Detections
from edged.pipeline.sinks import EventsSink
from edged.sources.demand import Demand
from tests.unit.test_zones import Recorder

LABELS = ("person", "bicycle", "car")


def one(box: tuple[float, float, float, float], cls: int = 0, score: float = 0.8) -> Detections:
    return Detections(np.array([box], np.float32), np.array([score], np.float32), np.array([cls], np.int64))


def test_a_sub_label_needs_enough_agreeing_attempts_each_above_the_score() -> None:
    look = Look()
    votes = Votes(attempts=3, agree=0.6, min_score=0.5)
    votes.add("van", 0.9, look)
    votes.add("van", 0.3, look)  # under min_score: not counted
    votes.add("truck", 0.7, look)
    assert look.sub_label is None and not look.changed and votes.tried == 3
    votes.add("van", 0.8, look)  # van, truck, van: 2 of 3 agree (0.67 >= 0.6)
    assert look.sub_label == "van" and look.score == pytest.approx(0.85) and look.attempts == 3 and look.changed
    look.changed = False
    votes.add("truck", 0.9, look)  # 2 of 4: no longer agreed; shown as disputed, not hidden
    assert look.sub_label is None and look.disputed == ("van", "truck") and look.changed
    fields = look.fields()
    assert fields["sub_label"] == {"label": None, "disputed": ["van", "truck"], "attempts": 4, "agree": 0.5}


def test_colours_are_the_names_most_attempts_saw() -> None:
    look = Look()
    votes = ColourVotes(attempts=3)
    for names in (("red", "black"), ("red",), ("red", "grey")):
        votes.add(names, look)
    assert look.colors == ("red",) and look.changed
    assert look.fields()["attributes"] == {"colors": ["red"]}


@pytest.mark.parametrize(("bgr", "name"), [((0, 0, 200), "red"), ((200, 0, 0), "blue"), ((0, 200, 0), "green"),
                                           ((0, 220, 240), "yellow"), ((20, 20, 20), "black"),
                                           ((235, 235, 235), "white"), ((128, 128, 128), "grey"),
                                           ((30, 60, 110), "brown")])
def test_colour_names(bgr: tuple[int, int, int], name: str) -> None:
    assert name_colours(np.full((24, 16, 3), bgr, np.uint8)) == (name,)


def test_a_two_coloured_part_has_both_names_most_first() -> None:
    part = np.full((24, 16, 3), (200, 0, 0), np.uint8)
    part[:9] = (0, 0, 200)
    assert name_colours(part) == ("blue", "red")


def test_crops_are_enlarged_squared_and_clipped() -> None:
    box = np.array([0.1, 0.2, 0.2, 0.6], np.float32)  # 64x160 in a 640x400 picture
    assert rect(box, 640, 400) == (64, 80, 64, 160)
    assert rect(box, 640, 400, square=True) == (16, 80, 160, 160)
    assert rect(box, 640, 400, 2.0) == (32, 0, 128, 320)  # clipped at the top
    assert rect(box, 640, 400, part=(0.3, 0.7, 0.2, 0.5)) == (83, 112, 26, 48)
    assert rect(np.array([0.5, 0.5, 0.501, 0.501], np.float32), 640, 400) is None


def analytics(**settings: object) -> CameraAnalytics:
    config = CameraConfig(url="x.mp4", **settings)
    cam = CameraAnalytics("gate", config, EventsConfig(min_hits=2), True, list(LABELS), LABELS, Tallies(None),
                          Demand())
    cam.start()
    return cam


def kinds(outcome_events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.kind for e in outcome_events]


def test_a_verified_label_waits_for_the_verdict_and_a_rejected_object_is_never_published() -> None:
    cam = analytics(verify={"person": {"timeout_s": 5}})
    box = (0.1, 0.1, 0.2, 0.4)
    cam.step(1, 0.0, one(box), 0.4, None, 0.0)
    held = cam.step(2, 0.1, one(box), 0.4, None, 0.1)
    track = cam.tracker.tracks[0]
    assert track.confirmed and track.look is not None and track.look.verdict == PENDING
    assert held.events == [] and held.track_ids == [0] and cam.counts["all"]["person"] == 0
    track.look.verdict, track.look.released = CONFIRMED, True  # what the looks apply when the verdict comes
    out = cam.step(3, 0.2, one(box), 0.4, None, 0.2)
    assert kinds(out.events) == ["new"] and out.track_ids == [track.id] and cam.counts["all"]["person"] == 1
    sink = EventsSink(Recorder(), "dev", "run", LABELS, {"serialise": 0.0, "publish": 0.0})
    assert json.loads(sink.payload("gate", out.events[0]))["verified"] is True

    other = analytics(verify={"person": {}})
    other.step(1, 0.0, one(box), 0.4, None, 0.0)
    other.step(2, 0.1, one(box), 0.4, None, 0.1)
    rejected = other.tracker.tracks[0]
    assert rejected.look is not None
    rejected.look.verdict = REJECTED
    shown = other.step(3, 0.2, one(box), 0.4, None, 0.2)
    assert shown.events == [] and len(shown.detections) == 0  # its detections are not published either
    for seq in range(4, 40):
        gone = other.step(seq, seq / 10, one((0.6, 0.6, 0.7, 0.7), cls=2, score=0.3), 0.4, None, seq / 10)
        assert all(e.track is not rejected for e in gone.events)  # its end is no event
    assert other.tracker.tracks == []


def test_no_verdict_in_time_publishes_the_object_unverified() -> None:
    cam = analytics(verify={"person": {"timeout_s": 0.5}})
    box = (0.1, 0.1, 0.2, 0.4)
    cam.step(1, 0.0, one(box), 0.4, None, 0.0)
    assert cam.step(2, 0.1, one(box), 0.4, None, 0.1).events == []
    out = cam.step(3, 0.7, one(box), 0.4, None, 0.7)
    assert kinds(out.events) == ["new"]
    assert cam.tracker.tracks[0].look.fields() == {"verified": False}  # type: ignore[union-attr]


def test_a_changed_sub_label_is_an_update_event_at_once() -> None:
    cam = analytics(classify=[], colors={"labels": ["person"]})
    box = (0.1, 0.1, 0.2, 0.4)
    cam.step(1, 0.0, one(box), 0.4, None, 0.0)
    assert kinds(cam.step(2, 0.1, one(box), 0.4, None, 0.1).events) == ["new"]
    track = cam.tracker.tracks[0]
    track.look = Look(colors=("red",), changed=True)
    assert kinds(cam.step(3, 0.2, one(box), 0.4, None, 0.2).events) == ["update"]
    assert cam.step(4, 0.3, one(box), 0.4, None, 0.3).events == []  # once per change


def test_due_looks_respect_every_s_min_size_and_max_attempts() -> None:
    config = CameraConfig(url="x.mp4", classify=[{"classifier": "c", "labels": ["car"], "every_s": 1.0,
                                                  "min_size": 40, "attempts": 1, "max_attempts": 2}],
                          colors={"labels": ["car"], "every_s": 0.5, "min_size": 10})
    plan = CameraLooks("gate", config, LABELS)
    cam = analytics()
    box = (0.1, 0.1, 0.2, 0.3)  # 64x80 pixels of a 640x400 frame
    cam.step(1, 0.0, one(box, cls=2), 0.4, None, 0.0)
    cam.step(2, 0.1, one(box, cls=2), 0.4, None, 0.1)
    tracks = cam.tracker.tracks
    assert [d.kind for d in plan.due(tracks, 0.1, 640, 400, now=10.0)] == ["classify", "colors"]
    assert plan.due(tracks, 0.1, 640, 400, now=10.4) == []
    assert [d.kind for d in plan.due(tracks, 0.1, 640, 400, now=10.6)] == ["colors"]
    assert [d.kind for d in plan.due(tracks, 0.1, 640, 400, now=11.1)] == ["classify", "colors"]
    plan.followed[tracks[0].id].votes.tried = 2  # type: ignore[union-attr]
    assert [d.kind for d in plan.due(tracks, 0.1, 640, 400, now=12.2)] == ["colors"]  # max_attempts reached
    assert plan.due(tracks, 0.0, 640, 400, now=20.0) == []  # not seen on this frame: no crop of it
    assert [d.kind for d in plan.due(tracks, 0.1, 128, 80, now=30.0)] == ["colors"]  # 12x16 pixels: too small


def test_trays_are_handed_over_only_to_an_idle_station_and_answers_come_back() -> None:
    release = threading.Event()
    seen: list[int] = []

    def run(tray: Tray) -> list[Answer]:
        release.wait(5)
        seen.append(len(tray.asks))
        return [Answer(ask, "x", 1.0) for ask in tray.asks]

    station = Station("s", run, Tray(np.zeros((2, 4, 4, 3), np.uint8)), Tray(np.zeros((2, 4, 4, 3), np.uint8)))
    thread = LooksThread([station])
    thread.start()
    try:
        track = analytics().tracker  # any object stands in for a track here
        for _ in range(2):
            assert station.open.next_image() is not None
            station.open.asks.append(Ask("gate", track, "classify"))  # type: ignore[arg-type]
        assert station.open.next_image() is None  # full
        assert thread.hand_over()
        station.open.asks.append(Ask("gate", track, "classify"))  # type: ignore[arg-type]
        assert not thread.hand_over()  # busy: it waits in the open tray
        release.set()
        deadline = time.monotonic() + 5
        while station.working is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert thread.hand_over()
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [2, 1] and len(thread.answers()) == 3 and thread.answers() == []
    finally:
        thread.stop()


def test_config_errors_name_the_camera_and_the_classifier(tmp_path: Path) -> None:
    from edged.config.loader import load_config

    def problems(text: str) -> str:
        path = tmp_path / "edged.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_config(path, {})
        return "\n".join(caught.value.lines())

    head = "engine: {model: yolov3-tiny}\n"
    assert "cameras.a.classify[0]: classifier 'kind' is not under 'classifiers:'" in problems(
        head + "cameras:\n  a: {url: x.mp4, classify: [{classifier: kind}]}\n")
    assert "label 'car' is classified twice" in problems(
        head + "classifiers:\n  k: {model: /m/k.onnx, labels: [a, b]}\ncameras:\n  a: {url: x.mp4, classify: "
               "[{classifier: k, labels: [car]}, {classifier: k, labels: [car, bus]}]}\n")
    assert "an .onnx, an OpenVINO .xml or a TensorRT .engine" in problems(
        head + "classifiers:\n  k: {model: /m/k.pt, labels: [a]}\ncameras:\n  a: {url: x.mp4}\n")
    assert "backend tensorrt runs a serialized TensorRT .engine" in problems(
        head + "classifiers:\n  k: {model: /m/k.onnx, labels: [a], backend: tensorrt}\n"
               "cameras:\n  a: {url: x.mp4}\n")
    assert "backend tensorrt runs a serialized TensorRT .engine" in problems(
        head + "classifiers:\n  k: {model: /m/k.engine, labels: [a]}\ncameras:\n  a: {url: x.mp4}\n")
    assert "'max_attempts' (2) must be at least 'attempts' (3)" in problems(
        head + "classifiers:\n  k: {model: /m/k.onnx, labels: [a]}\ncameras:\n  a: {url: x.mp4, classify: "
               "[{classifier: k, max_attempts: 2}]}\n")


def test_a_tensorrt_classifier_where_tensorrt_is_missing_is_one_line(tmp_path: Path) -> None:
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here: the Jetson test runs the real one")
    except ImportError:
        pass
    from edged.config.looks import ClassifierConfig
    from edged.errors import EngineUnavailable
    from edged.looks.classifier import Classifier

    engine = tmp_path / "k.engine"
    engine.write_bytes(b"not built here")
    classifier = Classifier("kind", ClassifierConfig(model=engine, labels=["a"], backend="tensorrt"), tmp_path)
    with pytest.raises(EngineUnavailable, match=r"^classifiers\.kind\.model: .*k\.engine: backend tensorrt needs "
                                                r"TensorRT and pycuda"):
        classifier.start()


def test_a_changed_look_is_retained_for_the_latest_object_and_cleared_when_the_camera_goes() -> None:
    cam = analytics(colors={"labels": ["person"]})
    box = (0.1, 0.1, 0.2, 0.4)
    cam.step(1, 0.0, one(box), 0.4, None, 0.0)
    cam.step(2, 0.1, one(box), 0.4, None, 0.1)
    track = cam.tracker.tracks[0]
    track.look = Look(colors=("red", "black"), changed=True)
    out = cam.step(3, 0.2, one(box), 0.4, None, 0.2)
    [look] = [r for r in out.retained if r.levels[-1] == "look"]
    assert look.levels == ("gate", "person", "look")
    assert look.value == {"track": track.id, "ts": 0.2, "attributes": {"colors": ["red", "black"]}}
    assert cam.counted().looked == frozenset({"person"})
    gone = cam.stop(1.0, forget=True)
    assert any(r.levels == ("gate", "person", "look") and r.value is None for r in gone.retained)
