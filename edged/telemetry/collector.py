"""Reads the device's probes: temperatures, throttling, memory, CPU, GPU.

Probes read files under ``telemetry.root`` (so tests and containers can point them
elsewhere); tegrastats and vcgencmd run as subprocesses on the event loop and their
newest reading is cached here. The pipeline's own figures are not read here: they
come as typed snapshots (``edged.pipeline.stats``).
"""

from __future__ import annotations

import logging
from typing import Any

from edged.config.models import TelemetryConfig
from edged.telemetry.jetson import TegrastatsReader, gpu_load_pct, is_jetson
from edged.telemetry.memory import CpuLoad, read_memory
from edged.telemetry.power import Rapl
from edged.telemetry.rpi import PiReading, VcgencmdReader
from edged.telemetry.thermal import device_temperature, read_zones

log = logging.getLogger(__name__)


class Collector:
    def __init__(self, config: TelemetryConfig) -> None:
        self.config = config
        cfg = config
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
        self.rapl = Rapl(cfg.root)

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
            reading = await self.vcgencmd.read()
            if reading.error and reading.error != self.pi.error:
                log.error("Raspberry Pi probe: %s; temperature and throttling are not reported", reading.error)
            self.pi = reading

    def system(self, cpu: CpuLoad | None = None, rapl: Rapl | None = None) -> dict[str, Any]:
        """``cpu``, ``rapl``: samplers of the caller's own, so two readers do not shorten each other's windows."""
        zones = read_zones(self.root)
        device = device_temperature(zones, self.config.thermal_zones)
        temp_c = self.pi.temp_c if self.pi.temp_c is not None else (device[1] if device else None)
        out: dict[str, Any] = {
            "temp_c": temp_c,
            "temp_zone": "vcgencmd" if self.pi.temp_c is not None else (device[0] if device else None),
            "zones": {(z.type or f"thermal_zone{z.index}"): z.temp_c for z in zones if z.temp_c is not None},
            "throttle": self.pi.throttle.as_dict() if self.pi.throttle is not None else None,
            "cpu_pct": (cpu or self.cpu).sample(),
        }
        if self.pi.error:
            out["probe_errors"] = {"vcgencmd": self.pi.error}
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
        rapl = rapl or self.rapl
        if rapl.present:
            out["rapl_watts"] = rapl.watts()
        if self.jetson:
            out["gpu_pct"] = gpu_load_pct(self.root)
        if self.tegrastats is not None and self.tegrastats.latest is not None:
            out["tegrastats"] = self.tegrastats.latest.as_dict()
            if out.get("gpu_pct") is None:
                out["gpu_pct"] = self.tegrastats.latest.gpu_pct
        return out
