"""Raspberry Pi: ``vcgencmd measure_temp`` and ``vcgencmd get_throttled``, every bit decoded.

The throttle mask (also printed by the kernel as "Under-voltage detected!
(0x00050005)") holds the current state in bits 0-3 and what happened since boot in
bits 16-19. Throttling or a capped clock means detections per second drop without
any change in edged: operators need to see it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass, field

BITS = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
}
SINCE_BOOT_SHIFT = 16


@dataclass(frozen=True)
class Throttle:
    raw: int
    now: tuple[str, ...] = field(default=())
    since_boot: tuple[str, ...] = field(default=())

    @property
    def active(self) -> bool:
        return bool(self.now)

    def as_dict(self) -> dict[str, object]:
        return {"raw": f"0x{self.raw:x}", "now": list(self.now), "since_boot": list(self.since_boot)}


def decode_throttled(value: int) -> Throttle:
    now = tuple(name for bit, name in BITS.items() if value & (1 << bit))
    since = tuple(name for bit, name in BITS.items() if value & (1 << (bit + SINCE_BOOT_SHIFT)))
    return Throttle(value, now, since)


_TEMP = re.compile(r"temp=(-?\d+(?:\.\d+)?)'C")
_THROTTLED = re.compile(r"throttled=(0x[0-9a-fA-F]+|\d+)")
_KERNEL = re.compile(r"(?:Under-voltage detected!|Voltage normalised) \((0x[0-9a-fA-F]+)\)")


@dataclass
class PiReading:
    temp_c: float | None = None
    throttle: Throttle | None = None
    error: str = ""  # why vcgencmd gave nothing (denied, failed): throttling would otherwise go unseen


def parse_vcgencmd(text: str) -> PiReading:
    """Any mix of ``measure_temp`` and ``get_throttled`` output; the last value of each wins."""
    reading = PiReading()
    for line in text.splitlines():
        temp = _TEMP.search(line)
        if temp:
            reading.temp_c = float(temp.group(1))
        throttled = _THROTTLED.search(line)
        if throttled:
            reading.throttle = decode_throttled(int(throttled.group(1), 0))
    return reading


def parse_kernel_line(line: str) -> Throttle | None:
    """The kernel's own report of the mask (dmesg, syslog)."""
    match = _KERNEL.search(line)
    return decode_throttled(int(match.group(1), 16)) if match else None


class VcgencmdReader:
    """Asks vcgencmd once per telemetry tick, without blocking the loop."""

    def __init__(self, command: str = "vcgencmd", timeout_s: float = 2.0) -> None:
        self.command = command
        self.timeout_s = timeout_s

    @staticmethod
    def available(command: str = "vcgencmd") -> bool:
        return shutil.which(command) is not None

    async def _run(self, *args: str) -> tuple[str, str]:
        """(output, error): current vcgencmd prints its own errors on stdout and exits non-zero."""
        try:
            process = await asyncio.create_subprocess_exec(
                self.command, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
        except OSError as exc:
            return "", f"vcgencmd {args[0]}: cannot run: {exc.strerror or exc}"
        try:
            out, _ = await asyncio.wait_for(process.communicate(), self.timeout_s)
        except asyncio.TimeoutError:
            process.kill()
            return "", f"vcgencmd {args[0]}: no answer within {self.timeout_s:g} s"
        text = out.decode(errors="replace")
        if process.returncode != 0:
            first = next((line.strip() for line in text.splitlines() if line.strip()), "no output")
            hint = " (is /dev/vcio allowed? see systemd/edged.service.d/raspberry-pi.conf.example)" \
                if "vcio" in text or "vchiq" in text or "ermission" in text else ""
            return "", f"vcgencmd {args[0]} failed (exit {process.returncode}): {first[:120]}{hint}"
        return text, ""

    async def read(self) -> PiReading:
        (temp, temp_error), (throttled, throttle_error) = await asyncio.gather(
            self._run("measure_temp"), self._run("get_throttled"))
        reading = parse_vcgencmd(temp + "\n" + throttled)
        reading.error = "; ".join(e for e in (temp_error, throttle_error) if e)
        return reading
