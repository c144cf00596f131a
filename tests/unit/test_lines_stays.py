"""Counting lines with hysteresis, and a zone's stays: time in the zone and speed along a reference, published as
events and retained figures; the config refuses what cannot work (one line each)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from edged.analytics.lines import Line, LineSide
from edged.config.models import LineConfig, ZoneConfig
from tests.unit.test_zones import Recorder, camera, feed, stage

VERTICAL = Line(np.array([0.5, 0.0]), np.array([0.5, 1.0]), frozenset(), hysteresis=0.02, hysteresis_s=0.5)


def walk(line: Line, xs: Sequence[float | None], dt: float = 0.1, y: float = 0.5) -> list[tuple[int, str]]:
    """The crossings of a footpoint at ``xs`` (None: not seen), one look every ``dt``: (look, direction)."""
    state, before, out = LineSide(), None, []
    for index, x in enumerate(xs):
        if x is None:
            continue
        point = np.array([x, y])
        crossed = line.step(state, before, point, index * dt)
        if crossed:
            out.append((index, crossed))
        before = point
    return out


def test_a_walk_across_counts_once_past_the_hysteresis() -> None:
    assert walk(VERTICAL, [0.40, 0.45, 0.49, 0.505, 0.51, 0.53, 0.6]) == [(5, "out")]  # 0.03 past: counted
    assert walk(VERTICAL, [0.6, 0.55, 0.51, 0.495, 0.49, 0.485, 0.4]) == [(6, "in")]  # 0.015 past at 0.2 s: not yet


def test_jitter_along_the_line_and_a_step_over_and_back_count_nothing() -> None:
    jitter = [0.4] + [0.505, 0.495] * 20  # 4 s on the line, never 0.02 past it nor 0.5 s on one side
    assert walk(VERTICAL, jitter) == []
    assert walk(VERTICAL, [0.4, 0.45, 0.51, 0.515, 0.49, 0.4]) == []  # over by 0.015 for 0.2 s, then back


def test_staying_just_past_the_line_counts_after_hysteresis_s() -> None:
    assert walk(VERTICAL, [0.4, 0.45] + [0.51] * 8) == [(7, "out")]  # 0.01 past, from 0.2 s; counted at 0.7 s


def test_a_track_that_resumes_after_a_gap_on_the_other_side_counts_once() -> None:
    assert walk(VERTICAL, [0.3, 0.35, 0.4, None, None, None, None, 0.6, 0.65, 0.7]) == [(7, "out")]


def test_passing_beside_the_segment_is_no_crossing() -> None:
    short = Line(np.array([0.5, 0.0]), np.array([0.5, 0.3]), frozenset(), hysteresis=0.02, hysteresis_s=0.5)
    assert walk(short, [0.3, 0.4, 0.6, 0.7], y=0.6) == []  # below the segment's end
    assert walk(short, [0.3, 0.4, 0.6, 0.7], y=0.2) == [(2, "out")]


def test_a_zone_with_a_speed_reference_gives_speed_and_dwell_on_leave(tmp_path: Path) -> None:
    out = Recorder()
    road = ZoneConfig(polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)],
                      speed={"points": [(0.1, 0.9), (0.9, 0.9)], "metres": 40.0}, stays=3)  # 0.8 of the frame: 40 m
    results = stage(tmp_path, out, camera(zones={"road": road}))
    # A car's footpoint moves 0.02 of the frame (1 m) every 0.1 s: 10 m/s, 36 km/h; then it is gone.
    for seq in range(1, 20):
        x = 0.05 + 0.02 * seq
        feed(results, seq, (x, 0.5, x + 0.1, 0.9, 2, 0.9))
    for seq in range(20, 45):  # gone: the track ends once lost_s (2 s) has passed
        feed(results, seq)
    leave = [e for e in out.events if e["event"] == "leave"]
    assert len(leave) == 1 and leave[0]["speed_kmh"] == pytest.approx(36.0, abs=0.1)
    assert leave[0]["dwell_s"] == pytest.approx(1.8)  # entered at 0.1 s, last seen inside at 1.9 s
    assert json.loads(out.retained["cam/road/car/speed"]) == {"last_kmh": 36.0, "median_kmh": 36.0, "stays": 1}
    assert json.loads(out.retained["cam/road/car/dwell"])["p95_s"] == pytest.approx(1.8)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: ZoneConfig(polygon=[(0, 0), (1, 0), (1, 1)], speed={"points": [(0, 0), (1, 1)], "metres": 0}),
     "greater than 0"),
    (lambda: ZoneConfig(polygon=[(0, 0), (1, 0), (1, 1)], speed={"points": [(0.2, 0.2), (0.2, 0.2)], "metres": 5}),
     "the line's two points are the same"),
    (lambda: LineConfig(points=[(0.5, 0.4), (0.5, 0.45)], hysteresis=0.1), "as long as the line itself"),
])
def test_impossible_zone_and_line_settings_are_refused(make: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make()  # type: ignore[operator]
