"""Classifiers for tests and the bench, written as ONNX graphs (no weights to download): real models that
OpenVINO and ONNX Runtime load and run like any ImageNet classifier, with an ``[N, 3, H, W]`` input and an
``[N, C]`` output.

``dominant_channel``: global average pooling, then logits proportional to each channel's mean: on crops taken with
``color: RGB``, ``mean: 0``, ``std: 1`` it names the dominant primary (red, green or blue) of the object. It is a
real second opinion of the crop's content with a known right answer, which a random-weight ResNet is not.
"""

from __future__ import annotations

from pathlib import Path

LABELS = ("red", "green", "blue")


def dominant_channel(path: Path, size: int = 32, classes: int = 3, sharpness: float = 12.0) -> Path:
    """Write the classifier to ``path`` (an .onnx file); ``classes`` other than 3 repeats channels (a model whose
    output does not match three labels, for the error path)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    pick = np.zeros((3, classes), np.float32)
    for column in range(classes):
        pick[column % 3, column] = sharpness
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["means"], axis=1),
        helper.make_node("MatMul", ["means", "pick"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "dominant_channel",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        initializer=[numpy_helper.from_array(pick, "pick")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, str(path))
    return path
