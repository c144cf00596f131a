"""Is edged doing its job? Rules over stats snapshots, with no threads and no daemon.

- ``check_health``: what /healthz says. Healthy means every enabled camera is online
  and delivered a frame recently (within its read timeout plus a grace period), the
  broker is connected, and inference has not stopped on an engine error.
- ``pipeline_alive``: what systemd's watchdog follows: is the pipeline turning? One
  camera being down is not a stall (the others run, and an alert says so); every
  camera silent at once, a wedged thread, or a hung engine is.
- ``engine_hang``: the one rule for a hung engine (a batch out longer than
  ``engine.hang_timeout_s``).
- ``Supervisor``: turns the rules into what the daemon does each second: READY once a
  camera is online, WATCHDOG while alive, exit when the engine hangs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edged.pipeline.stats import EngineStats, PipelineStats, Snapshot
from edged.sources.state import CameraState

SCHEDULER_STALL_S = 5.0


@dataclass
class HealthReport:
    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # healthy, but worth saying (running on a fallback engine)

    def text(self) -> str:
        head = "ok\n" if self.ok else "".join(f"{p}\n" for p in self.problems)
        return head + "".join(f"{n}\n" for n in self.notes)


def check_health(snapshot: Snapshot) -> HealthReport:
    problems = []
    if not snapshot.mqtt.connected:
        problems.append(f"MQTT broker at {snapshot.mqtt.where} is not connected")
    for name, camera in snapshot.pipeline.cameras.items():
        w = camera.worker
        if w.state is not CameraState.ONLINE:
            reason = f": {w.reason}" if w.reason else ""
            problems.append(f"camera {name} is {w.state.value}{reason}")
            continue
        if w.heartbeat_age_s is not None and w.heartbeat_age_s > w.stale_after_s:
            problems.append(f"camera {name}: no frame for {w.heartbeat_age_s:.1f} s (limit {w.stale_after_s:g} s)")
    if not snapshot.pipeline.cameras:
        problems.append("no camera is running")
    if snapshot.pipeline.engine.failure is not None:
        problems.append(f"inference stopped: {snapshot.pipeline.engine.failure}")
    return HealthReport(not problems, problems, engine_notes(snapshot.pipeline.engine))


def engine_notes(engine: EngineStats) -> list[str]:
    """An engine chain off its primary: which engine runs, and why the ones before it do not."""
    settings = engine.settings
    chain = settings.get("chain")
    if not chain or settings.get("in_use") == chain[0]:
        return []
    failed = settings.get("failed") or {}
    why = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
    return [f"engine: running on {settings.get('in_use')}, a fallback ({why})"]


def engine_hang(engine: EngineStats, hang_timeout_s: float) -> str | None:
    """Why the engine counts as hung, or None."""
    if engine.oldest_in_flight_s > hang_timeout_s:
        return f"inference has not returned for {engine.oldest_in_flight_s:.1f} s (engine hung?)"
    return None


def pipeline_alive(stats: PipelineStats, hang_timeout_s: float) -> tuple[bool, str]:
    """(alive, why not): the heartbeat that systemd's watchdog follows."""
    if not stats.started:
        return False, "the pipeline has not started"
    engine = stats.engine
    if engine.failure is not None:
        return False, f"inference stopped: {engine.failure}"
    if engine.tick_age_s > SCHEDULER_STALL_S:
        return False, f"the scheduler has not run for {engine.tick_age_s:.1f} s"
    hung = engine_hang(engine, hang_timeout_s)
    if hung is not None:
        return False, hung
    running = {n: c.worker for n, c in stats.cameras.items() if c.worker.thread_alive}
    for name, w in running.items():
        if w.thread_idle_s > w.thread_limit_s:
            return False, f"camera {name}: its thread has not moved for {w.thread_idle_s:.1f} s"
    if not running:
        return True, "no camera is running"
    flowing = [n for n, w in running.items() if w.heartbeat_age_s is not None and w.heartbeat_age_s <= w.stall_limit_s]
    if not flowing:
        return False, "no camera has delivered a frame recently"
    return True, ""


def summary(snapshot: Snapshot, engine_fps: float | None) -> str:
    """One line for systemd's STATUS= and the log: '2/3 cameras online, 41.0 frames/s, MQTT connected'."""
    cameras = snapshot.pipeline.cameras
    online = sum(c.state is CameraState.ONLINE for c in cameras.values())
    broker = "MQTT connected" if snapshot.mqtt.connected else "MQTT disconnected"
    pending = snapshot.mqtt.spool.pending
    return (f"{online}/{len(cameras)} cameras online{f', {engine_fps:.1f} frames/s' if engine_fps else ''}, {broker}"
            f"{f', {pending} spooled' if pending else ''}")


@dataclass(frozen=True)
class Verdict:
    """What the supervisor does after one look at the stats."""

    ready: bool = False  # send READY=1 now (once)
    watchdog: bool = False  # send WATCHDOG=1 now
    withheld: str = ""  # why WATCHDOG=1 was withheld
    fatal: str = ""  # stop edged with this error


class Supervisor:
    """The daemon's rules, as data: fed snapshots, it says what to do."""

    def __init__(self, *, hang_timeout_s: float, watchdog: bool) -> None:
        self.hang_timeout_s = hang_timeout_s
        self.watchdog = watchdog
        self.ready = False

    def step(self, stats: PipelineStats) -> Verdict:
        hung = engine_hang(stats.engine, self.hang_timeout_s)
        if hung is not None:
            return Verdict(fatal=f"inference has not returned for {self.hang_timeout_s:g} s: the engine is hung; "
                                 f"exiting so that the service manager restarts edged")
        became_ready = False
        if not self.ready and any(c.state is CameraState.ONLINE for c in stats.cameras.values()):
            self.ready = became_ready = True
        if not (self.ready and self.watchdog):
            return Verdict(ready=became_ready)
        alive, why = pipeline_alive(stats, self.hang_timeout_s)
        return Verdict(ready=became_ready, watchdog=alive, withheld=why if not alive else "")
