"""Darknet cfg + weights -> ONNX, with nothing but numpy and onnx.

Batch norm is folded into the convolutions. The [yolo] layers become a decode
head, so the graph ends in one YOLOv5-style tensor ``[N, boxes, 5 + classes]``:
centre x, centre y, width, height in input pixels, objectness, class scores.

Supported sections: net, convolutional, maxpool (any stride, including the
stride-1 pool of YOLOv3-tiny), upsample, route (with groups), shortcut, yolo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edged.errors import ModelError


@dataclass
class Section:
    kind: str
    line: int
    options: dict[str, str] = field(default_factory=dict)

    def integer(self, key: str, default: int | None = None) -> int:
        return int(self._get(key, default))

    def number(self, key: str, default: float | None = None) -> float:
        return float(self._get(key, default))

    def text(self, key: str, default: str | None = None) -> str:
        return self._get(key, default)

    def integers(self, key: str) -> list[int]:
        return [int(v) for v in self._get(key, None).split(",") if v.strip()]

    def _get(self, key: str, default: object) -> str:
        if key in self.options:
            return self.options[key]
        if default is None:
            raise ModelError(f"[{self.kind}] at line {self.line}: missing '{key}'")
        return str(default)


def parse_cfg(text: str, source: str = "<cfg>") -> list[Section]:
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ModelError(f"{source}:{number}: malformed section header {line!r}")
            sections.append(Section(kind=line[1:-1].strip(), line=number))
        elif "=" in line:
            if not sections:
                raise ModelError(f"{source}:{number}: option before the first section")
            key, value = line.split("=", 1)
            sections[-1].options[key.strip()] = value.strip()
        else:
            raise ModelError(f"{source}:{number}: cannot parse {line!r}")
    if not sections or sections[0].kind not in ("net", "network"):
        raise ModelError(f"{source}: the first section must be [net]")
    return sections


class _Weights:
    """Sequential reader over a .weights file, after its header."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        if len(data) < 16:
            raise ModelError(f"{path}: too short to be a Darknet weights file")
        major, minor, _rev = np.frombuffer(data[:12], dtype="<i4")
        offset = 20 if major * 10 + minor >= 2 else 16
        self._values = np.frombuffer(data[offset:], dtype="<f4")
        self._pos = 0
        self.path = path

    def take(self, count: int) -> np.ndarray:
        end = self._pos + count
        if end > self._values.size:
            raise ModelError(f"{self.path}: ends early; the cfg needs more weights than the file holds")
        chunk = self._values[self._pos:end].astype(np.float32)
        self._pos = end
        return chunk

    def check_consumed(self) -> None:
        left = self._values.size - self._pos
        if left:
            raise ModelError(f"{self.path}: {left} weights left over; the cfg does not match this file")


@dataclass
class _Tensor:
    name: str
    channels: int
    height: int
    width: int


