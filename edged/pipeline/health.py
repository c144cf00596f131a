"""Is the daemon doing its job? Heartbeats per camera, the broker, the engine.

Healthy means: every enabled camera is online and delivered a frame recently (its
heartbeat: within its read timeout plus a grace period), the MQTT broker is
connected, and the scheduler has not stopped on an engine error. The report names
each thing that is wrong. /healthz serves it; the systemd watchdog follows it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from edged.telemetry.collector import PipelineView

GRACE_S = 2.0


@dataclass
class HealthReport:
    ok: bool
    problems: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "ok\n" if self.ok else "".join(f"{p}\n" for p in self.problems)


def check_health(view: PipelineView, now: float | None = None) -> HealthReport:
    now = time.monotonic() if now is None else now
    problems = []
    if not view.publisher.connected:
        problems.append(f"MQTT broker at {view.publisher.where} is not connected")
    for name, worker in view.workers.items():
        camera = view.config.cameras[name]
        if worker.state != "online":
            reason = f": {worker.reason}" if worker.reason else ""
            problems.append(f"camera {name} is {worker.state}{reason}")
            continue
        beat = worker.counters.last_grab_mono
        stale_after = camera.read_timeout_s + GRACE_S
        if beat and now - beat > stale_after:
            problems.append(f"camera {name}: no frame for {now - beat:.1f} s (limit {stale_after:g} s)")
    if not view.workers:
        problems.append("no camera is running")
    scheduler = view.scheduler
    if scheduler is not None and scheduler.failure is not None:
        problems.append(f"inference stopped: {scheduler.failure}")
    return HealthReport(not problems, problems)
