"""An engine output with NaN or inf is counted, alerted and never published as "no detections"."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np

from edged.config.models import AlertsConfig
from edged.models.heads.raw import RawYoloDecoder
from edged.models.yolo import Letterbox
from edged.telemetry.alerts import Alerts
from tests.support.stats import snapshot
from tests.unit.test_scheduler import FakeEngine, Feeder, lane, make, run_until


def test_the_decoder_tells_nan_from_nothing_there() -> None:
    box = Letterbox.fit(64, 64, 32, 32)
    v5 = RawYoloDecoder("yolov5", 2, 10)
    output = np.zeros((10, 7), np.float32)
    assert v5.decode(output, box, 0.25).finite  # nothing there: finite and empty
    output[3, 4] = np.nan
    nan = v5.decode(output, box, 0.25)
    assert not nan.finite and len(nan) == 0
    output[3, 4], output[3, :4] = 0.9, [5, 5, np.inf, 4]
    output[3, 5] = 1.0
    assert not v5.decode(output, box, 0.25).finite  # a candidate's box is not a number either
    v8 = RawYoloDecoder("yolov8", 2, 10)
    output8 = np.zeros((6, 10), np.float32)
    output8[4, 2] = np.inf
    assert not v8.decode(output8, box, 0.25).finite


def test_frames_with_nan_are_counted_and_not_published() -> None:
    engine = FakeEngine()
    engine._output[:] = np.nan
    lanes = [lane("a")]
    scheduler, results = make(engine, lanes)
    with Feeder(lanes, hz=100):
        asyncio.run(run_until(scheduler, lambda: scheduler.counters.non_finite >= 3))
    assert scheduler.counters.non_finite >= 3 and results == []
    assert lanes[0].processed >= 3  # the frames went through the engine; their output was not usable
    stats = scheduler.stats(0.0, {})
    assert stats.non_finite == scheduler.counters.non_finite and stats.as_dict()["non_finite"] == stats.non_finite


def test_engine_nan_fires_while_the_count_grows_and_resolves_when_it_stops() -> None:
    alerts = Alerts(AlertsConfig(), "d")
    base = snapshot()

    def at(count: int) -> object:
        return replace(base, pipeline=replace(base.pipeline, engine=replace(base.pipeline.engine, non_finite=count)))

    assert alerts.evaluate({}, at(0), 0.0) == []  # type: ignore[arg-type]
    (fired,) = alerts.evaluate({}, at(5), 1.0)  # type: ignore[arg-type]
    assert (fired["alert"], fired["state"], fired["value"]) == ("engine_nan", "firing", 5)
    assert alerts.evaluate({}, at(9), 2.0) == []  # type: ignore[arg-type]
    (resolved,) = alerts.evaluate({}, at(9), 3.0)  # type: ignore[arg-type]
    assert (resolved["alert"], resolved["state"]) == ("engine_nan", "resolved")


def test_borders_are_painted_once_per_buffer_and_stay() -> None:
    engine = FakeEngine(slots=2, delay=0.002)
    lanes = [lane("a")]
    for buf in engine._buffers:
        buf[:] = 7  # anything but the padding
    scheduler, results = make(engine, lanes)
    with Feeder(lanes, hz=200):
        asyncio.run(run_until(scheduler, lambda: len(results) >= 6))
    box = Letterbox.fit(40, 24, 32, 32)  # the feeder's frames in the fake engine's input
    for buf in engine._buffers:
        image = buf[0]
        assert (image[:box.dy] == 114).all() and (image[box.dy + box.new_h:] == 114).all()
        inner = image[box.dy:box.dy + box.new_h]
        assert (inner != 250).all()  # every pixel written by the last letterbox
