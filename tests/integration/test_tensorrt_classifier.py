"""A classifier on TensorRT, on the device it runs on. Skipped where TensorRT and pycuda are absent (they cannot be
installed on x86 development machines); on a Jetson this builds a real engine from the dominant-channel classifier
and checks its answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorrt", reason="TensorRT exists only on NVIDIA devices")
pytest.importorskip("pycuda.driver", reason="pycuda exists only on NVIDIA devices")

from edged.config.looks import ClassifierConfig
from edged.looks.classifier import Classifier
from edged.testing.classifiers import LABELS, dominant_channel

pytestmark = pytest.mark.integration

BATCH = 4


def build_engine(onnx: Path, engine: Path, size: int = 32) -> Path:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx.read_bytes()), [parser.get_error(i) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    shape = (BATCH, 3, size, size)
    profile.set_shape(network.get_input(0).name, shape, shape, shape)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    assert serialized is not None
    engine.write_bytes(bytes(serialized))
    return engine


def test_a_tensorrt_classifier_names_the_dominant_colour(tmp_path: Path) -> None:
    engine = build_engine(dominant_channel(tmp_path / "dominant.onnx"), tmp_path / "dominant.engine")
    config = ClassifierConfig(model=engine, labels=list(LABELS), backend="tensorrt", batch=BATCH, mean=(0, 0, 0),
                              std=(1, 1, 1))
    classifier = Classifier("dominant", config, tmp_path)
    classifier.start()
    crops = np.zeros((3, 32, 32, 3), np.uint8)
    crops[0, ..., 2] = 200  # BGR: red
    crops[1, ..., 1] = 200
    crops[2, ..., 0] = 200
    scores = classifier.infer(crops)
    assert [LABELS[i] for i in scores.argmax(axis=1)] == ["red", "green", "blue"]
    assert classifier.describe["backend"] == "tensorrt"
