"""NVIDIA Jetson: ``tegrastats`` lines and the GPU load file.

One parser for every tegrastats format seen on real devices (fixtures from TX1/L4T 28
to JetPack 7): an optional date prefix; ``RAM``/``SWAP`` with ``lfb`` and ``cached``;
``CPU [a%@MHz,off,...]`` (and TX1's ``cpu [a%,b%]@MHz``); ``EMC_FREQ`` and
``GR3D_FREQ`` with or without ``@MHz``, with ``@[gpc0,gpc1]`` on Orin; engines
(``NVDEC 40%@115``, ``NVENC off``, ``VIC_FREQ 729``, ``APE 150``); temperatures
(``CPU@45.5C``, lower-case on JetPack 6, ``cur/max`` on JetPack 7, ``-256C``
placeholders and the PMIC's fixed 50C/100C skipped); power rails (``VDD_IN 5079mW/5079mW``, without units on old
releases, ``cur/avg/max`` on JetPack 7; ``NC`` rails may repeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_DATE = re.compile(r"^\d\d-\d\d-\d{4} \d\d:\d\d:\d\d\s+")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_CPU_LEGACY = re.compile(r"\bcpu \[([^\]]*)\]@(\d+)")
_EMC = re.compile(r"\bEMC(?:_FREQ)? (\d+)%(?:@(\d+))?")
_GR3D = re.compile(r"\bGR3D(?:_FREQ)? (?:(\d+)%)?(?:@\[?([\d,]+)\]?)?")
_ENGINE = re.compile(
    r"\b(NVENC\d?|NVDEC\d?|NVJPG\d?|VIC(?:_FREQ)?|OFA|NVDLA\d|PVA\d_FREQ|APE|MSENC) (off|\d+%@\d+|\d+)(?=\s|$)"
)
_TEMP = re.compile(r"(?:^|\s)([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)?")
_RAIL = re.compile(r"(?:^|\s)([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?:/(\d+)(?:mW)?)?(?![\d/kM])")
_NOT_RAILS = {"RAM", "SWAP", "IRAM"}
PLACEHOLDER_C = -40.0  # at or below: a sensor that is off (-256C), not a temperature
# tegrastats prints the PMIC's temperature as a fixed value that no sensor measures (50C on Nano and TX2,
# 100C on Xavier): reporting it would show a device at 100 C that is not.
NOT_SENSORS = frozenset({"PMIC", "pmic"})
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")


@dataclass
class Core:
    online: bool
    load_pct: float | None = None
    mhz: int | None = None


@dataclass
class Rail:
    current_mw: float
    average_mw: float
    max_mw: float | None = None


@dataclass
class TegraStats:
    ram_used_mb: int
    ram_total_mb: int
    swap_used_mb: int | None = None
    swap_total_mb: int | None = None
    cpus: list[Core] = field(default_factory=list)
    emc_pct: float | None = None
    emc_mhz: int | None = None
    gpu_pct: float | None = None
    gpu_mhz: list[int] = field(default_factory=list)
    engines: dict[str, Any] = field(default_factory=dict)
    temps_c: dict[str, float] = field(default_factory=dict)
    rails: dict[str, Rail] = field(default_factory=dict)

    @property
    def power_in_mw(self) -> float | None:
        """Board input power: VDD_IN or POM_5V_IN where reported, else the sum of all rails."""
        for name in INPUT_RAILS:
            if name in self.rails:
                return self.rails[name].current_mw
        return sum(r.current_mw for r in self.rails.values()) if self.rails else None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["power_in_mw"] = self.power_in_mw
        return out


def _cores(body: str) -> list[Core]:
    cores = []
    for raw in body.split(","):
        entry = raw.strip()
        if entry == "off":
            cores.append(Core(online=False))
            continue
        match = re.fullmatch(r"(\d+)%(?:@(\d+))?", entry)
        if match:
            cores.append(Core(True, float(match.group(1)), int(match.group(2)) if match.group(2) else None))
    return cores


def parse_tegrastats(line: str) -> TegraStats:
    """Parse one tegrastats line; ValueError if it is not one."""
    text = _DATE.sub("", line.strip())
    ram = _RAM.search(text)
    if ram is None:
        raise ValueError(f"not a tegrastats line: {line[:60]!r}")
    stats = TegraStats(int(ram.group(1)), int(ram.group(2)))
    swap = _SWAP.search(text)
    if swap:
        stats.swap_used_mb, stats.swap_total_mb = int(swap.group(1)), int(swap.group(2))
    cpu = _CPU.search(text)
    if cpu:
        stats.cpus = _cores(cpu.group(1))
    else:
        legacy = _CPU_LEGACY.search(text)
        if legacy:
            stats.cpus = [Core(c.online, c.load_pct, int(legacy.group(2))) for c in _cores(legacy.group(1))]
    emc = _EMC.search(text)
    if emc:
        stats.emc_pct = float(emc.group(1))
        stats.emc_mhz = int(emc.group(2)) if emc.group(2) else None
    gr3d = _GR3D.search(text)
    if gr3d:
        stats.gpu_pct = float(gr3d.group(1)) if gr3d.group(1) else None
        stats.gpu_mhz = [int(v) for v in gr3d.group(2).split(",") if v] if gr3d.group(2) else []
    for name, value in _ENGINE.findall(text):
        if value == "off":
            stats.engines[name] = "off"
        elif "%" in value:
            pct, mhz = value.split("%@")
            stats.engines[name] = {"pct": float(pct), "mhz": int(mhz)}
        else:
            stats.engines[name] = {"mhz": int(value)}
    for name, value in _TEMP.findall(text):
        celsius = float(value)
        if celsius > PLACEHOLDER_C and name not in NOT_SENSORS:
            stats.temps_c[name] = celsius
    for name, current, average, peak in _RAIL.findall(text):
        if name in _NOT_RAILS:
            continue
        key, n = name, 2
        while key in stats.rails:  # 'NC' appears twice on an AGX Orin
            key, n = f"{name}_{n}", n + 1
        stats.rails[key] = Rail(float(current), float(average), float(peak) if peak else None)
    return stats


GPU_LOAD_FILES = (
    "sys/devices/gpu.0/load",
    "sys/devices/platform/gpu.0/load",
    "sys/devices/platform/bus@0/17000000.gpu/load",
)


def gpu_load_pct(root: Path = Path("/")) -> float | None:
    """The integrated GPU's load from sysfs: tenths of a percent (0..1000)."""
    for relative in GPU_LOAD_FILES:
        try:
            raw = (root / relative).read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            return int(raw) / 10.0
    return None


def is_jetson(root: Path = Path("/")) -> bool:
    return (root / "etc" / "nv_tegra_release").exists() or any((root / p).exists() for p in GPU_LOAD_FILES)


class TegrastatsReader:
    """Runs ``tegrastats`` on the event loop and keeps the newest parsed line."""

    def __init__(self, interval_ms: int = 1000, command: str = "tegrastats") -> None:
        self.interval_ms = interval_ms
        self.command = command
        self.latest: TegraStats | None = None
        self.errors = 0
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def available(command: str = "tegrastats") -> bool:
        return shutil.which(command) is not None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            self.command, "--interval", str(self.interval_ms),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        self._task = asyncio.create_task(self._read(), name="tegrastats")

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        async for raw in self._process.stdout:
            try:
                self.latest = parse_tegrastats(raw.decode(errors="replace"))
            except ValueError:
                self.errors += 1
                if self.errors == 1:
                    log.warning("tegrastats printed a line edged cannot read: %r", raw[:80])

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._process.wait(), 2)
        if self._task is not None:
            self._task.cancel()