class _GraphBuilder:
    def __init__(self) -> None:
        import onnx.helper as oh

        self.oh = oh
        self.nodes: list[object] = []
        self.initializers: list[object] = []
        self._count = 0

    def name(self, base: str) -> str:
        self._count += 1
        return f"{base}_{self._count}"

    def const(self, base: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs: Any) -> str:
        out = self.name(base)
        self.nodes.append(self.oh.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def split(self, source: str, sizes: list[int], axis: int, base: str) -> list[str]:
        outs = [self.name(f"{base}_part") for _ in sizes]
        split = self.const(f"{base}_sizes", np.array(sizes, dtype=np.int64))
        self.nodes.append(self.oh.make_node("Split", [source, split], outs, name=self.name(base), axis=axis))
        return outs


_ACTIVATIONS = ("leaky", "linear", "relu", "logistic", "mish", "swish")


def _activation(g: _GraphBuilder, x: str, kind: str, where: str) -> str:
    if kind == "linear":
        return x
    if kind == "leaky":
        return g.node("LeakyRelu", [x], "leaky", alpha=0.1)
    if kind == "relu":
        return g.node("Relu", [x], "relu")
    if kind == "logistic":
        return g.node("Sigmoid", [x], "sigmoid")
    if kind == "mish":
        return g.node("Mul", [x, g.node("Tanh", [g.node("Softplus", [x], "softplus")], "tanh")], "mish")
    if kind == "swish":
        return g.node("Mul", [x, g.node("Sigmoid", [x], "sigmoid")], "swish")
    raise ModelError(f"{where}: unsupported activation '{kind}' (supported: {', '.join(_ACTIVATIONS)})")


def _conv(g: _GraphBuilder, s: Section, x: _Tensor, weights: _Weights) -> _Tensor:
    filters = s.integer("filters")
    size = s.integer("size", 1)
    stride = s.integer("stride", 1)
    groups = s.integer("groups", 1)
    pad = size // 2 if s.integer("pad", 0) else s.integer("padding", 0)
    bias = weights.take(filters)
    if s.integer("batch_normalize", 0):
        scales = weights.take(filters)
        mean = weights.take(filters)
        var = weights.take(filters)
    kernel = weights.take(filters * (x.channels // groups) * size * size)
    kernel = kernel.reshape(filters, x.channels // groups, size, size)
    if s.integer("batch_normalize", 0):
        # Darknet normalises with (x - mean) / (sqrt(var) + 1e-6).
        factor = scales / (np.sqrt(var) + 1e-6)
        kernel = kernel * factor[:, None, None, None]
        bias = bias - mean * factor
    out = g.node(
        "Conv",
        [x.name, g.const("w", kernel.astype(np.float32)), g.const("b", bias.astype(np.float32))],
        "conv",
        kernel_shape=[size, size],
        strides=[stride, stride],
        pads=[pad, pad, pad, pad],
        group=groups,
    )
    out = _activation(g, out, s.text("activation", "logistic"), f"[convolutional] at line {s.line}")
    height = (x.height + 2 * pad - size) // stride + 1
    width = (x.width + 2 * pad - size) // stride + 1
    return _Tensor(out, filters, height, width)


def _pool_pads(length: int, size: int, stride: int, padding: int) -> tuple[int, int, int]:
    out = (length + padding - size) // stride + 1
    begin = padding // 2
    end = max((out - 1) * stride + size - length - begin, 0)
    return out, begin, end


def _maxpool(g: _GraphBuilder, s: Section, x: _Tensor) -> _Tensor:
    size = s.integer("size", s.integer("stride", 1))
    stride = s.integer("stride", 1)
    padding = s.integer("padding", size - 1)
    out_h, top, bottom = _pool_pads(x.height, size, stride, padding)
    out_w, left, right = _pool_pads(x.width, size, stride, padding)
    out = g.node(
        "MaxPool", [x.name], "maxpool",
        kernel_shape=[size, size], strides=[stride, stride], pads=[top, left, bottom, right],
    )
    return _Tensor(out, x.channels, out_h, out_w)


def _upsample(g: _GraphBuilder, s: Section, x: _Tensor) -> _Tensor:
    stride = s.integer("stride", 2)
    scales = g.const("scales", np.array([1, 1, stride, stride], dtype=np.float32))
    out = g.node("Resize", [x.name, "", scales], "upsample", mode="nearest")
    return _Tensor(out, x.channels, x.height * stride, x.width * stride)


def _route(g: _GraphBuilder, s: Section, index: int, outputs: list[_Tensor]) -> _Tensor:
    parts: list[_Tensor] = []
    for ref in s.integers("layers"):
        source = index + ref if ref < 0 else ref
        if not 0 <= source < index:
            raise ModelError(f"[route] at line {s.line}: layer {ref} is out of range")
        parts.append(outputs[source])
    groups, group_id = s.integer("groups", 1), s.integer("group_id", 0)
    if groups > 1:
        sliced = []
        for part in parts:
            width = part.channels // groups
            pieces = g.split(part.name, [width] * groups, axis=1, base="route_group")
            sliced.append(_Tensor(pieces[group_id], width, part.height, part.width))
        parts = sliced
    if any((p.height, p.width) != (parts[0].height, parts[0].width) for p in parts):
        raise ModelError(f"[route] at line {s.line}: routed layers differ in spatial size")
    name = parts[0].name if len(parts) == 1 else g.node("Concat", [p.name for p in parts], "route", axis=1)
    return _Tensor(name, sum(p.channels for p in parts), parts[0].height, parts[0].width)


def _shortcut(g: _GraphBuilder, s: Section, index: int, outputs: list[_Tensor], x: _Tensor) -> _Tensor:
    ref = s.integer("from")
    other = outputs[index + ref if ref < 0 else ref]
    if (other.channels, other.height, other.width) != (x.channels, x.height, x.width):
        raise ModelError(f"[shortcut] at line {s.line}: shapes differ")
    out = g.node("Add", [x.name, other.name], "shortcut")
    out = _activation(g, out, s.text("activation", "linear"), f"[shortcut] at line {s.line}")
    return _Tensor(out, x.channels, x.height, x.width)


def _yolo(g: _GraphBuilder, s: Section, x: _Tensor, net_h: int, net_w: int) -> tuple[str, int]:
    classes = s.integer("classes")
    anchors = np.array(s.integers("anchors"), dtype=np.float32).reshape(-1, 2)
    mask = s.integers("mask") if "mask" in s.options else list(range(len(anchors)))
    scale_xy = s.number("scale_x_y", 1.0)
    count, attrs = len(mask), 5 + classes
    if x.channels != count * attrs:
        raise ModelError(
            f"[yolo] at line {s.line}: input has {x.channels} channels, "
            f"expected {count} anchors x (5 + {classes} classes) = {count * attrs}"
        )
    gh, gw = x.height, x.width
    shape = g.const("shape", np.array([0, count, attrs, gh, gw], dtype=np.int64))
    y = g.node("Reshape", [x.name, shape], "yolo_reshape")
    y = g.node("Transpose", [y], "yolo_transpose", perm=[0, 1, 3, 4, 2])
    xy, wh, rest = g.split(y, [2, 2, 1 + classes], axis=4, base="yolo_split")

    gx, gy = np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32))
    grid = np.stack([gx, gy], axis=-1)[None, None] - (scale_xy - 1.0) / 2.0
    stride = np.array([net_w / gw, net_h / gh], dtype=np.float32)
    xy = g.node("Sigmoid", [xy], "yolo_xy")
    if scale_xy != 1.0:
        xy = g.node("Mul", [xy, g.const("scale_xy", np.array(scale_xy, dtype=np.float32))], "yolo_xy_scale")
    xy = g.node("Add", [xy, g.const("grid", grid.astype(np.float32))], "yolo_xy_grid")
    xy = g.node("Mul", [xy, g.const("stride", stride)], "yolo_xy_px")

    anchor_grid = anchors[mask].reshape(1, count, 1, 1, 2)
    wh = g.node("Mul", [g.node("Exp", [wh], "yolo_wh_exp"), g.const("anchors", anchor_grid)], "yolo_wh_px")
    rest = g.node("Sigmoid", [rest], "yolo_scores")
    y = g.node("Concat", [xy, wh, rest], "yolo_concat", axis=4)
    flat = g.const("flat", np.array([0, -1, attrs], dtype=np.int64))
    return g.node("Reshape", [y, flat], "yolo_out"), count * gh * gw


@dataclass
class DarknetModel:
    onnx_bytes: bytes
    height: int
    width: int
    classes: int
    boxes: int


def convert(cfg_path: Path, weights_path: Path, opset: int = 13) -> DarknetModel:
    """Convert a Darknet model to ONNX; raises ModelError naming the cfg line at fault."""
    import onnx
    import onnx.helper as oh

    sections = parse_cfg(cfg_path.read_text(), str(cfg_path))
    net = sections[0]
    height, width, channels = net.integer("height"), net.integer("width"), net.integer("channels", 3)
    weights = _Weights(weights_path)
    g = _GraphBuilder()
    x = _Tensor("images", channels, height, width)
    outputs: list[_Tensor] = []
    heads: list[str] = []
    classes = boxes = 0
    for index, s in enumerate(sections[1:]):
        where = f"{cfg_path}:{s.line}"
        if s.kind == "convolutional":
            x = _conv(g, s, x, weights)
        elif s.kind == "maxpool":
            x = _maxpool(g, s, x)
        elif s.kind == "upsample":
            x = _upsample(g, s, x)
        elif s.kind == "route":
            x = _route(g, s, index, outputs)
        elif s.kind == "shortcut":
            x = _shortcut(g, s, index, outputs, x)
        elif s.kind == "yolo":
            head, head_boxes = _yolo(g, s, x, height, width)
            heads.append(head)
            boxes += head_boxes
            layer_classes = s.integer("classes")
            if classes and layer_classes != classes:
                raise ModelError(f"{where}: [yolo] layers disagree on the number of classes")
            classes = layer_classes
        else:
            raise ModelError(f"{where}: unsupported section [{s.kind}]")
        outputs.append(x)
    weights.check_consumed()
    if not heads:
        raise ModelError(f"{cfg_path}: no [yolo] layer; only YOLO detectors are supported")
    output = heads[0] if len(heads) == 1 else g.node("Concat", heads, "heads", axis=1)
    g.nodes.append(oh.make_node("Identity", [output], ["output"], name="output_identity"))

    graph = oh.make_graph(
        g.nodes,  # type: ignore[arg-type]
        "darknet",
        [oh.make_tensor_value_info("images", onnx.TensorProto.FLOAT, ["batch", channels, height, width])],
        [oh.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["batch", boxes, 5 + classes])],
        initializer=g.initializers,  # type: ignore[arg-type]
    )
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)], producer_name="edged-darknet")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return DarknetModel(model.SerializeToString(), height, width, classes, boxes)
