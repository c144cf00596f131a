"""Zones, lines, object masks, retained counts and line totals across a restart (with a recording outlet)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edged.analytics.tallies import Tallies
from edged.analytics.zones import drop_masked
from edged.config.models import CameraConfig, Config, DetectConfig, EventsConfig, LineConfig, OpenVinoConfig, ZoneConfig
from edged.models.yolo import Detections
from edged.pipeline.cameras import make_camera
from edged.pipeline.decoding import Result
from edged.pipeline.lanes import CameraLane
from edged.pipeline.results import ResultStage
from edged.pipeline.sinks import standard_sinks
from edged.sources.slot import FrameInfo, FrameSlot

LABELS = ["person", "bicycle", "car"]
LEFT = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]


class Recorder:
    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self.events: list[dict[str, Any]] = []
        self.detections: list[dict[str, Any]] = []

    def publish_detections(self, camera: str, payload: bytes) -> None:
        self.detections.append(json.loads(payload))

    def publish_event(self, camera: str, payload: bytes) -> None:
        self.events.append(json.loads(payload))

    def set_retained(self, levels: Sequence[str], payload: bytes) -> None:
        self.retained["/".join(levels)] = payload


def camera(**areas: object) -> CameraConfig:
    return CameraConfig(url="x.mp4", detect={"labels": ["person", "car"]}, **areas)


def stage(tmp_path: Path, outlet: Recorder, config: CameraConfig) -> ResultStage:
    """The daemon's result stage and sinks, and one camera's runtime object, as the pipeline makes them."""
    tallies = Tallies(tmp_path / "tallies.json")
    tallies.load()
    root = Config(device_id="d", engine=OpenVinoConfig(backend="openvino", model="m"), cameras={"cam": config},
                  events=EventsConfig(min_hits=1, max_missed=0, update_s=0))
    cpu: dict[str, float] = {}
    sinks, _ = standard_sinks(outlet, "d", "r", LABELS, lambda _name: None, None, cpu)
    results = ResultStage(started_mono=0.0, sinks=sinks, cpu=cpu)
    results.add_camera(make_camera(root, "cam", LABELS, tallies, lambda *_: None, lambda: None, lambda *_: None))
    return results


def feed(results: ResultStage, seq: int, *boxes: tuple[float, float, float, float, int, float]) -> None:
    lane = CameraLane("cam", FrameSlot("cam"), 10.0, DetectConfig(min_score=0.4), None)
    a = np.array(boxes, np.float32).reshape(-1, 6)
    dets = Detections(a[:, :4], a[:, 5], a[:, 4].astype(np.int64))
    results(Result(lane, FrameInfo(seq, seq * 0.1, seq * 0.1, 640, 480), dets, {}, seq))


def test_counts_enter_leave_and_crossings(tmp_path: Path) -> None:
    out = Recorder()
    config = camera(zones={"left": ZoneConfig(polygon=LEFT, loiter_s=0.25)},
                    lines={"mid": LineConfig(points=[(0.5, 0.0), (0.5, 1.0)])})
    results = stage(tmp_path, out, config)
    assert out.retained == {"cam/all/person": b"0", "cam/all/car": b"0", "cam/left/person": b"0",
                            "cam/left/car": b"0", "cam/mid/car/in": b"0", "cam/mid/car/out": b"0",
                            "cam/mid/person/in": b"0", "cam/mid/person/out": b"0"}
    for seq, x in enumerate([0.1, 0.15, 0.2, 0.25, 0.3, 0.45, 0.55], start=1):  # a person walks right
        feed(results, seq, (x, 0.4, x + 0.1, 0.9, 0, 0.9))
    kinds = [(e["event"], e.get("zone") or e.get("line")) for e in out.events]
    # The footpoint (x + 0.05) reaches the line (a point on it is on its left) at x = 0.45, still on the
    # zone's edge, and leaves the zone at x = 0.55, where it is 0.1 past the line: more than the line's
    # hysteresis (0.02), so the crossing counts there. Looking along a line drawn downwards, the picture's left is
    # the line's right: walking right crosses it from its right to its left, "out".
    assert kinds == [("new", None), ("enter", "left"), ("loitering", "left"), ("leave", "left"), ("cross", "mid")]
    assert out.events[4]["direction"] == "out" and out.events[1]["zones"] == ["left"]
    assert out.events[3]["dwell_s"] == pytest.approx(0.5) and "speed_kmh" not in out.events[3]  # 0.1 s to 0.6 s
    assert json.loads(out.retained["cam/left/person/dwell"]) == {"last_s": 0.5, "median_s": 0.5, "p95_s": 0.5,
                                                                 "stays": 1}
    assert out.retained["cam/mid/person/out"] == b"1" and out.retained["cam/left/person"] == b"0"
    assert out.retained["cam/all/person"] == b"1"
    assert out.detections[-1]["gate"] == "off" and out.detections[-1]["detections"][0]["track"] == 1


def test_low_score_detections_are_tracked_not_published(tmp_path: Path) -> None:
    out = Recorder()
    results = stage(tmp_path, out, camera())
    feed(results, 1, (0.1, 0.1, 0.2, 0.3, 0, 0.9), (0.6, 0.6, 0.7, 0.7, 2, 0.3))
    assert [d["score"] for d in out.detections[-1]["detections"]] == [0.9]


def test_counts_and_totals_are_right_after_a_restart(tmp_path: Path) -> None:
    out = Recorder()
    config = camera(zones={"left": ZoneConfig(polygon=LEFT), "gone": ZoneConfig(polygon=LEFT)},
                    lines={"mid": LineConfig(points=[(0.5, 0.0), (0.5, 1.0)], labels=["person"])})
    results = stage(tmp_path, out, config)
    feed(results, 1, (0.1, 0.4, 0.2, 0.9, 2, 0.9), (0.3, 0.4, 0.4, 0.9, 0, 0.9))
    feed(results, 2, (0.1, 0.4, 0.2, 0.9, 2, 0.9), (0.6, 0.4, 0.7, 0.9, 0, 0.9))
    assert out.retained["cam/left/car"] == b"1" and out.retained["cam/mid/person/out"] == b"1"
    # edged dies (no clean stop); it comes back with the zone "gone" removed from the config.
    after = Recorder()
    stage(tmp_path, after, camera(zones={"left": ZoneConfig(polygon=LEFT)}, lines=config.lines))
    assert after.retained["cam/left/car"] == b"0"  # nothing seen yet in this run: not the stale 1
    assert after.retained["cam/gone/car"] == b"" and after.retained["cam/gone/person"] == b""  # cleared
    assert after.retained["cam/mid/person/out"] == b"1"  # the total runs on


def test_object_masks_drop_detections_standing_in_them() -> None:
    dets = Detections(np.array([[0.1, 0.1, 0.2, 0.4], [0.7, 0.1, 0.8, 0.4]], np.float32),
                      np.array([0.9, 0.9], np.float32), np.array([0, 0]))
    from edged.analytics.zones import Polygon

    kept = drop_masked(dets, [Polygon(LEFT)])
    assert kept.boxes[0].tolist() == pytest.approx([0.7, 0.1, 0.8, 0.4]) and len(kept) == 1


def test_a_damaged_tallies_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "tallies.json"
    path.write_text("{not json")
    tallies = Tallies(path)
    tallies.load()
    assert tallies.line_totals("cam") == {} and len(list(tmp_path.glob("tallies.json.damaged-*"))) == 1


@pytest.mark.parametrize("text", [
    '{"lines":{"street":{"mid":{"person":{"in":1e999}}}}}',  # inf: OverflowError in int()
    "[" * 100_000 + "]" * 100_000,  # RecursionError in the parser
    '{"lines":{"street":{"mid":{"person":{"in":-3}}}}}',  # negative
    '{"lines":{"street":{"mid":{"person":{"in":2.5, "sideways": 1}}}}}',
    '{"lines":[1,2]}', '[1,2,3]', '"text"', "null",
    '{"count_topics":{"street":["all/per+son", "a/b/c", 7]}}',  # '+' would block the spool at start
    '{"lines":{"str/eet":{"mid":{"person":{"in":1}}}}}',
])
def test_what_edged_did_not_write_never_stops_the_start(tmp_path: Path, text: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tallies.json"
    path.write_text(text)
    tallies = Tallies(path)
    tallies.load()  # no exception: a systemd restart loop is what this prevents
    assert tallies.line_totals("street") == {} and tallies.count_topics("street") == set()
    assert len(list(tmp_path.glob("tallies.json.damaged-*"))) == 1
    assert caplog.text.count("holds what edged did not write") == 1


def test_the_good_entries_are_kept_and_the_file_moved_aside_even_over_a_damaged_directory(tmp_path: Path) -> None:
    path = tmp_path / "tallies.json"
    (tmp_path / "tallies.damaged").mkdir()  # in the way of the old fixed name
    (tmp_path / "tallies.damaged" / "x").write_text("x")
    path.write_text('{"lines":{"street":{"mid":{"person":{"in":4,"out":-1}}}},'
                    '"count_topics":{"street":["all/person","all/per#son"]}}')
    tallies = Tallies(path)
    tallies.load()
    assert tallies.line_totals("street") == {"mid": {"person": {"in": 4}}}
    assert tallies.count_topics("street") == {"all/person"}
    assert json.loads(path.read_text())["lines"] == {"street": {"mid": {"person": {"in": 4}}}}  # saved clean
    again = Tallies(path)
    again.load()
    assert again.line_totals("street") == {"mid": {"person": {"in": 4}}}
    assert len(list(tmp_path.glob("tallies.json.damaged-*"))) == 1
