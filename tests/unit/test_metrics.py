"""/metrics follows Prometheus' conventions (checked by promtool itself), with every family present: latencies are
histograms in seconds, power in watts, counters end in _total."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import pytest
from prometheus_client import generate_latest

from edged.pipeline.stats import Percentiles, Window
from edged.service.metrics import make_registry
from tests.support.stats import camera, snapshot

SYSTEM = {"temp_c": 50.0, "temp_zone": "cpu", "zones": {"cpu": 50.0}, "cpu_pct": {"all": 10.0},
          "memory": {"used_pct": 40.0, "available_mb": 100, "process_rss_mb": 50}, "gpu_pct": 3.0,
          "throttle": {"now": [], "since_boot": ["throttled"]},
          "tegrastats": {"rails": {"VDD_IN": {"current_mw": 5125}}, "power_in_mw": 5125}}


def exposition() -> str:
    window = Window(size=2)
    for ms in (3.0, 40.0, 700.0, 20000.0):  # more values than the window holds: the histogram keeps them all
        window.add(ms)
    window.clear()  # a camera switched off and on forgets its window, never its counts
    times = Percentiles.of(window)
    snap = snapshot(replace(camera("gate"), age_ms=times))
    engine = replace(snap.pipeline.engine, infer_ms=times, pre_ms=times, post_ms=times,
                     settings={"chain": ["openvino:GPU", "openvino:CPU"], "in_use": "openvino:CPU"})
    snap = replace(snap, pipeline=replace(snap.pipeline, engine=engine))
    return generate_latest(make_registry(lambda: (SYSTEM, snap, 0))).decode()


def test_histograms_in_seconds() -> None:
    text = exposition()
    assert '# TYPE edged_camera_frame_age_seconds histogram' in text
    assert 'edged_camera_frame_age_seconds_bucket{camera="gate",le="0.005"} 1.0' in text
    assert 'edged_camera_frame_age_seconds_bucket{camera="gate",le="0.05"} 2.0' in text
    assert 'edged_camera_frame_age_seconds_bucket{camera="gate",le="10"} 3.0' in text
    assert 'edged_camera_frame_age_seconds_bucket{camera="gate",le="+Inf"} 4.0' in text
    assert 'edged_camera_frame_age_seconds_count{camera="gate"} 4.0' in text
    assert 'edged_camera_frame_age_seconds_sum{camera="gate"} 20.743' in text
    assert "edged_engine_infer_seconds_count 4.0" in text
    assert 'edged_power_watts{rail="VDD_IN"} 5.125' in text
    assert 'edged_device_power_watts{source="Jetson board input (VDD_IN, tegrastats)"} 5.125' in text
    assert "quantile" not in text and "_ms" not in text


def test_promtool_finds_nothing() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    checked = subprocess.run([promtool, "check", "metrics"], input=exposition(), capture_output=True, text=True,
                             timeout=30, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
