"""The broker: where, who, TLS, reconnecting, the topic prefix, the spool."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    model_validator,
)

from edged.config.base import Name, Strict, TlsConfig


class MqttConfig(Strict):
    host: str = Field("localhost", min_length=1)
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        "auto", description="MQTT 5 where the broker speaks it (a publish its ACL refuses is then seen and counted), "
                            "else 3.1.1")
    tls: TlsConfig | None = None
    topic_prefix: Name = "edged"
    detections_qos: Literal[0, 1] = 0
    spool: Path | None = Field(None, description="QoS 1 outbox file; unset: $STATE_DIRECTORY or ~/.local/state/edged")
    spool_max_mb: float = Field(64.0, gt=0, le=100000, description="oldest messages go first above this")
    reconnect_min_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    controls: bool = Field(False, description="take <prefix>/<camera>/detect/set and motion/set (ON/OFF) from the "
                                              "broker; restrict who may publish them with the broker's ACL")

    @model_validator(mode="after")
    def _auth(self) -> MqttConfig:
        if self.password is not None and self.username is None:
            raise ValueError("'password' needs a 'username'")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("'reconnect_max_s' must be at least 'reconnect_min_s'")
        return self
