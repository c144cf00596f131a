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


def pipeline_alive(view: PipelineView, hang_timeout_s: float, now: float | None = None) -> tuple[bool, str]:
    """The heartbeat systemd's watchdog follows: is the pipeline turning?

    Not alive when the scheduler loop has stopped turning, a batch has waited on
    the engine longer than ``hang_timeout_s``, a camera thread is stuck beyond all
    its timeouts, or no running camera has delivered a frame within its stall
    limit. One camera being down is not a stall of the pipeline (the others run,
    and an alert says so); every camera silent at once, or a hung engine, is.
    """
    now = time.monotonic() if now is None else now
    scheduler = view.scheduler
    if scheduler is None:
        return False, "the pipeline has not started"
    if scheduler.failure is not None:
        return False, f"inference stopped: {scheduler.failure}"
    if now - scheduler.last_tick > 5.0:
        return False, f"the scheduler has not run for {now - scheduler.last_tick:.1f} s"
    waiting = scheduler.oldest_in_flight_s(now)
    if waiting > hang_timeout_s:
        return False, f"inference has not returned for {waiting:.1f} s (engine hung?)"
    running = {n: w for n, w in view.workers.items() if w.alive}
    for name, worker in running.items():
        cfg = worker.config
        limit = cfg.open_timeout_s + cfg.read_timeout_s + 2 * GRACE_S
        if now - worker.counters.last_alive_mono > limit:
            return False, f"camera {name}: its thread has not moved for {now - worker.counters.last_alive_mono:.1f} s"
    if not running:
        return True, "no camera is running"
    flowing = [n for n, w in running.items()
               if w.counters.last_grab_mono and now - w.counters.last_grab_mono <= w.stall_s + GRACE_S]
    if not flowing:
        return False, "no camera has delivered a frame recently"
    return True, ""
