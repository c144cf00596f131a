"""Which nodes quantization must leave in float: the YOLO decode tail, found from the graph."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper as oh
from onnx import numpy_helper

from edged.engines.ov import openvino as ov
from edged.tools.quantize import decode_tail


def v8_style_head() -> bytes:
    """conv -> (box: reshape, transpose, softmax, DFL conv, reshape, anchors, stride) + (cls: sigmoid) -> concat"""
    n, bins, classes = 16, 16, 2
    def c(name: str, array: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(array), name)

    inits = [
        c("w_head", np.random.default_rng(0).normal(0, 0.1, (4 * bins + classes, 3, 4, 4)).astype(np.float32)),
        c("b_head", np.zeros(4 * bins + classes, np.float32)),
        c("split", np.array([4 * bins, classes], np.int64)),
        c("shape_box", np.array([1, 4, bins, n], np.int64)),
        c("w_dfl", np.arange(bins, dtype=np.float32).reshape(1, bins, 1, 1)),
        c("shape_dist", np.array([1, 4, n], np.int64)),
        c("shape_flat", np.array([1, 4 * bins + classes, n], np.int64)),
        c("anchors", np.ones((1, 4, n), np.float32)),
        c("stride", np.array(8.0, np.float32)),
    ]
    nodes = [
        oh.make_node("Conv", ["images", "w_head", "b_head"], ["feat"], name="head_conv", strides=[4, 4]),
        oh.make_node("Reshape", ["feat", "shape_flat"], ["flat"], name="flatten"),
        oh.make_node("Split", ["flat", "split"], ["box", "cls"], name="split_box_cls", axis=1),
        oh.make_node("Reshape", ["box", "shape_box"], ["box4"], name="dfl_reshape"),
        oh.make_node("Transpose", ["box4"], ["box_t"], name="dfl_transpose", perm=[0, 2, 1, 3]),
        oh.make_node("Softmax", ["box_t"], ["prob"], name="dfl_softmax", axis=1),
        oh.make_node("Conv", ["prob", "w_dfl"], ["dist"], name="dfl_conv"),
        oh.make_node("Reshape", ["dist", "shape_dist"], ["dist3"], name="dfl_out"),
        oh.make_node("Add", ["dist3", "anchors"], ["xywh"], name="decode_anchor"),
        oh.make_node("Mul", ["xywh", "stride"], ["pixels"], name="decode_stride"),
        oh.make_node("Sigmoid", ["cls"], ["scores"], name="cls_sigmoid"),
        oh.make_node("Concat", ["pixels", "scores"], ["output0"], name="final_concat", axis=1),
    ]
    inputs = [oh.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, 16, 16])]
    outputs = [oh.make_tensor_value_info("output0", onnx.TensorProto.FLOAT, [1, 4 + classes, n])]
    graph = oh.make_graph(nodes, "v8head", inputs, outputs, inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    serialized: bytes = model.SerializeToString()
    return serialized


def test_the_dfl_decode_stays_in_float_and_the_head_convolution_does_not() -> None:
    model = ov.Core().read_model(v8_style_head())
    tail = set(decode_tail(model))
    # (OpenVINO names the last node after the output tensor: final_concat is "output0")
    assert {"dfl_softmax", "dfl_conv", "decode_anchor", "decode_stride", "cls_sigmoid", "output0"} <= tail
    assert "head_conv" not in tail
    kinds = {op.get_friendly_name(): op.get_type_name() for op in model.get_ops()}
    assert all(kinds[name] != "Convolution" or name == "dfl_conv" for name in tail)


def test_the_yolov3_tiny_tail_is_its_two_yolo_heads(built_model) -> None:  # type: ignore[no-untyped-def]
    model = ov.Core().read_model(str(built_model.path("fp32")))
    tail = decode_tail(model)
    kinds = {op.get_friendly_name(): op.get_type_name() for op in model.get_ops()}
    assert {kinds[name] for name in tail} >= {"Sigmoid", "Exp", "Concat", "Multiply", "Add"}
    assert not {kinds[name] for name in tail} & {"Convolution", "GroupConvolution"}
    assert sum(1 for name in tail if kinds[name] == "Exp") == 2  # one per YOLO layer
