"""Service-level alerts with hysteresis: ``firing`` once, ``resolved`` once.

A threshold alert fires when its value goes above the threshold and resolves only
when it falls below ``threshold x (1 - hysteresis)``, so a value hovering at the
limit does not flap. Throttling fires while any throttle bit is set now. A camera is
down once it has not been online for ``camera_down_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edged.analytics.tamper import Transition
from edged.config.models import AlertsConfig
from edged.engines.chain import Change
from edged.pipeline.stats import Snapshot
from edged.publish.contract import alert_payload
from edged.sources.state import CameraState


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
        self._damage_reported = False
        self._refused: int | None = 0
        self._unsendable = 0
        self._non_finite = 0

    @property
    def firing(self) -> list[str]:
        return sorted(f"{name}:{camera}" if camera else name for (name, camera), s in self._states.items() if s.firing)

    def _transition(self, name: str, camera: str, active: bool, clear: bool, now: float, key: str = "",
                    **details: Any) -> list[dict[str, Any]]:
        """``key``: what tells apart alerts of one name that are not about a camera (a probe's name)."""
        state = self._states.setdefault((name, camera or key), _State())
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
        return alert_payload(self.device, name, state, camera, **details)

    def event(self, camera: str, event: Transition | Change) -> dict[str, Any]:
        """An alert the pipeline saw happen (a camera tampered with, or back; the engine chain failing over or
        returning), typed, as its payload."""
        if isinstance(event, Change):
            if event.returned:
                return alert_payload(self.device, "engine_failover", "resolved", engine=event.now,
                                     message=f"back on {event.now} after {event.down_s:.1f} s on {event.before}",
                                     firing_s=round(event.down_s, 1))
            return alert_payload(self.device, "engine_failover", "firing", engine=event.now, failed=event.before,
                                 message=f"{event.before} failed ({event.reason}); running on {event.now}")
        details: dict[str, Any] = {"message": event.reason}
        if not event.firing:
            details["firing_s"] = event.held_s
        return alert_payload(self.device, f"camera_{event.kind}", "firing" if event.firing else "resolved", camera,
                             **details)

    def evaluate(self, system: dict[str, Any], snapshot: Snapshot, now: float) -> list[dict[str, Any]]:
        """Transitions since the last call, as alert payloads."""
        cfg = self.config
        out: list[dict[str, Any]] = []
        infer = snapshot.pipeline.engine.infer_ms.p95
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
        failing = system.get("probe_errors") or {}
        for probe, error in failing.items():
            out += self._transition("probe_failed", "", True, False, now, key=probe, probe=probe, message=error)
        for (name, probe), state in list(self._states.items()):
            if name == "probe_failed" and state.firing and probe not in failing:
                out += self._transition("probe_failed", "", False, True, now, key=probe, probe=probe,
                                        message=f"{probe} answers again")
        non_finite = snapshot.pipeline.engine.non_finite
        worse, self._non_finite = non_finite > self._non_finite, non_finite
        out += self._transition("engine_nan", "", worse, not worse, now, value=non_finite,
                                message=f"the engine returned NaN or inf for {non_finite} frame(s) in all; those "
                                        f"frames publish no detections (inference_precision: f32?)")
        dropped = snapshot.mqtt.spool.dropped
        grew = self._spool_dropped is not None and dropped > self._spool_dropped
        self._spool_dropped = dropped
        out += self._transition("spool_overflow", "", grew, not grew, now, value=dropped,
                                message=f"the MQTT spool is full: {dropped} QoS 1 message(s) dropped in all")
        refused = sum(count for _, count in snapshot.mqtt.refused)
        more = self._refused is not None and refused > self._refused
        self._refused = refused
        topics = ", ".join(f"{topic} ({count})" for topic, count in snapshot.mqtt.refused)
        out += self._transition("publish_refused", "", more, not more, now, value=refused,
                                message=f"the broker refused {refused} message(s): {snapshot.mqtt.refused_reason}; "
                                        f"topics: {topics}")
        spool = snapshot.mqtt.spool
        more = spool.unsendable > self._unsendable
        self._unsendable = spool.unsendable
        out += self._transition("publish_unsendable", "", more, not more, now, value=spool.unsendable,
                                message=f"{spool.unsendable} QoS 1 message(s) can never be sent and were set aside "
                                        f"(the rest go on); last: {spool.unsendable_reason}")
        out += self._transition("spool_error", "", bool(spool.error), not spool.error, now, value=spool.errors,
                                message=f"{spool.error or 'the spool takes writes again'}; {spool.errors} message(s) "
                                        f"went on from memory, not from disk")
        damaged = bool(spool.set_aside) and not self._damage_reported
        self._damage_reported = self._damage_reported or damaged
        out += self._transition("spool_damaged", "", damaged, not damaged, now,
                                message=f"the MQTT spool was damaged and set aside at start: {spool.set_aside}")
        for name, camera in snapshot.pipeline.cameras.items():
            w = camera.worker
            out += self._transition("camera_flapping", name, w.flapping, not w.flapping, now, value=w.reconnects,
                                    message=f"camera reopened too often: {w.reason}")
            age = camera.age_ms.p95
            out += self._threshold("frame_age_p95", name, age, cfg.frame_age_ms_p95, now, " ms", "frame age p95")
            online = w.state is CameraState.ONLINE
            if online:
                self._down_since.pop(name, None)
            else:
                self._down_since.setdefault(name, now)
            down_for = now - self._down_since[name] if not online else 0.0
            why = w.reason or "no reason given"
            out += self._transition("camera_down", name, down_for >= cfg.camera_down_s, online, now,
                                    value=round(down_for, 1), threshold=cfg.camera_down_s,
                                    message=f"camera {w.state.value}: {why}")
        return out
