"""Service-level alerts with hysteresis: ``firing`` once, ``resolved`` once.

A threshold alert fires when its value goes above the threshold and resolves only
when it falls below ``threshold x (1 - hysteresis)``, so a value hovering at the
limit does not flap. Throttling fires while any throttle bit is set now. A camera is
down once it has not been online for ``camera_down_s``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from edged.config.models import AlertsConfig

VERSION = 1


@dataclass
class _State:
    firing: bool = False
    since: float = 0.0


class Alerts:
    def __init__(self, config: AlertsConfig, device: str) -> None:
        self.config = config
        self.device = device
        self._states: dict[tuple[str, str], _State] = {}
        self._down_since: dict[str, float] = {}
        self._spool_dropped: int | None = None  # from the first reading: losses of earlier runs are old news

    @property
    def firing(self) -> list[str]:
        return sorted(f"{name}:{camera}" if camera else name for (name, camera), s in self._states.items() if s.firing)

    def _transition(self, name: str, camera: str, active: bool, clear: bool, now: float,
                    **details: Any) -> list[dict[str, Any]]:
        state = self._states.setdefault((name, camera), _State())
        if active and not state.firing:
            state.firing, state.since = True, now
            return [self._message(name, camera, "firing", now, **details)]
        if state.firing and clear:
            state.firing = False
            return [self._message(name, camera, "resolved", now, firing_s=round(now - state.since, 1), **details)]
        return []

    def _threshold(self, name: str, camera: str, value: float | None, threshold: float, now: float,
                   unit: str, what: str) -> list[dict[str, Any]]:
        if value is None:
            return []
        low = threshold * (1.0 - self.config.hysteresis)
        message = f"{what} {value:g}{unit} (threshold {threshold:g}{unit})"
        return self._transition(name, camera, value > threshold, value < low, now,
                                value=value, threshold=threshold, message=message)

    def _message(self, name: str, camera: str, state: str, now: float, **details: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"v": VERSION, "device": self.device, "alert": name, "state": state}
        if camera:
            out["camera"] = camera
        out.update(details)
        out["ts"] = round(time.time(), 3)
        return out

    def evaluate(self, system: dict[str, Any], pipeline: dict[str, Any], now: float) -> list[dict[str, Any]]:
        """Transitions since the last call, as alert payloads."""
        cfg = self.config
        out: list[dict[str, Any]] = []
        infer = pipeline.get("engine", {}).get("infer_ms", {}).get("p95")
        out += self._threshold("inference_p95", "", infer, cfg.infer_ms_p95, now, " ms", "inference p95")
        memory = system.get("memory", {}).get("used_pct")
        out += self._threshold("memory", "", memory, cfg.memory_pct, now, " %", "memory in use")
        out += self._threshold("temperature", "", system.get("temp_c"), cfg.temp_c, now, " C",
                               f"{system.get('temp_zone') or 'device'} temperature")
        throttle = system.get("throttle")
        if cfg.throttling and throttle is not None:
            now_bits = throttle.get("now", [])
            out += self._transition("throttling", "", bool(now_bits), not now_bits, now, bits=now_bits,
                                    raw=throttle.get("raw"), message=f"throttle bits: {', '.join(now_bits) or 'none'}")
        spool = pipeline.get("mqtt", {}).get("spool")
        if spool is not None:
            dropped = spool.get("dropped", 0)
            grew = self._spool_dropped is not None and dropped > self._spool_dropped
            self._spool_dropped = dropped
            out += self._transition("spool_overflow", "", grew, not grew, now, value=dropped,
                                    message=f"the MQTT spool is full: {dropped} QoS 1 message(s) dropped in all")
        for name, camera in pipeline.get("cameras", {}).items():
            out += self._transition("camera_flapping", name, bool(camera.get("flapping")),
                                    not camera.get("flapping"), now, value=camera.get("reconnects"),
                                    message=f"camera reopened too often: {camera.get('reason') or ''}")
            age = camera.get("age_ms", {}).get("p95")
            out += self._threshold("frame_age_p95", name, age, cfg.frame_age_ms_p95, now, " ms", "frame age p95")
            online = camera.get("state") == "online"
            if online:
                self._down_since.pop(name, None)
            else:
                self._down_since.setdefault(name, now)
            down_for = now - self._down_since[name] if not online else 0.0
            why = camera.get("reason") or "no reason given"
            out += self._transition("camera_down", name, down_for >= cfg.camera_down_s, online, now,
                                    value=round(down_for, 1), threshold=cfg.camera_down_s,
                                    message=f"camera {camera.get('state')}: {why}")
        return out
