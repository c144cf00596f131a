"""Configuration: pydantic models and the YAML loader."""

from edged.config.loader import load_config
from edged.config.models import CameraConfig, Config, DetectConfig, MqttConfig

__all__ = ["CameraConfig", "Config", "DetectConfig", "MqttConfig", "load_config"]
