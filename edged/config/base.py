"""What every part of the configuration shares: names checked where they enter, strict models, TLS files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from edged.names import check_name

Name = Annotated[str, AfterValidator(check_name)]


def _numeric(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    return any(arg in (int, float) for arg in get_args(annotation))


class Strict(BaseModel):
    """Every config model: unknown keys are errors, nothing changes after validation, no inf or NaN."""

    # No inf or NaN anywhere: '.inf' for a timeout or a cooldown is a typo, never a wish.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools_for_numbers(cls, data: Any) -> Any:
        """YAML's true/false is not 1/0: 'port: true' is a mistake, not port 1."""
        if isinstance(data, dict):
            for key, value in data.items():
                field = cls.model_fields.get(key) if isinstance(key, str) else None
                if isinstance(value, bool) and field is not None and _numeric(field.annotation):
                    raise ValueError(f"'{key}' must be a number, not {str(value).lower()}")
        return data


class LogConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class TlsConfig(Strict):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure: bool = Field(False, description="skip the broker hostname check (the CA is still checked)")

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("give both 'cert' and 'key' for a client certificate, or neither")
        return self


class ReconnectConfig(Strict):
    min_s: float = Field(0.5, gt=0)
    max_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _order(self) -> ReconnectConfig:
        if self.max_s < self.min_s:
            raise ValueError("'max_s' must be at least 'min_s'")
        return self
