"""INT8 post-training quantization of an OpenVINO IR with NNCF.

The box-decoding tail of a YOLO graph (sigmoid/exp, grid offsets, anchor and stride
scaling, concatenation; YOLOv8's distribution-focal decode) must stay in float:
quantized, box coordinates in pixels lose whole pixels. It is found from the graph
itself: every node between the outputs and the last convolutions, where a
convolution fed by a softmax (the DFL projection) counts as part of the tail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edged.artifacts.meta import InputMeta
from edged.engines.ov import openvino as ov
from edged.errors import EngineUnavailable
from edged.models.yolo import Letterbox

log = logging.getLogger(__name__)

_COMPUTE = {"Convolution", "GroupConvolution", "MatMul"}
_PASS_THROUGH = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Convert"}


def _producer(port: Any) -> Any:
    return port.get_source_output().get_node()


def _is_dfl(conv: Any) -> bool:
    """A convolution whose data input comes (through reshapes) from a softmax."""
    node = _producer(conv.input(0))
    for _ in range(4):
        kind = node.get_type_name()
        if kind == "Softmax":
            return True
        if kind not in _PASS_THROUGH:
            return False
        node = _producer(node.input(0))
    return False


def _is_bias_add(node: Any) -> bool:
    """OpenVINO splits Conv + bias into Convolution -> Add(constant): the Add is part of the layer."""
    if node.get_type_name() != "Add":
        return False
    kinds = {_producer(port).get_type_name() for port in node.inputs()}
    return "Constant" in kinds and bool(kinds & _COMPUTE)


def decode_tail(model: ov.Model) -> list[str]:
    """Friendly names of the nodes between the last compute layers and the outputs.

    Constants are folded first (the ONNX frontend computes a conv's bias shape at
    run time; a saved IR has it folded already), so a bias is a plain Constant.
    """
    from openvino.passes import ConstantFolding, Manager

    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(model)
    tail: dict[str, Any] = {}
    stack = [_producer(result.input(0)) for result in model.get_results()]
    while stack:
        node = stack.pop()
        name = node.get_friendly_name()
        kind = node.get_type_name()
        if name in tail or kind in ("Parameter", "Constant"):
            continue
        if (kind in _COMPUTE and not _is_dfl(node)) or _is_bias_add(node):
            continue
        tail[name] = node
        stack.extend(_producer(port) for port in node.inputs())
    return sorted(tail)


def preprocess(image: np.ndarray, meta: InputMeta) -> np.ndarray:
    """A BGR frame -> the model's float input [1, 3, H, W], letterboxed as the daemon does."""
    box = Letterbox.fit(image.shape[1], image.shape[0], meta.width, meta.height, resize=meta.resize)
    canvas = np.empty((meta.height, meta.width, 3), np.uint8)
    box.apply(image, canvas)
    if meta.color == "RGB":
        canvas = canvas[:, :, ::-1]
    return (canvas.transpose(2, 0, 1)[None].astype(np.float32) / meta.scale).copy()


@dataclass
class QuantizeResult:
    path: Path
    seconds: float
    ignored: int
    subset_size: int


def quantize(fp32_xml: Path, images: Iterable[Path], meta: InputMeta, target: Path,
             preset: str = "mixed", subset_size: int = 300, transformer: bool = False) -> QuantizeResult:
    """Quantize ``fp32_xml`` with frames from ``images``; writes ``target`` (.xml/.bin). ``transformer``: NNCF's
    transformer model type (SmoothQuant, attention kept as NNCF knows it must be): the DETR family. On RT-DETR-l
    and RF-DETR Nano (the README's INT8 per layout has the figures) it left less error than the CNN default, and ran
    faster."""
    try:
        import nncf  # imported after edged.engines.ov, so NNCF's telemetry stays off too
    except ImportError:
        raise EngineUnavailable("INT8 quantization needs NNCF: pip install 'edged[export]'") from None

    # NNCF sets its own logger to INFO when imported and lists every node it skips.
    nncf.set_log_level(logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.WARNING)
    started = time.monotonic()
    paths = list(images)
    model = ov.Core().read_model(str(fp32_xml))
    ignored = decode_tail(model)
    log.info("quantizing %s with %d frames, preset %s%s; %d decode nodes kept in float",
             fp32_xml.name, min(subset_size, len(paths)), preset, ", transformer" if transformer else "", len(ignored))

    def transform(path: Path) -> np.ndarray:
        image = cv2.imread(str(path))
        if image is None:
            raise ValueError(f"{path}: not an image")
        return preprocess(image, meta)

    dataset = nncf.Dataset(paths, transform)
    presets = {"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}
    quantized = nncf.quantize(
        model, dataset, preset=presets[preset], subset_size=min(subset_size, len(paths)),
        ignored_scope=nncf.IgnoredScope(names=ignored),
        **({"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(target), compress_to_fp16=False)
    return QuantizeResult(target, time.monotonic() - started, len(ignored), min(subset_size, len(paths)))
