"""Every shipped config validates (the demo's own, and the examples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edged.config import load_config
from edged.tools.demo import demo_config_text

ROOT = Path(__file__).resolve().parents[2]
ENV = {"MQTT_PASSWORD": "x", "DRIVEWAY_PW": "x", "GATE_PW": "x", "YARD_PW": "x"}


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_validate(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    (tmp_path / "mqtt_password").write_text("x")  # what LoadCredential hands the service
    config = load_config(path, ENV, tmp_path, text=text.replace("/var/lib/edged/models/yolov8n.onnx", "yolov8n"))
    assert config.cameras


def test_demo_config_is_embedded_and_valid(tmp_path: Path) -> None:
    for clip in ("street.mp4", "zidane.mp4", "bus.mp4"):
        (tmp_path / clip).write_bytes(b"")
    config = load_config(Path("demo.yaml"), {"EDGED_DEMO_MEDIA": str(tmp_path), "EDGED_DEMO_PORT": "1883"},
                         text=demo_config_text())
    assert set(config.cameras) == {"street", "zidane", "bus"} and config.mqtt.port == 1883
    assert (ROOT / "configs" / "demo.yaml").read_text() == demo_config_text()
