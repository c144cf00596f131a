"""What edged serves: the page and its API, Home Assistant discovery, snapshots."""

from __future__ import annotations

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from edged.addresses import is_loopback
from edged.config.base import Name, Strict


class HttpAuthConfig(Strict):
    username: str = Field(min_length=1)
    password: SecretStr = Field(description="use ${cred:NAME} or ${ENV}: never the password itself in the file")

    @field_validator("password")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value


class HttpConfig(Strict):
    listen: str = Field("127.0.0.1:9108", description="host:port for the page, snapshots, /healthz and /metrics; "
                                                      "empty: off")
    page: bool = Field(True, description="serve the web page and its pictures (/healthz and /metrics always)")
    auth: HttpAuthConfig | None = Field(None, description="basic auth; required (or token) off loopback")
    token: SecretStr | None = Field(None, description="'Authorization: Bearer <token>'; required (or auth) off "
                                                      "loopback")

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        if value:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 <= int(port) < 65536:
                raise ValueError("must be host:port, e.g. 127.0.0.1:9108; port 0: any free port; empty: off")
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. the output of 'openssl rand -hex 16')")
        return value

    @model_validator(mode="after")
    def _guarded(self) -> HttpConfig:
        if self.listen and not is_loopback(self.listen) and self.auth is None and self.token is None:
            raise ValueError(f"listen '{self.listen}' is reachable from other machines: set 'auth' (username and "
                             f"password) or 'token', or listen on 127.0.0.1")
        return self


class HomeAssistantConfig(Strict):
    enabled: bool = Field(True, description="publish MQTT discovery so Home Assistant creates edged's entities")
    prefix: Name = Field("homeassistant", description="Home Assistant's discovery prefix")
    configuration_url: str | None = Field(
        None, description="the device page's link in Home Assistant; unset: the web page's address when it listens "
                          "beyond loopback")


class SnapshotsConfig(Strict):
    enabled: bool = Field(True, description="a JPEG of each object's best frame on <prefix>/<camera>/<label>/snapshot "
                                            "and over HTTP")
    width: int = Field(960, ge=160, le=3840, description="pictures are kept and encoded at most this wide: the "
                       "frame divided by a whole number (a 1280x720 camera: 640x360; 1920x1080: 960x540)")
    crop: bool = Field(False, description="the object and some of its surroundings instead of the whole frame")
    boxes: bool = Field(True, description="draw the object's box")
    quality: int = Field(80, ge=10, le=100, description="JPEG quality")
    max_per_s: float = Field(4.0, gt=0, le=100, description="JPEG encodes a second at most (snapshots and the live "
                                                            "pictures together); the rest wait or are skipped")
