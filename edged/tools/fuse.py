"""Detectors with several outputs (or a second input), fused at export into one output of a layout edged reads, so
every engine (OpenVINO, ONNX Runtime, TensorRT, a KServe server given edged's ONNX) runs one tensor out and Python
decodes one array. Told apart by their output names and shapes, as their reference exporters write them:

- D-FINE, DEIM, RT-DETRv2 (lyuwenyu's deploy export): inputs ``images`` and ``orig_target_sizes`` ``[N, 2]`` (w, h),
  outputs ``labels [N, Q]``, ``boxes [N, Q, 4]`` (xyxy in ``orig_target_sizes`` pixels), ``scores [N, Q]``. edged
  feeds ``orig_target_sizes`` as a constant, the input's own size, so the boxes come in input pixels; fused into
  the end-to-end ``[N, Q, 6]``.
- RF-DETR: ``dets [N, Q, 4]`` (normalised centre/size) and ``labels [N, Q, 91]`` (logits in COCO's 91-id space),
  ImageNet mean/std on RGB 0..1: the mean/std is folded into the graph, the 91 ids are mapped to COCO's 80 labels,
  fused into DETR queries ``[N, Q, 4 + 80]``.
- YOLO-NAS (super-gradients) without NMS: ``[N, A, 4]`` xyxy and ``[N, A, C]`` class scores, fused into the raw
  YOLOv8-style ``[N, 4 + C, A]`` (edged runs NMS); with NMS inside, the flat ``[K, 7]`` (image, x1, y1, x2, y2,
  score, class) and the batched ``num_predictions [N, 1]``, ``pred_boxes [N, K, 4]``, ``pred_scores [N, K]``,
  ``pred_classes [N, K]``, fused into the end-to-end ``[N, K, 6]`` (rows past the count scored 0).

A model with one image input and one output is left as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edged.errors import ModelError
from edged.models.images import IMAGENET_MEAN, IMAGENET_STD
from edged.models.labels import COCO91_OF_80
from edged.tools.model_io import dims


class _Graph:
    """Appends nodes and constants to a graph, each name unique."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.n = 0

    def const(self, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.n += 1
        name = f"edged_fuse_c{self.n}"
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        self.n += 1
        name = f"edged_fuse_{kind.lower()}{self.n}"
        self.graph.node.append(helper.make_node(kind, inputs, [name], name=name, **attrs))
        return name

    def cols(self, tensor: str, lo: int, hi: int, axis: int = -1) -> str:
        return self.op("Slice", [tensor, self.const(np.array([lo])), self.const(np.array([hi])),
                                 self.const(np.array([axis]))])

    def unsqueeze(self, tensor: str, axis: int = -1) -> str:
        return self.op("Unsqueeze", [tensor, self.const(np.array([axis]))])

    def as_float(self, tensor: str) -> str:
        return self.op("Cast", [tensor], to=1)

    def fixed_rows(self, rows: str, n: int, width: int) -> str:
        """``rows`` ``[K, width]`` (K not fixed) -> the ``n`` best by score (column 4), padded with zero rows."""
        from onnx import helper

        padded = self.op("Concat", [rows, self.const(np.zeros((n, width), np.float32))], axis=0)
        score = self.op("Squeeze", [self.cols(padded, 4, 5), self.const(np.array([1]))])
        self.n += 1
        top = f"edged_fuse_top{self.n}"
        self.graph.node.append(helper.make_node("TopK", [score, self.const(np.array([n], np.int64))],
                                                [f"{top}_v", f"{top}_i"], name=top, axis=0))
        return self.op("Gather", [padded, f"{top}_i"], axis=0)


def fuse(onnx_path: Path, size: tuple[int, int] | None) -> str:
    """Rewrite ``onnx_path`` in place into one output if it is a known multi-output detector; returns what was
    done ('' when nothing was). ``size``: (height, width) it will run at (``--imgsz``), else the input's own."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) == 1 and len(graph.output) == 1 and len(dims(graph.output[0])) != 2:
        return ""  # the usual case: nothing to fuse
    image = dims(inputs[0]) if inputs else []
    if size is None and len(image) == 4 and isinstance(image[2], int) and isinstance(image[3], int):
        size = (image[2], image[3])
    if size is None:
        raise ModelError(f"{onnx_path}: its input size is not fixed; give --imgsz")
    height, width = size
    outputs = {o.name.lower(): o for o in graph.output}
    shapes = {name: dims(o) for name, o in outputs.items()}
    g = _Graph(graph)
    family, out, shape, description = "", "", [0, 0, 0], ""
    if len(inputs) == 2 and {"labels", "boxes", "scores"} <= set(outputs):
        family, description = "D-FINE/DEIM/RT-DETRv2 (orig_target_sizes fed as the input size)", "dfine"
        sizes = next(i for i in inputs if "size" in i.name.lower() or i is not inputs[0])
        _replace_input(graph, sizes.name, g.const(np.array([[width, height]], _np_type(sizes))))
        boxes, scores, labels = (outputs[k].name for k in ("boxes", "scores", "labels"))
        out = g.op("Concat", [g.as_float(boxes), g.unsqueeze(g.as_float(scores)), g.unsqueeze(g.as_float(labels))],
                   axis=-1)
        shape = [1, int(shapes["boxes"][1]) if isinstance(shapes["boxes"][1], int) else 300, 6]
    elif len(inputs) == 1 and {"dets", "labels"} <= set(outputs):
        family, description = "RF-DETR (ImageNet mean/std folded in, COCO's 91 ids mapped to 80)", "rfdetr"
        logits = g.op("Gather", [outputs["labels"].name, g.const(np.array(COCO91_OF_80, np.int64))], axis=-1)
        out = g.op("Concat", [g.as_float(outputs["dets"].name), g.as_float(logits)], axis=-1)
        _normalise_input(graph, inputs[0].name)
        queries = shapes["dets"][1]
        shape = [1, queries if isinstance(queries, int) else 300, 4 + len(COCO91_OF_80)]
    elif len(inputs) == 1 and len(outputs) == 2 and {"logits", "pred_boxes"} <= set(outputs):
        # Hugging Face transformers' detection heads (D-FINE, RT-DETR, ...): logits [N, Q, C], boxes cx cy w h 0..1
        family, description = "Hugging Face DETR-family (logits and pred_boxes into DETR queries)", "hf-detr"
        out = g.op("Concat", [g.as_float(outputs["pred_boxes"].name), g.as_float(outputs["logits"].name)], axis=-1)
        queries, classes = dims(outputs["logits"])[1:]
        shape = [1, queries if isinstance(queries, int) else 300, 4 + int(classes) if isinstance(classes, int) else 0]
    elif len(inputs) == 1 and len(outputs) == 2 and _yolonas_raw(list(shapes.values())):
        family, description = "YOLO-NAS without NMS (boxes and scores into the YOLOv8 layout)", "yolonas-raw"
        boxes, scores = sorted(outputs.values(), key=lambda o: dims(o)[-1] != 4)
        xyxy = boxes.name
        lo, hi = g.cols(xyxy, 0, 2), g.cols(xyxy, 2, 4)
        centre = g.op("Mul", [g.op("Add", [lo, hi]), g.const(np.array(0.5, np.float32))])
        extent = g.op("Sub", [hi, lo])
        rows = g.op("Concat", [centre, extent, scores.name], axis=-1)
        out = g.op("Transpose", [rows], perm=[0, 2, 1])
        anchors, classes = dims(scores)[1], dims(scores)[2]
        shape = [1, 4 + int(classes), int(anchors) if isinstance(anchors, int) else 0]
    elif len(inputs) == 1 and len(outputs) == 4 and all(_ending(outputs, k) is not None for k in BATCHED):
        # super-gradients names them graph2_num_predictions, ... and leaves K symbolic (1000 at run time)
        family, description = "YOLO-NAS with NMS inside (batched: rows past num_predictions scored 0)", "yolonas-nms"
        count, boxes, pred_scores, classes = (_ending(outputs, k).name for k in BATCHED)
        scores = g.as_float(pred_scores)
        ones = g.op("ConstantOfShape", [g.op("Shape", [scores])], value=helper.make_tensor("one", 1, [1], [1.0]))
        rank = g.op("Sub", [g.op("CumSum", [ones, g.const(np.array(1, np.int64))]), g.const(np.array(1, np.float32))])
        live = g.as_float(g.op("Less", [rank, g.as_float(count)]))
        rows = g.op("Concat", [g.as_float(boxes), g.unsqueeze(g.op("Mul", [scores, live])),
                               g.unsqueeze(g.as_float(classes))], axis=-1)
        k = dims(_ending(outputs, "pred_scores"))[1]
        if isinstance(k, int) and k > 0:
            out, shape = rows, [1, k, 6]
        else:
            out = g.unsqueeze(g.fixed_rows(g.op("Squeeze", [rows, g.const(np.array([0]))]), 300, 6), 0)
            shape = [1, 300, 6]
    elif len(inputs) == 1 and len(outputs) == 1 and len(dims(graph.output[0])) == 2 and \
            dims(graph.output[0])[-1] == 7:
        family, description = "YOLO-NAS with NMS inside (flat [K, 7], one image)", "yolonas-nms"
        out = g.unsqueeze(g.fixed_rows(g.cols(graph.output[0].name, 1, 7), 300, 6), 0)
        shape = [1, 300, 6]
    if not family:
        return ""
    graph.output.clear()
    graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [d or None for d in shape]))
    _mark(model, description)
    try:
        onnx.save(model, str(onnx_path))
    except ValueError as exc:
        raise ModelError(f"{onnx_path}: could not rewrite the {family} outputs into one: {exc}") from None
    return family


BATCHED = ("num_predictions", "pred_boxes", "pred_scores", "pred_classes")


def _ending(outputs: dict[str, Any], suffix: str) -> Any:
    """The output whose (lower-case) name ends with ``suffix``; None if none."""
    return next((o for name, o in outputs.items() if name.endswith(suffix)), None)


def float_input(onnx_path: Path) -> bool:
    """A model whose image input is UINT8 (super-gradients' default export: 0..255 pixels, scaled inside) is given a
    float input cast to UINT8 first, so edged's fused conversion feeds it as any model; True when it was. The cast
    is exact for the whole numbers edged feeds, and the caller then feeds 0..255 rather than 0..1."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    image = next(i for i in graph.input if i.name not in inits)
    if image.type.tensor_type.elem_type != TensorProto.UINT8:
        return False
    inner = f"{image.name}_edged_u8"
    _reroute(graph, image.name, inner)
    graph.node.insert(0, helper.make_node("Cast", [image.name], [inner], name="edged_to_u8", to=TensorProto.UINT8))
    image.type.tensor_type.elem_type = TensorProto.FLOAT
    onnx.save(model, str(onnx_path))
    return True


def _np_type(value: Any) -> type:
    return np.int32 if value.type.tensor_type.elem_type == 6 else np.int64  # 6: INT32


def _reroute(graph: Any, name: str, to: str) -> None:
    """Every node that reads ``name`` reads ``to`` instead."""
    for node in graph.node:
        node.input[:] = [to if i == name else i for i in node.input]


def _replace_input(graph: Any, name: str, constant: str) -> None:
    _reroute(graph, name, constant)
    kept = [i for i in graph.input if i.name != name]
    del graph.input[:]
    graph.input.extend(kept)


def _normalise_input(graph: Any, name: str) -> None:
    """The model takes RGB 0..1, as edged feeds it; the ImageNet mean/std it was trained on moves inside."""
    from onnx import helper, numpy_helper

    inner = f"{name}_edged_normalised"
    _reroute(graph, name, inner)
    mean = np.array(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.array(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    graph.initializer.extend([numpy_helper.from_array(mean, "edged_imagenet_mean"),
                              numpy_helper.from_array(std, "edged_imagenet_std")])
    graph.node.insert(0, helper.make_node("Div", [f"{name}_edged_centred", "edged_imagenet_std"], [inner],
                                          name="edged_imagenet_div"))
    graph.node.insert(0, helper.make_node("Sub", [name, "edged_imagenet_mean"], [f"{name}_edged_centred"],
                                          name="edged_imagenet_sub"))


def _yolonas_raw(shapes: list[list[int | str]]) -> bool:
    if len(shapes) != 2 or any(len(s) != 3 for s in shapes):
        return False
    boxes = [s for s in shapes if s[-1] == 4]
    return len(boxes) == 1 and shapes[0][1] == shapes[1][1]


def _mark(model: Any, description: str) -> None:
    """Metadata for the layout recognition: the family fused, and for end-to-end rows that they are such."""
    kept = {p.key: p.value for p in model.metadata_props}
    kept["edged_fused"] = description
    if description in ("dfine", "yolonas-nms"):
        kept["end2end"] = "True"
    del model.metadata_props[:]
    for key, value in kept.items():
        model.metadata_props.add(key=key, value=value)
