"""Memory and CPU from /proc: process RSS, system available memory and swap, per-core load.

On a Jetson the GPU has no memory of its own; it uses the same RAM, so "available"
is what the GPU and every process share, and the payload says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Memory:
    total_mb: float
    available_mb: float
    used_pct: float
    swap_total_mb: float
    swap_used_mb: float
    process_rss_mb: float | None
    process_threads: int | None


def _kb_fields(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name.strip()] = int(parts[0])
    return out


def read_memory(root: Path = Path("/"), pid: int | None = None) -> Memory:
    info = _kb_fields((root / "proc" / "meminfo").read_text())
    total = info.get("MemTotal", 0)
    available = info.get("MemAvailable", info.get("MemFree", 0))
    swap_total, swap_free = info.get("SwapTotal", 0), info.get("SwapFree", 0)
    rss = threads = None
    status_path = root / "proc" / str(pid or os.getpid()) / "status"
    try:
        status = _kb_fields(status_path.read_text())
        rss = status.get("VmRSS", 0) / 1024
        threads = status.get("Threads")
    except OSError:
        pass
    used_pct = 100.0 * (1.0 - available / total) if total else 0.0
    return Memory(total / 1024, available / 1024, used_pct, swap_total / 1024, (swap_total - swap_free) / 1024,
                  rss, threads)


class CpuLoad:
    """Per-core load between two reads of /proc/stat."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.path = root / "proc" / "stat"
        self._last: dict[str, tuple[int, int]] = {}

    def sample(self) -> dict[str, float]:
        loads = {}
        for line in self.path.read_text().splitlines():
            if not line.startswith("cpu"):
                continue
            name, *values = line.split()
            numbers = [int(v) for v in values]
            idle = numbers[3] + (numbers[4] if len(numbers) > 4 else 0)
            total = sum(numbers[:8])
            last = self._last.get(name)
            self._last[name] = (idle, total)
            if last is not None and total > last[1]:
                loads[name] = round(100.0 * (1.0 - (idle - last[0]) / (total - last[1])), 1)
        return loads
