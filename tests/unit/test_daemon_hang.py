"""A hung engine is detected and the daemon exits non-zero so the service manager restarts it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edged.artifacts.info import ModelInfo
from edged.config.models import Config
from edged.daemon import Daemon
from edged.engines.base import Done, InputSpec
from edged.errors import EngineError
from edged.pipeline.pipeline import Pipeline
from edged.publish.contract import Topics
from edged.publish.mqtt import MqttPublisher
from edged.publish.outbox import Outbox
from edged.publish.spool import Spool
from edged.testing.broker import free_port


class NeverEngine:
    """Takes batches and never answers (a wedged accelerator, a driver deadlock)."""

    def __init__(self) -> None:
        self.input_spec = InputSpec(1, 32, 32)
        self.num_slots = 2
        self.output_shape: tuple[int, ...] = (1, 10, 7)
        self._buffers = [np.zeros(self.input_spec.shape, np.uint8) for _ in range(2)]
        self.submitted = 0

    def start(self) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        return {"backend": "never"}

    def input_buffer(self, slot: int) -> np.ndarray:
        return self._buffers[slot]

    def submit(self, slot: int, done: Done) -> None:
        self.submitted += 1


def test_a_hung_engine_stops_the_daemon_with_an_error(tmp_path: Path, media: dict[str, Path]) -> None:
    config = Config.model_validate({
        "device_id": "hang", "mqtt": {"host": "127.0.0.1", "port": free_port()},
        "engine": {"model": "x", "hang_timeout_s": 1}, "http": {"listen": ""},
        "telemetry": {"interval_s": 0},
        "cameras": {"cam": {"url": str(media["street.mp4"]), "loop": True}},
    })
    model = ModelInfo(path=tmp_path / "x.onnx", name="x", height=32, width=32, labels=("a", "b"), head="yolov5")
    engine = NeverEngine()
    publisher = MqttPublisher(config.mqtt, Topics("edged", "hang"), "edged-hang",
                              Outbox(Spool(tmp_path / "spool.db", 1 << 20)))
    pipeline = Pipeline(config=config, model=model, engine=engine, outlet=publisher, run_id="test")
    daemon = Daemon(config=config, pipeline=pipeline, publisher=publisher)
    with pytest.raises(EngineError, match="inference has not returned for 1 s: the engine is hung"):
        asyncio.run(asyncio.wait_for(daemon.run(), 60))
    assert engine.submitted >= 1
