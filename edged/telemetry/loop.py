"""Every ``telemetry.interval_s``: read the probes and a stats snapshot; publish telemetry,
alert transitions and governor steps.

Telemetry goes to ``<prefix>/telemetry`` (QoS 0, retained: a new subscriber sees the
last state at once). Alert transitions and governor changes go to ``<prefix>/alerts``
(QoS 1). ``interval_s: 0`` turns all of it off. File-reading probes run off the
event loop. The loop is given what it reads and the levers it may pull, never the
daemon: a snapshot function, a publish function, and the governor's ``cap_rate``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from edged.analytics.tamper import Transition
from edged.config.models import Config
from edged.engines.chain import Change
from edged.pipeline.stats import Rate, Snapshot
from edged.publish.contract import Topics, dumps, governor_payload, telemetry_payload
from edged.telemetry.alerts import Alerts
from edged.telemetry.collector import Collector
from edged.telemetry.governor import CameraRate, Decision, Governor
from edged.telemetry.memory import CpuLoad
from edged.telemetry.power import Rapl, energy

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int, bool], object]  # topic, payload, qos, retain
CapRate = Callable[[str, "float | None"], None]


def tamper_firing(snapshot: Snapshot) -> list[str]:
    """Tamper alerts firing now (the cameras raise them as they happen), as ``camera_<kind>:<camera>``."""
    return sorted(f"camera_{kind}:{name}" for name, camera in snapshot.pipeline.cameras.items()
                  if camera.motion is not None for kind in camera.motion.tamper)


class TelemetryLoop:
    def __init__(self, *, config: Config, collector: Collector, topics: Topics, snapshot: Callable[[], Snapshot],
                 publish: Publish, cap_rate: CapRate,
                 observers: Sequence[Callable[[dict[str, Any]], None]] = ()) -> None:
        self.config = config
        self.observers = list(observers)  # each payload, once published (the web page's history)
        self.collector = collector
        self.topics = topics
        self.snapshot = snapshot
        self._publish = publish
        self.cap_rate = cap_rate
        self.alerts, self.governor = self._make()
        self._rates: dict[str, Rate] = {}
        self.last_engine_fps: float | None = None
        self.ticks = 0

    def _make(self) -> tuple[Alerts, Governor]:
        config = self.config
        cameras = [CameraRate(name, cam.priority, cam.fps) for name, cam in config.cameras.items() if cam.enabled]
        return Alerts(config.alerts, config.device_id), Governor(config.governor, config.alerts.temp_c, cameras)

    def scraper(self, snapshot: Callable[[], Snapshot]) -> Callable[[], tuple[dict[str, Any], Snapshot, int]]:
        """What /metrics reads on each scrape: the system's figures, the daemon's snapshot, the governor's level."""
        cpu, rapl = CpuLoad(self.config.telemetry.root), Rapl(self.config.telemetry.root)
        return lambda: (self.collector.system(cpu, rapl), snapshot(), self.governor.level)

    def reconfigure(self, config: Config) -> None:
        """After a reload: new thresholds, new cameras; the governor starts again from level 0."""
        self.config = config
        self.alerts, self.governor = self._make()
        for name, camera in config.cameras.items():
            if camera.enabled:
                self.cap_rate(name, None)

    def _rate(self, key: str, count: float, now: float) -> float | None:
        return self._rates.setdefault(key, Rate()).update(count, now)

    def build(self, system: dict[str, Any], snapshot: Snapshot, now: float) -> dict[str, Any]:
        cameras: dict[str, Any] = {}
        for name, stats in snapshot.pipeline.cameras.items():
            camera = cameras[name] = stats.as_dict()
            camera["capture_fps"] = self._rate(f"{name}.read", camera["frames_read"], now)
            camera["decoded_fps"] = self._rate(f"{name}.decoded", camera["frames_decoded"], now)
            camera["processed_fps"] = self._rate(f"{name}.processed", camera["frames_processed"], now)
            camera["dropped_fps"] = self._rate(f"{name}.dropped", camera["frames_dropped"], now)
        engine = snapshot.pipeline.engine.as_dict()
        engine["fps"] = self.last_engine_fps = self._rate("engine.frames", engine["frames"], now)
        system = {**system, "power": energy(system, engine["fps"])}
        return telemetry_payload(
            self.config.device_id, snapshot.pipeline.uptime_s, system, engine, cameras, snapshot.mqtt.as_dict(),
            self.alerts.firing + tamper_firing(snapshot), self._governor_state(),
        )

    def _governor_state(self) -> dict[str, Any]:
        g = self.governor
        return {"level": g.level, "max_level": g.max_level, "reason": g.reason, "rates": g.rates()}

    def _apply(self, decision: Decision) -> None:
        for name, fps in decision.rates.items():
            self.cap_rate(name, fps)
        slower = decision.level > decision.previous
        log.log(logging.WARNING if slower else logging.INFO, "governor level %d -> %d: %s; rates %s",
                decision.previous, decision.level, decision.reason, decision.rates)
        payload = governor_payload(self.config.device_id, decision.level, slower, decision.reason, decision.rates)
        self._publish(self.topics.alerts, dumps(payload), 1, False)

    def event(self, camera: str, event: Transition | Change) -> None:
        """An alert the pipeline saw happen (on the loop): published at once, QoS 1."""
        self._publish(self.topics.alerts, dumps(self.alerts.event(camera, event)), 1, False)

    async def tick(self) -> dict[str, Any]:
        now = time.monotonic()
        await self.collector.refresh()
        loop = asyncio.get_running_loop()
        system = await loop.run_in_executor(None, self.collector.system)
        snapshot = self.snapshot()
        payload = self.build(system, snapshot, now)
        for alert in self.alerts.evaluate(system, snapshot, now):
            level = logging.WARNING if alert["state"] == "firing" else logging.INFO
            log.log(level, "alert %s%s %s: %s", alert["alert"], f" ({alert['camera']})" if "camera" in alert else "",
                    alert["state"], alert.get("message", ""))
            self._publish(self.topics.alerts, dumps(alert), 1, False)
        measured = {n: c["processed_fps"] for n, c in payload["cameras"].items() if c.get("processed_fps")}
        throttle = system.get("throttle") or {}
        decision = self.governor.step(now, system.get("temp_c"), throttle.get("now", []),
                                      system.get("memory", {}).get("used_pct"), measured)
        if decision is not None:
            self._apply(decision)
            payload["governor"] = self._governor_state()
        payload["alerts"] = self.alerts.firing + tamper_firing(snapshot)
        self._publish(self.topics.telemetry, dumps(payload), 0, True)
        for observe in self.observers:
            observe(payload)
        self.ticks += 1
        return payload

    async def run(self) -> None:
        if self.config.telemetry.interval_s <= 0:
            return
        await self.collector.start()
        try:
            while True:
                await asyncio.sleep(max(0.5, self.config.telemetry.interval_s))
                try:
                    await self.tick()
                except Exception:  # telemetry must never take the pipeline down
                    log.exception("telemetry tick failed")
        finally:
            await self.collector.stop()
