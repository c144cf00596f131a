"""Reads every probe and the pipeline's counters into plain dicts.

System probes read files under ``telemetry.root`` (so tests and containers can point
them elsewhere); tegrastats and vcgencmd run as subprocesses on the event loop and
their newest reading is cached here. The pipeline part is raw counters and
percentiles; the telemetry loop turns counters into rates, and /metrics exports
them as they are.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from edged.config.models import Config
from edged.engines.base import Engine
from edged.pipeline.scheduler import Scheduler
from edged.publish.mqtt import MqttPublisher
from edged.sources.camera import CameraWorker
from edged.telemetry.jetson import TegrastatsReader, gpu_load_pct, is_jetson
from edged.telemetry.memory import CpuLoad, read_memory
from edged.telemetry.rpi import PiReading, VcgencmdReader
from edged.telemetry.thermal import device_temperature, read_zones

log = logging.getLogger(__name__)


class PipelineView(Protocol):
    config: Config
    engine: Engine
    publisher: MqttPublisher
    scheduler: Scheduler | None
    started_mono: float

    @property
    def workers(self) -> dict[str, CameraWorker]: ...


def _pcts(window: Any, *qs: int) -> dict[str, float | None]:
    return {f"p{q}": v for q, v in zip(qs, window.percentiles(*qs))}


class Collector:
    def __init__(self, view: PipelineView) -> None:
        self.view = view
        cfg = view.config.telemetry
        self.root = cfg.root
        self.cpu = CpuLoad(cfg.root)
        self.jetson = is_jetson(cfg.root)
        self.tegrastats: TegrastatsReader | None = None
        if cfg.tegrastats == "auto" and TegrastatsReader.available():
            self.tegrastats = TegrastatsReader()
        self.vcgencmd: VcgencmdReader | None = None
        if cfg.vcgencmd == "auto" and VcgencmdReader.available():
            self.vcgencmd = VcgencmdReader()
        self.pi = PiReading()

    async def start(self) -> None:
        if self.tegrastats is not None:
            try:
                await self.tegrastats.start()
            except OSError as exc:
                log.warning("cannot run tegrastats: %s", exc)
                self.tegrastats = None

    async def stop(self) -> None:
        if self.tegrastats is not None:
            await self.tegrastats.stop()

    async def refresh(self) -> None:
        """Readings that need a subprocess; called once per telemetry tick."""
        if self.vcgencmd is not None:
            self.pi = await self.vcgencmd.read()

    def system(self, cpu: CpuLoad | None = None) -> dict[str, Any]:
        """``cpu``: a sampler of the caller's own, so two readers do not shorten each other's windows."""
        zones = read_zones(self.root)
        device = device_temperature(zones, self.view.config.telemetry.thermal_zones)
        temp_c = self.pi.temp_c if self.pi.temp_c is not None else (device[1] if device else None)
        out: dict[str, Any] = {
            "temp_c": temp_c,
            "temp_zone": "vcgencmd" if self.pi.temp_c is not None else (device[0] if device else None),
            "zones": {(z.type or f"thermal_zone{z.index}"): z.temp_c for z in zones if z.temp_c is not None},
            "throttle": self.pi.throttle.as_dict() if self.pi.throttle is not None else None,
            "cpu_pct": (cpu or self.cpu).sample(),
        }
        try:
            memory = read_memory(self.root)
            out["memory"] = {
                "total_mb": round(memory.total_mb), "available_mb": round(memory.available_mb),
                "used_pct": round(memory.used_pct, 1), "swap_used_mb": round(memory.swap_used_mb),
                "swap_total_mb": round(memory.swap_total_mb),
                "process_rss_mb": round(memory.process_rss_mb, 1) if memory.process_rss_mb is not None else None,
                "process_threads": memory.process_threads,
                "gpu_shares_ram": self.jetson,
            }
        except OSError as exc:
            out["memory"] = {"error": str(exc)}
        if self.jetson:
            out["gpu_pct"] = gpu_load_pct(self.root)
        if self.tegrastats is not None and self.tegrastats.latest is not None:
            out["tegrastats"] = self.tegrastats.latest.as_dict()
            if out.get("gpu_pct") is None:
                out["gpu_pct"] = self.tegrastats.latest.gpu_pct
        return out

    def pipeline(self) -> dict[str, Any]:
        view = self.view
        scheduler = view.scheduler
        cameras: dict[str, Any] = {}
        lanes = {lane.name: lane for lane in scheduler.lanes} if scheduler else {}
        for name, worker in view.workers.items():
            lane = lanes.get(name)
            counters = worker.counters
            cameras[name] = {
                "state": worker.state,
                "reason": worker.reason,
                "frames_read": counters.frames_read,
                "frames_decoded": counters.frames_decoded,
                "frames_skipped": counters.frames_skipped,
                "frames_dropped": worker.slot.dropped,
                "frames_processed": lane.processed if lane else 0,
                "reconnects": counters.reconnects,
                "stalls": counters.stalls,
                "flapping": worker.flapping,
                "target_fps": view.config.cameras[name].fps,
                "governed_fps": lane.governed_fps if lane else None,
                "age_ms": _pcts(lane.age_ms, 50, 95) if lane else {},
                "heartbeat_age_s": round(time.monotonic() - counters.last_grab_mono, 2)
                if counters.last_grab_mono else None,
            }
        engine: dict[str, Any] = dict(view.engine.describe())
        if scheduler is not None:
            c, t = scheduler.counters, scheduler.times
            engine.update({
                "oldest_in_flight_s": round(scheduler.oldest_in_flight_s(time.monotonic()), 2),
                "batches": c.batches, "frames": c.frames,
                "batch_fill": round(c.frames / c.batch_slots, 3) if c.batch_slots else None,
                "in_flight": c.in_flight, "errors": c.engine_errors,
                "infer_ms": _pcts(t.infer, 50, 95, 99), "pre_ms": _pcts(t.pre, 50, 95),
                "post_ms": _pcts(t.post, 50, 95),
            })
        p = view.publisher.counters
        outbox = view.publisher.outbox
        mqtt = {"connected": view.publisher.connected, "detections_sent": p.detections_sent,
                "spool": {"pending": outbox.pending, "bytes": outbox.spool.bytes, "dropped": outbox.spool.dropped,
                          "sent": outbox.sent, "acknowledged": outbox.acked},
                "detections_dropped_offline": p.detections_dropped_offline,
                "detections_dropped_backlog": p.detections_dropped_backlog, "reconnects": max(0, p.connects - 1)}
        return {"cameras": cameras, "engine": engine, "mqtt": mqtt,
                "uptime_s": round(time.monotonic() - view.started_mono, 1)}
