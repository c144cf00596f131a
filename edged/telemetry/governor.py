"""Thermal and memory governor: slow detection down before the hardware throttles itself.

The governor works in levels. Level 0 is every camera at its configured rate. Each
level applies one more step of a fixed plan: halve the lowest-priority camera's
rate, then the next camera's, ...; then quarter them in the same order; then drop
them to ``min_fps``. It moves one level at a time, at most once per ``step_s``:
up while the device is hot (temperature within ``margin_c`` of the limit, a
throttle bit set, or memory above ``memory_pct``), down once it is clearly cool
again (``resume_c`` under the limit and nothing else wrong). Every change comes
with the reason, for the log and the alerts topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edged.config.models import GovernorConfig

FACTORS = (0.5, 0.25, 0.0)  # 0.0 means min_fps


@dataclass
class CameraRate:
    name: str
    priority: int
    base_fps: float | None  # configured fps; None: as fast as possible


@dataclass
class Decision:
    level: int
    previous: int
    reason: str
    rates: dict[str, float | None] = field(default_factory=dict)


class Governor:
    def __init__(self, config: GovernorConfig, limit_c: float, cameras: list[CameraRate]) -> None:
        self.config = config
        self.limit_c = limit_c
        self.cameras = sorted(cameras, key=lambda c: (c.priority, c.name))
        self.plan = [(c.name, f) for f in FACTORS for c in self.cameras]
        self.level = 0
        self.reason = ""
        self._last_change = float("-inf")
        self._measured: dict[str, float] = {}

    @property
    def max_level(self) -> int:
        return len(self.plan)

    def _hot(self, temp_c: float | None, throttled: list[str], memory_pct: float | None) -> str:
        cfg = self.config
        if temp_c is not None and temp_c >= self.limit_c - cfg.margin_c:
            return f"temperature {temp_c:.1f} C is within {cfg.margin_c:g} C of the {self.limit_c:g} C limit"
        if throttled:
            return f"the device reports {', '.join(throttled)}"
        if memory_pct is not None and memory_pct >= cfg.memory_pct:
            return f"memory use {memory_pct:.1f} % is over {cfg.memory_pct:g} %"
        return ""

    def _cool(self, temp_c: float | None, throttled: list[str], memory_pct: float | None) -> str:
        cfg = self.config
        if temp_c is not None and temp_c > self.limit_c - cfg.resume_c:
            return ""
        if throttled or (memory_pct is not None and memory_pct >= cfg.memory_pct - 5.0):
            return ""
        shown = f"{temp_c:.1f} C" if temp_c is not None else "unknown"
        return f"temperature {shown} is {cfg.resume_c:g} C or more under the {self.limit_c:g} C limit"

    def rates(self) -> dict[str, float | None]:
        """The rate cap of every camera at the current level (None: no cap)."""
        factors: dict[str, float] = {}
        for name, factor in self.plan[: self.level]:
            factors[name] = factor
        out: dict[str, float | None] = {}
        for camera in self.cameras:
            if camera.name not in factors:
                out[camera.name] = None
                continue
            base = camera.base_fps or self._measured.get(camera.name) or self.config.min_fps
            out[camera.name] = round(max(self.config.min_fps, base * factors[camera.name]), 2)
        return out

    def step(self, now: float, temp_c: float | None, throttled: list[str], memory_pct: float | None,
             measured_fps: dict[str, float] | None = None) -> Decision | None:
        """One evaluation; a Decision when the level changed."""
        if not self.config.enabled or now - self._last_change < self.config.step_s:
            return None
        hot = self._hot(temp_c, throttled, memory_pct)
        previous = self.level
        if hot and self.level < self.max_level:
            if self.level == 0 and measured_fps:
                # Unthrottled cameras are slowed from what they were doing when it got hot.
                self._measured = {k: v for k, v in measured_fps.items() if v}
            self.level += 1
            self.reason = hot
        elif not hot and self.level > 0:
            cool = self._cool(temp_c, throttled, memory_pct)
            if not cool:
                return None
            self.level -= 1
            self.reason = cool
        else:
            return None
        self._last_change = now
        return Decision(self.level, previous, self.reason, self.rates())
