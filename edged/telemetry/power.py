"""Power, and energy per inference, where the device reports it.

- Jetson: the board's input rail from tegrastats (``VDD_IN`` on Orin Nano/NX, Xavier NX and TX2, ``POM_5V_IN`` on
  the Nano): what the module draws at its input, not the carrier board's own regulators, fans or USB devices. AGX
  Orin names no input rail (its recorded output: VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0, ...): the sum of its rails,
  and the source says so.
- Intel (and AMD CPUs whose kernel exposes it the same way): RAPL energy counters under
  ``/sys/class/powercap/intel-rapl:N/energy_uj``, one per package (``name`` ``package-N``): the CPU package only
  (cores, caches, the iGPU on a client part), not the board, memory or disks. The counter is cumulative and wraps at
  ``max_energy_range_uj``; watts are its change between two readings.
- Elsewhere (this includes a Raspberry Pi: its PMIC's ``vcgencmd pmic_read_adc`` has no recorded sample to test a
  reader on yet): no reading, said as such.

Energy per inference is the power over the engine's inferences per second in the same telemetry window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NO_READING = "no power reading on this device"


@dataclass(frozen=True)
class _Domain:
    energy: Path
    wrap_uj: int


class Rapl:
    """The CPU packages' RAPL counters under ``root``; ``watts()`` since the previous call (None on the first)."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.domains: list[_Domain] = []
        base = root / "sys" / "class" / "powercap"
        for zone in sorted(base.glob("intel-rapl:*")) if base.is_dir() else []:
            name = _read(zone / "name")
            if ":" in zone.name[len("intel-rapl:"):] or not (name or "").startswith("package"):
                continue  # a sub-zone (core, uncore, dram) is inside its package's figure
            wrap = _read(zone / "max_energy_range_uj")
            if _read(zone / "energy_uj") is not None and wrap is not None and wrap.isdigit():
                self.domains.append(_Domain(zone / "energy_uj", int(wrap)))
        self._last: tuple[float, list[int]] | None = None

    @property
    def present(self) -> bool:
        return bool(self.domains)

    def watts(self, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        values = [_read(domain.energy) for domain in self.domains]
        if not values or any(v is None or not v.isdigit() for v in values):
            return None
        energies = [int(v) for v in values if v is not None]
        last, self._last = self._last, (now, energies)
        if last is None or now <= last[0]:
            return None
        spent = sum((e - before) % domain.wrap_uj for e, before, domain in zip(energies, last[1], self.domains))
        return spent / 1e6 / (now - last[0])


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def power_reading(system: dict[str, Any]) -> tuple[float, str] | None:
    """The device's power now (watts) and what it covers, from a collector's system reading."""
    tegra = system.get("tegrastats") or {}
    if tegra.get("power_in_mw") is not None:
        rails = tegra.get("rails") or {}
        rail = next((name for name in ("VDD_IN", "POM_5V_IN") if name in rails), "the sum of its rails")
        return tegra["power_in_mw"] / 1000.0, f"Jetson board input ({rail}, tegrastats)"
    if system.get("rapl_watts") is not None:
        return float(system["rapl_watts"]), "CPU package (RAPL)"
    return None


def energy(system: dict[str, Any], inferences_per_s: float | None) -> dict[str, Any]:
    """The telemetry's ``power`` section: watts, what they cover, inferences per joule and joules per inference."""
    reading = power_reading(system)
    if reading is None:
        return {"watts": None, "source": NO_READING}
    watts, source = reading
    out: dict[str, Any] = {"watts": round(watts, 3), "source": source, "inferences_per_joule": None,
                           "joules_per_inference": None}
    if inferences_per_s and watts > 0:
        out["inferences_per_joule"] = round(inferences_per_s / watts, 3)
        out["joules_per_inference"] = round(watts / inferences_per_s, 5)
    return out
