"""Linux thermal zones (``/sys/class/thermal/thermal_zone*/{type,temp}``), chosen by type.

Zone numbers differ between boards, kernels and even boots, so zones are picked by
their ``type``. Readings the kernel cannot give (EINVAL, ENODATA) or that are not a
temperature (Jetson's ``-256`` placeholder, a NUC's ``-263.2``) are dropped, and so
are zones that never say anything useful: the Nano's ``PMIC-Die`` is fixed at 100 C,
Wi-Fi and fan estimates are not the SoC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# What "the device temperature" means, best first: Intel package, Raspberry Pi and
# mainline SoCs, Jetson (L4T names, then JetPack 6 names), Rockchip, ACPI.
PREFERRED = (
    "x86_pkg_temp", "cpu-thermal", "cpu_thermal", "CPU-therm", "tj-thermal", "soc-thermal", "soc_thermal",
    "bigcore0-thermal", "bigcore1-thermal", "gpu-thermal", "GPU-therm", "acpitz",
)
IGNORED = re.compile(r"^(PMIC-Die|thermal-fan-est|iwlwifi.*|INT3400.*|B0D4|NGFF)$")
VALID_C = (-40.0, 150.0)


@dataclass(frozen=True)
class Zone:
    index: int
    type: str
    temp_c: float | None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def read_zones(root: Path = Path("/")) -> list[Zone]:
    base = root / "sys" / "class" / "thermal"
    zones = []
    for directory in base.glob("thermal_zone*"):
        suffix = directory.name[len("thermal_zone"):]
        if not suffix.isdigit():
            continue
        raw = _read(directory / "temp")
        temp: float | None = None
        if raw is not None and re.fullmatch(r"-?\d+", raw):
            value = int(raw) / 1000.0
            temp = value if VALID_C[0] <= value <= VALID_C[1] else None
        zones.append(Zone(int(suffix), _read(directory / "type") or "", temp))
    return sorted(zones, key=lambda z: z.index)


def device_temperature(zones: list[Zone], preferred: list[str] | tuple[str, ...] = ()) -> tuple[str, float] | None:
    """The zone that stands for the device, and its temperature.

    ``preferred`` (from the config) wins; otherwise the built-in order; otherwise the
    hottest readable zone that is not on the ignore list.
    """
    readable = [z for z in zones if z.temp_c is not None]
    for wanted in (*preferred, *PREFERRED):
        matches = [z for z in readable if z.type == wanted]
        if matches:
            hottest = max(matches, key=lambda z: z.temp_c or 0.0)
            return hottest.type or f"thermal_zone{hottest.index}", float(hottest.temp_c or 0.0)
    others = [z for z in readable if not IGNORED.match(z.type)]
    if not others:
        return None
    hottest = max(others, key=lambda z: z.temp_c or 0.0)
    return hottest.type or f"thermal_zone{hottest.index}", float(hottest.temp_c or 0.0)
