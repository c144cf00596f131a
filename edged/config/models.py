"""The configuration, as pydantic v2 models. Unknown keys are errors everywhere.

A minimal working config is a handful of lines::

    engine: {model: yolov3-tiny}
    cameras:
      gate: {url: "rtsp://user:${CAM_PW}@10.0.0.7/stream1", fps: 10}

The models live per area (base, camera, engines, mqtt, service, telemetry); this module keeps the root
``Config`` and re-exports the rest, so importers do not change.
"""

from __future__ import annotations

import socket
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from edged.config.base import LogConfig, Name, ReconnectConfig, Strict, TlsConfig
from edged.config.camera import (
    AreaName,
    CameraConfig,
    DetectConfig,
    DetectOverride,
    EventsConfig,
    LineConfig,
    MotionConfig,
    Point,
    Polygon,
    RestartBudgetConfig,
    SourceKind,
    TamperConfig,
    ZoneConfig,
    source_kind,
)
from edged.config.engines import (
    AnyEngineConfig,
    EngineConfig,
    KServeConfig,
    OnnxRuntimeConfig,
    OpenVinoConfig,
    TensorRtConfig,
)
from edged.config.looks import ClassifierConfig, ClassifyConfig, ColorsConfig, VerifierConfig, VerifyConfig, check_looks
from edged.config.mqtt import MqttConfig
from edged.config.service import HomeAssistantConfig, HttpAuthConfig, HttpConfig, SnapshotsConfig
from edged.config.telemetry import AlertsConfig, GovernorConfig, TelemetryConfig
from edged.names import FORBIDDEN

__all__ = [
    "AlertsConfig",
    "AnyEngineConfig",
    "AreaName",
    "CameraConfig",
    "ClassifierConfig",
    "ClassifyConfig",
    "ColorsConfig",
    "Config",
    "DetectConfig",
    "DetectOverride",
    "EngineConfig",
    "EventsConfig",
    "GovernorConfig",
    "HomeAssistantConfig",
    "HttpAuthConfig",
    "HttpConfig",
    "KServeConfig",
    "LineConfig",
    "LogConfig",
    "MotionConfig",
    "MqttConfig",
    "Name",
    "OnnxRuntimeConfig",
    "OpenVinoConfig",
    "Point",
    "Polygon",
    "ReconnectConfig",
    "RestartBudgetConfig",
    "SnapshotsConfig",
    "SourceKind",
    "Strict",
    "TamperConfig",
    "TelemetryConfig",
    "TensorRtConfig",
    "TlsConfig",
    "VerifierConfig",
    "VerifyConfig",
    "ZoneConfig",
    "source_kind",
]


def _hostname() -> str:
    name = socket.gethostname().split(".")[0] or "edged"
    return FORBIDDEN.sub("-", name)


class Config(Strict):
    device_id: Name = Field(default_factory=_hostname)
    log: LogConfig = Field(default_factory=LogConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    engine: EngineConfig
    fallbacks: list[EngineConfig] = Field(
        default_factory=list, description="engines to fall back on, in order (written as a list under 'engine': "
                                          "the first is the primary)")
    detect: DetectConfig = Field(default_factory=DetectConfig)
    cameras: dict[Name, CameraConfig] = Field(min_length=1)
    events: EventsConfig = Field(default_factory=EventsConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    governor: GovernorConfig = Field(default_factory=GovernorConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    snapshots: SnapshotsConfig = Field(default_factory=SnapshotsConfig)
    classifiers: dict[Name, ClassifierConfig] = Field(default_factory=dict, description="classifiers cameras use "
                                                      "under 'classify:'")
    verifier: VerifierConfig = Field(default_factory=VerifierConfig)
    _secrets: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @property
    def secrets(self) -> frozenset[str]:
        """Values that must never reach a log, topic or page: substituted ${...}, credentials, user-info."""
        return self._secrets

    def remember_secrets(self, secrets: frozenset[str]) -> None:
        self._secrets = secrets

    @model_validator(mode="before")
    @classmethod
    def _chain(cls, data: Any) -> Any:
        """``engine: [primary, fallback, ...]``: the primary is ``engine``, the rest ``fallbacks``."""
        if isinstance(data, dict) and isinstance(data.get("engine"), list):
            chain = data["engine"]
            if not chain:
                raise ValueError("'engine' is an empty list: give one engine, or a list of them (primary first)")
            if data.get("fallbacks"):
                raise ValueError("give the fallbacks either in the 'engine' list or under 'fallbacks', not both")
            data = {**data, "engine": chain[0], "fallbacks": chain[1:]}
        return data

    @field_validator("engine", mode="before")
    @classmethod
    def _default_backend(cls, value: Any) -> Any:
        if isinstance(value, dict) and "backend" not in value:
            return {**value, "backend": "openvino"}
        return value

    @field_validator("fallbacks", mode="before")
    @classmethod
    def _default_backends(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{**v, "backend": "openvino"} if isinstance(v, dict) and "backend" not in v else v for v in value]
        return value

    @model_validator(mode="after")
    def _cameras(self) -> Config:
        small = min(engine.batch for engine in self.engines)
        for name, camera in self.cameras.items():
            check_looks(name, camera.classify, self.classifiers)
            if camera.tiles and small < 2:
                raise ValueError(f"cameras.{name}.tiles: a frame's two tiles take two places of a batch; set "
                                 f"'batch: 2' (or more) on every engine (the smallest is {small})")
        return self

    @property
    def engines(self) -> list[AnyEngineConfig]:
        """The chain: the primary, then the fallbacks."""
        return [self.engine, *self.fallbacks]

    def detect_for(self, camera: str) -> DetectConfig:
        return self.cameras[camera].detect.over(self.detect)
