"""Every ``telemetry.interval_s``: collect, publish retained telemetry, alerts, governor.

Telemetry goes to ``<prefix>/telemetry`` (QoS 0, retained: a new subscriber sees the
last state at once). Alert transitions and governor changes go to ``<prefix>/alerts``
(QoS 1). ``interval_s: 0`` turns all of it off. File-reading probes run off the
event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from edged.publish.schema import Topics
from edged.telemetry.alerts import Alerts
from edged.telemetry.collector import Collector, PipelineView
from edged.telemetry.governor import CameraRate, Decision, Governor
from edged.telemetry.stats import Rate

log = logging.getLogger(__name__)
VERSION = 1


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False, default=str).encode()


class TelemetryLoop:
    def __init__(self, view: PipelineView, collector: Collector, topics: Topics) -> None:
        self.view = view
        self.collector = collector
        self.topics = topics
        self.alerts, self.governor = self._make()
        self._rates: dict[str, Rate] = {}
        self.last: dict[str, Any] = {}
        self.ticks = 0

    def _make(self) -> tuple[Alerts, Governor]:
        config = self.view.config
        cameras = [CameraRate(name, cam.priority, cam.fps) for name, cam in config.cameras.items() if cam.enabled]
        return Alerts(config.alerts, config.device_id), Governor(config.governor, config.alerts.temp_c, cameras)

    def reconfigure(self) -> None:
        """After a reload: new thresholds, new cameras; the governor starts again from level 0."""
        self.alerts, self.governor = self._make()
        scheduler = self.view.scheduler
        if scheduler is not None:
            for lane in scheduler.lanes:
                lane.governed_fps = None

    def _rate(self, key: str, count: float, now: float) -> float | None:
        return self._rates.setdefault(key, Rate()).update(count, now)

    def build(self, system: dict[str, Any], pipeline: dict[str, Any], now: float) -> dict[str, Any]:
        cameras = pipeline["cameras"]
        for name, camera in cameras.items():
            camera["capture_fps"] = self._rate(f"{name}.read", camera["frames_read"], now)
            camera["decoded_fps"] = self._rate(f"{name}.decoded", camera["frames_decoded"], now)
            camera["processed_fps"] = self._rate(f"{name}.processed", camera["frames_processed"], now)
            camera["dropped_fps"] = self._rate(f"{name}.dropped", camera["frames_dropped"], now)
        engine = pipeline["engine"]
        if "frames" in engine:
            engine["fps"] = self._rate("engine.frames", engine["frames"], now)
        return {
            "v": VERSION, "device": self.view.config.device_id, "ts": round(time.time(), 3),
            "uptime_s": pipeline["uptime_s"], "system": system, "engine": engine, "cameras": cameras,
            "mqtt": pipeline["mqtt"], "alerts": self.alerts.firing,
            "governor": {"level": self.governor.level, "max_level": self.governor.max_level,
                         "reason": self.governor.reason, "rates": self.governor.rates()},
        }

    def _apply(self, decision: Decision) -> None:
        scheduler = self.view.scheduler
        if scheduler is not None:
            for lane in scheduler.lanes:
                lane.governed_fps = decision.rates.get(lane.name)
        slower = decision.level > decision.previous
        log.log(logging.WARNING if slower else logging.INFO, "governor level %d -> %d: %s; rates %s",
                decision.previous, decision.level, decision.reason, decision.rates)
        payload = {"v": VERSION, "device": self.view.config.device_id, "alert": "governor",
                   "state": "firing" if decision.level else "resolved", "level": decision.level,
                   "action": "slowing down" if slower else "speeding up", "reason": decision.reason,
                   "rates": decision.rates, "ts": round(time.time(), 3)}
        self.view.publisher.publish(self.topics.alerts, _dumps(payload), qos=1)

    async def tick(self) -> dict[str, Any]:
        now = time.monotonic()
        await self.collector.refresh()
        loop = asyncio.get_running_loop()
        system = await loop.run_in_executor(None, self.collector.system)
        pipeline = self.collector.pipeline()
        payload = self.build(system, pipeline, now)
        for alert in self.alerts.evaluate(system, pipeline, now):
            level = logging.WARNING if alert["state"] == "firing" else logging.INFO
            log.log(level, "alert %s%s %s: %s", alert["alert"], f" ({alert['camera']})" if "camera" in alert else "",
                    alert["state"], alert.get("message", ""))
            self.view.publisher.publish(self.topics.alerts, _dumps(alert), qos=1)
        measured = {n: c["processed_fps"] for n, c in payload["cameras"].items() if c.get("processed_fps")}
        throttle = system.get("throttle") or {}
        decision = self.governor.step(now, system.get("temp_c"), throttle.get("now", []),
                                      system.get("memory", {}).get("used_pct"), measured)
        if decision is not None:
            self._apply(decision)
            payload["governor"] = {"level": decision.level, "max_level": self.governor.max_level,
                                   "reason": decision.reason, "rates": decision.rates}
        payload["alerts"] = self.alerts.firing
        self.view.publisher.publish(self.topics.telemetry, _dumps(payload), qos=0, retain=True)
        self.last = payload
        self.ticks += 1
        return payload

    async def run(self) -> None:
        if self.view.config.telemetry.interval_s <= 0:
            return
        await self.collector.start()
        try:
            while True:
                await asyncio.sleep(max(0.5, self.view.config.telemetry.interval_s))
                try:
                    await self.tick()
                except Exception:  # telemetry must never take the pipeline down
                    log.exception("telemetry tick failed")
        finally:
            await self.collector.stop()
