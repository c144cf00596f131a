"""What an ONNX file says of itself, for ``edged export``: its metadata (``metadata_props``), every input and
output with its shape (for the one line that refuses a model), and one real output for a layout that a shape
alone does not settle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edged.errors import ModelError


def onnx_metadata(onnx_path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return {prop.key: prop.value for prop in model.metadata_props}


def dims(value: Any) -> list[int | str]:
    """An ONNX input's or output's shape: sizes, and names (or '?') where a size is not fixed."""
    return [d.dim_value or d.dim_param or "?" for d in value.type.tensor_type.shape.dim]


def _shown(value: Any) -> str:
    return "[" + ", ".join(str(d) for d in dims(value)) + "]"


def io_shapes(onnx_path: Path) -> str:
    """'inputs images [1, 3, 640, 640], orig_target_sizes [1, 2]; outputs boxes [1, 300, 4], ...'."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    inputs = ", ".join(f"{i.name} {_shown(i)}" for i in graph.input if i.name not in inits)
    outputs = ", ".join(f"{o.name} {_shown(o)}" for o in graph.output)
    return f"inputs {inputs}; outputs {outputs}"


def probe_output(onnx_path: Path, height: int, width: int, scale: float = 255.0) -> np.ndarray:
    """The model's first output for one mid-grey frame (OpenVINO on the CPU, f32)."""
    from edged.engines.ov import openvino as ov

    core = ov.Core()
    model = core.read_model(str(onnx_path))
    model.reshape({model.input(0).get_any_name(): ov.PartialShape([1, 3, height, width])})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    grey = np.full((1, 3, height, width), 114.0 / scale, np.float32)
    try:
        return np.asarray(compiled(grey)[compiled.output(0)])
    except RuntimeError as exc:
        raise ModelError(f"{onnx_path}: OpenVINO could not run it once: {str(exc).splitlines()[0]}") from None
