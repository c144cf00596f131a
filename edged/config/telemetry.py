"""Telemetry, alerts and the thermal governor."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from edged.config.base import Strict


class TelemetryConfig(Strict):
    interval_s: float = Field(10.0, ge=0, le=3600, description="0 turns telemetry off")
    tegrastats: Literal["auto", "off"] = Field("auto", description="auto: read tegrastats where it exists (Jetson)")
    vcgencmd: Literal["auto", "off"] = Field("auto", description="auto: read vcgencmd where it exists (Pi)")
    thermal_zones: list[str] = Field(
        default_factory=list, description="zone types that mean 'the device temperature'; empty: a built-in list"
    )
    root: Path = Field(Path("/"), description="where /sys and /proc are (a container may mount the host's)")


class AlertsConfig(Strict):
    infer_ms_p95: float = Field(100.0, gt=0)
    memory_pct: float = Field(90.0, gt=0, le=100)
    temp_c: float = Field(80.0, gt=0, le=150, description="the device temperature's soft limit")
    frame_age_ms_p95: float = Field(500.0, gt=0)
    camera_down_s: float = Field(30.0, ge=0, description="a camera not online this long is down")
    throttling: bool = Field(True, description="alert on any throttle bit (Raspberry Pi)")
    hysteresis: float = Field(0.1, ge=0, lt=1, description="resolve below threshold x (1 - hysteresis)")


class GovernorConfig(Strict):
    enabled: bool = True
    margin_c: float = Field(5.0, ge=0, le=50, description="start slowing this far below alerts.temp_c")
    resume_c: float = Field(10.0, ge=0, le=50, description="restore once this far below alerts.temp_c")
    memory_pct: float = Field(90.0, gt=0, le=100, description="slow down above this memory use too")
    step_s: float = Field(10.0, ge=0, description="at least this long between two steps")
    min_fps: float = Field(1.0, gt=0, description="the governor never slows a camera below this")

    @model_validator(mode="after")
    def _order(self) -> GovernorConfig:
        if self.resume_c < self.margin_c:
            raise ValueError("'resume_c' must be at least 'margin_c' (restore only once cooler than when slowing)")
        return self
