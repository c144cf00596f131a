"""The Darknet -> ONNX converter agrees with OpenCV's own Darknet reader."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edged.artifacts.darknet import convert, parse_cfg
from edged.artifacts.zoo import catalogue_files
from edged.engines.ov import openvino as ov
from edged.errors import ModelError
from tests.support.types import read_image


def run_onnx(onnx_bytes: bytes, blob: np.ndarray) -> np.ndarray:
    core = ov.Core()
    compiled = core.compile_model(core.read_model(onnx_bytes), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.asarray(compiled(blob)[0])


def opencv_outputs(cfg: Path, weights: Path, blob: np.ndarray) -> list[np.ndarray]:
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setInput(blob)
    return list(net.forward(net.getUnconnectedOutLayersNames()))


def assert_matches_opencv(ours: np.ndarray, theirs: list[np.ndarray], grids: list[tuple[int, int, int]],
                          size: int, tol: float = 1e-4) -> None:
    """ours: [boxes, 5+C] in pixels, anchor-major per head; OpenCV: per head, cell-major, normalised."""
    offset = 0
    for out, (anchors, gh, gw) in zip(theirs, grids):
        n = anchors * gh * gw
        mine = ours[offset:offset + n].reshape(anchors, gh, gw, -1).transpose(1, 2, 0, 3).reshape(n, -1)
        offset += n
        np.testing.assert_allclose(mine[:, :4] / size, out[:, :4], atol=tol)
        np.testing.assert_allclose(mine[:, 4], out[:, 4], atol=tol)
        # OpenCV reports class x objectness and zeroes it below its threshold.
        scores = mine[:, 5:] * mine[:, 4:5]
        kept = out[:, 5:] > 0
        np.testing.assert_allclose(scores[kept], out[:, 5:][kept], atol=tol)
        assert (scores[~kept] < 0.25).all()
    assert offset == ours.shape[0]


def test_yolov3_tiny_matches_opencv_on_a_real_photo(media: dict[str, Path]) -> None:
    cfg, weights, _ = catalogue_files("yolov3-tiny")
    model = convert(cfg, weights)
    assert (model.height, model.width, model.classes, model.boxes) == (416, 416, 80, 2535)
    image = read_image(media["zidane.jpg"])
    blob = cv2.dnn.blobFromImage(image, 1 / 255.0, (416, 416), swapRB=True, crop=False)
    ours = run_onnx(model.onnx_bytes, blob)
    assert ours.shape == (1, 2535, 85)
    assert_matches_opencv(ours[0], opencv_outputs(cfg, weights, blob), [(3, 13, 13), (3, 26, 26)], 416)


SYNTHETIC_CFG = """
[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=mish

[route]
layers=-1
groups=2
group_id=1

[convolutional]
filters=8
size=1
stride=1
pad=1
activation=leaky

[route]
layers=-1,-2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[shortcut]
from=-5
activation=linear

[maxpool]
size=2
stride=1

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=3,4,5
anchors=4,6, 8,10, 12,14, 16,20, 24,28, 32,40
classes=2
num=6

[route]
layers=-3

[upsample]
stride=2

[route]
layers=-1,1

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=4,6, 8,10, 12,14, 16,20, 24,28, 32,40
classes=2
num=6
"""


def _weights_for(cfg_text: str, rng: np.random.Generator) -> bytes:
    """Random weights in Darknet's layout for the synthetic cfg (header, then per conv layer)."""
    sections = parse_cfg(cfg_text)
    shapes: list[int] = []
    channels, parts = 3, [np.array([0, 2, 0], "<i4").tobytes(), np.array([0], "<i8").tobytes()]
    for s in sections[1:]:
        if s.kind == "convolutional":
            filters, size = s.integer("filters"), s.integer("size", 1)
            parts.append(rng.normal(0, 0.1, filters).astype("<f4").tobytes())
            if s.integer("batch_normalize", 0):
                parts.append(rng.uniform(0.5, 1.5, filters).astype("<f4").tobytes())
                parts.append(rng.normal(0, 0.1, filters).astype("<f4").tobytes())
                parts.append(rng.uniform(0.5, 1.5, filters).astype("<f4").tobytes())
            parts.append(rng.normal(0, 0.2, filters * channels * size * size).astype("<f4").tobytes())
            channels = filters
        elif s.kind == "route":
            refs = s.integers("layers")
            index = len(shapes)
            channels = sum(shapes[index + r if r < 0 else r] for r in refs) // s.integer("groups", 1)
        shapes.append(channels)
    return b"".join(parts)


def test_every_layer_type_matches_opencv(tmp_path: Path) -> None:
    """maxpool stride 1, grouped route, shortcut, upsample, mish, BN folding, two heads."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(SYNTHETIC_CFG)
    weights = tmp_path / "tiny.weights"
    weights.write_bytes(_weights_for(SYNTHETIC_CFG, np.random.default_rng(7)))
    model = convert(cfg, weights)
    assert model.classes == 2 and model.boxes == 3 * 16 * 16 + 3 * 32 * 32
    blob = np.random.default_rng(1).uniform(0, 1, (1, 3, 64, 64)).astype(np.float32)
    ours = run_onnx(model.onnx_bytes, blob)[0]
    assert_matches_opencv(ours, opencv_outputs(cfg, weights, blob), [(3, 16, 16), (3, 32, 32)], 64)


def test_batch_dimension_is_free(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(SYNTHETIC_CFG)
    weights = tmp_path / "tiny.weights"
    weights.write_bytes(_weights_for(SYNTHETIC_CFG, np.random.default_rng(7)))
    model = convert(cfg, weights)
    blob = np.random.default_rng(2).uniform(0, 1, (3, 3, 64, 64)).astype(np.float32)
    batched = run_onnx(model.onnx_bytes, blob)
    single = run_onnx(model.onnx_bytes, blob[1:2])
    np.testing.assert_allclose(batched[1], single[0], atol=1e-5)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda text, w: (text.replace("[maxpool]", "[maxpoool]", 1), w), "unsupported section [maxpoool]"),
        (lambda text, w: (text.replace("activation=mish", "activation=gelu"), w), "unsupported activation 'gelu'"),
        (lambda text, w: (text, w[:-400]), "ends early"),
        (lambda text, w: (text, w + b"\0" * 64), "left over"),
        (lambda text, w: (text.replace("[net]", "[net\n"), w), "malformed section header"),
        (lambda text, w: (text.replace("filters=21", "filters=20", 1), w), "expected 3 anchors"),
    ],
)
def test_bad_models_are_reported_with_their_place(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    text, data = mutate(SYNTHETIC_CFG, _weights_for(SYNTHETIC_CFG, np.random.default_rng(7)))
    cfg, weights = tmp_path / "bad.cfg", tmp_path / "bad.weights"
    cfg.write_text(text)
    weights.write_bytes(data)
    with pytest.raises(ModelError, match=message.replace("[", r"\[")):
        convert(cfg, weights)
