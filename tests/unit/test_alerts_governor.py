"""Alerts with hysteresis, and the governor driven by a temperature that rises and falls."""

from __future__ import annotations

from typing import Any

from edged.config.models import AlertsConfig, GovernorConfig
from edged.sources.state import CameraState
from edged.telemetry.alerts import Alerts
from edged.telemetry.governor import CameraRate, Governor
from tests.support.stats import camera, snapshot


def test_threshold_alert_fires_once_and_resolves_below_the_hysteresis_band() -> None:
    alerts = Alerts(AlertsConfig(infer_ms_p95=100, hysteresis=0.1), "dev")
    seen = []
    for t, value in enumerate([80, 120, 130, 95, 91, 89, 120]):
        seen += [(t, a["state"]) for a in alerts.evaluate({}, snapshot(infer_p95=value), float(t))]
    assert seen == [(1, "firing"), (5, "resolved"), (6, "firing")]  # 95 and 91 are inside the band


def test_alert_payload() -> None:
    alerts = Alerts(AlertsConfig(temp_c=80), "gate")
    [alert] = alerts.evaluate({"temp_c": 83.5, "temp_zone": "cpu-thermal"}, snapshot(), 1.0)
    assert alert["v"] == 1 and alert["device"] == "gate" and alert["alert"] == "temperature"
    assert alert["state"] == "firing" and alert["value"] == 83.5 and alert["threshold"] == 80
    assert alert["message"] == "cpu-thermal temperature 83.5 C (threshold 80 C)"
    assert alerts.firing == ["temperature"]


def test_throttle_bits_and_memory() -> None:
    alerts = Alerts(AlertsConfig(), "dev")
    throttled = {"throttle": {"raw": "0x50005", "now": ["under_voltage", "throttled"], "since_boot": []},
                 "memory": {"used_pct": 95.0}}
    states = {(a["alert"], a["state"]) for a in alerts.evaluate(throttled, snapshot(), 0.0)}
    assert states == {("throttling", "firing"), ("memory", "firing")}
    fine = {"throttle": {"raw": "0x50000", "now": [], "since_boot": ["under_voltage"]}, "memory": {"used_pct": 50.0}}
    states = {(a["alert"], a["state"]) for a in alerts.evaluate(fine, snapshot(), 1.0)}
    assert states == {("throttling", "resolved"), ("memory", "resolved")}


def test_camera_down_after_its_grace_period_and_frame_age() -> None:
    alerts = Alerts(AlertsConfig(camera_down_s=30, frame_age_ms_p95=500), "dev")
    down = snapshot(camera("gate", age_p95=900, state=CameraState.RECONNECTING, reason="no frame for 5.0 s"))
    first = alerts.evaluate({}, down, 0.0)
    assert [(a["alert"], a.get("camera")) for a in first] == [("frame_age_p95", "gate")]
    assert alerts.evaluate({}, down, 29.0) == []
    [late] = alerts.evaluate({}, down, 31.0)
    assert late["alert"] == "camera_down" and late["message"] == "camera reconnecting: no frame for 5.0 s"
    back = snapshot(camera("gate", age_p95=100))
    assert {a["alert"] for a in alerts.evaluate({}, back, 40.0)} == {"camera_down", "frame_age_p95"}


def make_governor(**kw: Any) -> Governor:
    cameras = [CameraRate("lobby", 10, 10.0), CameraRate("gate", 90, 10.0), CameraRate("yard", 50, None)]
    return Governor(GovernorConfig(step_s=10, margin_c=5, resume_c=10, min_fps=1, **kw), 80.0, cameras)


def test_governor_backs_off_lowest_priority_first_and_restores_with_hysteresis() -> None:
    gov = make_governor()
    temps = [60, 74, 76, 77, 78, 79, 80, 79, 76, 72, 71, 69, 65, 60, 60, 60, 60, 60]
    history = []
    for i, temp in enumerate(temps):
        decision = gov.step(i * 10.0, temp, [], 40.0, {"yard": 8.0, "lobby": 10.0, "gate": 10.0})
        if decision:
            history.append((temp, decision.level, decision.rates, decision.previous))
    slowing = [(temp, level) for temp, level, _, previous in history if level > previous]
    restoring = [(temp, level) for temp, level, _, previous in history if level < previous]
    assert [level for _, level in slowing] == list(range(1, len(slowing) + 1))  # one step per tick
    assert all(temp >= 75 for temp, _ in slowing)  # only within 5 C of the 80 C limit
    assert all(temp <= 70 for temp, _ in restoring)  # never restores between 70 and 75 C
    assert [level for _, level in restoring] == list(range(len(slowing) - 1, -1, -1))
    first = history[0][2]
    assert first == {"lobby": 5.0, "yard": None, "gate": None}  # lowest priority first
    assert history[1][2]["yard"] == 4.0  # unthrottled camera: half of what it measured
    fourth = history[3][2]
    assert fourth["lobby"] == 2.5 and fourth["gate"] == 5.0  # second round: quarters
    assert gov.level == 0 and gov.rates() == {"lobby": None, "yard": None, "gate": None}


def test_governor_steps_are_spaced_and_floored() -> None:
    gov = make_governor()
    assert gov.step(0.0, 79.0, [], None) is not None
    assert gov.step(5.0, 79.0, [], None) is None  # within step_s
    for i in range(1, 20):
        gov.step(i * 10.0, 95.0, [], None)
    assert gov.level == gov.max_level == 9
    assert set(gov.rates().values()) == {1.0}  # min_fps, never zero


def test_governor_reacts_to_throttle_bits_and_memory_and_says_why() -> None:
    gov = make_governor()
    decision = gov.step(0.0, None, ["under_voltage"], None)
    assert decision is not None and decision.reason == "the device reports under_voltage"
    gov2 = make_governor(memory_pct=85)
    decision = gov2.step(0.0, 50.0, [], 92.0)
    assert decision is not None and "memory use 92.0 % is over 85 %" in decision.reason
    assert gov2.step(10.0, 50.0, [], 82.0) is None  # needs 5 % of slack under the threshold
    back = gov2.step(20.0, 50.0, [], 70.0)
    assert back is not None and back.level == 0 and "under the 80 C limit" in back.reason


def test_disabled_governor_does_nothing() -> None:
    gov = make_governor(enabled=False)
    assert gov.step(0.0, 99.0, ["throttled"], 99.0) is None and gov.level == 0
