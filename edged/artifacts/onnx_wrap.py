"""Give an ONNX detector a uint8 BGR NHWC input, with the conversion inside the graph.

ONNX Runtime has no pre-processing API like OpenVINO's; prepending Cast, scale,
Transpose and a channel flip to the graph gives the runtime the same buffer the
letterbox writes, and lets it run the conversion in its own threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edged.errors import ModelError


def wrap_u8_bgr(path: Path, batch: int, color: str, scale: float) -> bytes:
    import onnx
    import onnx.helper as oh
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(f"{path}: expected one input, found {len(inputs)}")
    original = inputs[0]
    dims = original.type.tensor_type.shape.dim
    if len(dims) != 4 or not dims[2].dim_value or not dims[3].dim_value:
        raise ModelError(f"{path}: input must be [N, 3, H, W] with fixed H and W")
    if dims[0].dim_value and dims[0].dim_value != batch:
        raise ModelError(
            f"{path}: the model has a fixed batch of {dims[0].dim_value}, but engine.batch is {batch}; "
            f"export it with a dynamic batch or set engine.batch: {dims[0].dim_value}"
        )
    height, width = dims[2].dim_value, dims[3].dim_value
    name = original.name
    new_input = oh.make_tensor_value_info("frames_bgr_u8", onnx.TensorProto.UINT8, [batch, height, width, 3])
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset < 13:
        raise ModelError(f"{path}: ONNX opset {opset} is too old; export with opset 13 or newer")

    consts = [
        numpy_helper.from_array(np.array(1.0 / scale, dtype=np.float32), "edged_inv_scale"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "edged_flip_start"),
        numpy_helper.from_array(np.array([-(2**62)], dtype=np.int64), "edged_flip_end"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "edged_flip_axis"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "edged_flip_step"),
    ]
    nodes = [
        oh.make_node("Cast", ["frames_bgr_u8"], ["edged_f32"], to=onnx.TensorProto.FLOAT),
        oh.make_node("Mul", ["edged_f32", "edged_inv_scale"], ["edged_scaled"]),
        oh.make_node("Transpose", ["edged_scaled"], ["edged_nchw" if color == "RGB" else name], perm=[0, 3, 1, 2]),
    ]
    if color == "RGB":
        nodes.append(oh.make_node(
            "Slice", ["edged_nchw", "edged_flip_start", "edged_flip_end", "edged_flip_axis", "edged_flip_step"], [name],
        ))
    graph.input.remove(original)
    graph.input.insert(0, new_input)
    for node in reversed(nodes):
        graph.node.insert(0, node)
    graph.initializer.extend(consts)
    return bytes(model.SerializeToString())
