"""The real YOLOv3-tiny, rewritten by ONNX graph surgery into the output layouts other families export, so every
decoder is tested (and benched) with real weights: the same network, so each layout's detections on the same
frames must match the raw path box for box.

- ``end2end``: ``[1, 300, 6]`` x1 y1 x2 y2 (input pixels), score, class, NMS inside (ONNX NonMaxSuppression, one
  class per box as the raw path keeps), metadata ``end2end: True`` (YOLO26, YOLOv10);
- ``rtdetr``: ``[1, 300, 6]`` normalised centre/size, score, class, metadata as Ultralytics writes for RT-DETR
  (its frames are stretched: compare on square frames, where stretch and letterbox are one);
- ``detr``: ``[1, 300, 4 + C]`` normalised centre/size and a score per class;
- ``yolox``: YOLOX's raw grid ``[1, 3549, 5 + C]`` at 416 (offsets in the cell, log sizes), fed as YOLOX is:
  BGR, 0..255 (the rewrite converts back to what the network was trained on).

Only the bench, the demo and ``edged media`` import ``testing``; these rewrites are for tests and the bench.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

LAYOUTS = ("end2end", "rtdetr", "detr", "yolox")
QUERIES = 300
NMS_IOU = 0.45  # edged's default engine.iou: the same suppression as the raw path
NMS_SCORE = 0.05  # below any min_score: the decoder's threshold decides, as on the raw path


def rewrite(raw_onnx: Path, target: Path, layout: str, names: list[str]) -> Path:
    """Write ``raw_onnx`` (``[N, boxes, 5 + C]`` output, RGB 0..1 input) rewritten into ``layout``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(raw_onnx))
    graph = model.graph
    image = graph.input[0]
    height, width = (d.dim_value for d in image.type.tensor_type.shape.dim[2:])
    image.type.tensor_type.shape.dim[0].dim_value = 1  # NMS below is for one image at a time
    raw = graph.output[0].name
    boxes_n = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    classes = len(names)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(name: str, value: np.ndarray) -> str:
        name = f"lay_{name}"  # never a name a family's outputs use (scores, boxes, labels)
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(kind: str, inputs: list[str], name: str, **attrs: Any) -> str:
        name = f"lay_{name}"
        nodes.append(helper.make_node(kind, inputs, [name], name=name, **attrs))
        return name

    def part(lo: int, hi: int, name: str) -> str:  # raw[:, :, lo:hi]
        return op("Slice", [raw, const(f"{name}_lo", np.array([lo])), const(f"{name}_hi", np.array([hi])),
                            const(f"{name}_ax", np.array([2]))], name)

    if layout == "yolox":
        from edged.models.heads.raw import yolox_grid

        cells, strides = yolox_grid(height, width)
        if cells.shape[0] < boxes_n:
            raise ValueError(f"a YOLOX grid at {width}x{height} has fewer cells than the model's {boxes_n} boxes")
        stride = const("yx_stride", strides[:boxes_n, None].astype(np.float32))
        xy = op("Sub", [op("Div", [part(0, 2, "yx_xy"), stride], "yx_xys"),
                        const("yx_cells", cells[:boxes_n].astype(np.float32))], "yx_rxy")
        wh = op("Log", [op("Div", [part(2, 4, "yx_wh"), stride], "yx_whs")], "yx_rwh")
        grid = op("Concat", [xy, wh, part(4, 5 + classes, "yx_rest")], "yx_grid", axis=2)
        spare = np.zeros((1, cells.shape[0] - boxes_n, 5 + classes), np.float32)
        out = op("Concat", [grid, const("yx_spare", spare)], "yolox_out", axis=1)
        _feed_bgr_255(graph, inits, image.name)
        shape = [1, cells.shape[0], 5 + classes]
    else:
        xywh = part(0, 4, "xywh")
        scores = op("Mul", [part(5, 5 + classes, "cls"), part(4, 5, "obj")], "scores")
        # One class per box, as the raw path keeps: the other classes' scores to 0.
        best = op("ReduceMax", [scores], "best", axes=[2], keepdims=1)
        only = op("Mul", [scores, op("Cast", [op("Equal", [scores, best], "is_best")], "best_f", to=1)], "only")
        half = op("Mul", [op("Slice", [xywh, const("wh_lo", np.array([2])), const("wh_hi", np.array([4])),
                                       const("wh_ax", np.array([2]))], "wh"), const("half", np.array(0.5, np.float32))],
                  "half_wh")
        centre = op("Slice", [xywh, const("c_lo", np.array([0])), const("c_hi", np.array([2])),
                              const("c_ax", np.array([2]))], "centre")
        xyxy = op("Concat", [op("Sub", [centre, half], "xy1"), op("Add", [centre, half], "xy2")], "xyxy", axis=2)
        picked = op("NonMaxSuppression", [xyxy, op("Transpose", [only], "only_t", perm=[0, 2, 1]),
                                          const("nms_max", np.array([QUERIES], np.int64)),
                                          const("nms_iou", np.array([NMS_IOU], np.float32)),
                                          const("nms_score", np.array([NMS_SCORE], np.float32))], "picked")
        cls_i = op("Gather", [picked, const("col1", np.array(1, np.int64))], "cls_i", axis=1)
        box_i = op("Gather", [picked, const("col2", np.array(2, np.int64))], "box_i", axis=1)
        flat = op("Squeeze", [only, const("ax0", np.array([0]))], "flat_scores")
        score = op("GatherND", [flat, op("Concat", [op("Unsqueeze", [box_i, const("ax1", np.array([1]))], "bi"),
                                                    op("Unsqueeze", [cls_i, const("ax1b", np.array([1]))], "ci")],
                                         "bc", axis=1)], "score")
        score_c = op("Unsqueeze", [score, const("ax1c", np.array([1]))], "score_c")
        cls_f = op("Unsqueeze", [op("Cast", [cls_i], "cls_f0", to=1), const("ax1d", np.array([1]))], "cls_f")
        if layout == "end2end":
            where = op("Gather", [op("Squeeze", [xyxy, const("ax0b", np.array([0]))], "xyxy0"), box_i], "kept_xyxy",
                       axis=0)
            rows = op("Concat", [where, score_c, cls_f], "rows", axis=1)
        else:
            size = const("size", np.array([width, height, width, height], np.float32))
            norm = op("Div", [op("Gather", [op("Squeeze", [xywh, const("ax0c", np.array([0]))], "xywh0"), box_i],
                                 "kept_xywh", axis=0), size], "kept_norm")
            if layout == "rtdetr":
                rows = op("Concat", [norm, score_c, cls_f], "rows", axis=1)
            else:  # detr: a score per class, this box's class only
                onehot = op("OneHot", [cls_i, const("depth", np.array(classes, np.int64)),
                                       const("onoff", np.array([0.0, 1.0], np.float32))], "onehot", axis=-1)
                rows = op("Concat", [norm, op("Mul", [onehot, score_c], "per_class")], "rows", axis=1)
        width_out = 6 if layout in ("end2end", "rtdetr") else 4 + classes
        # Pad with empty rows, then keep the QUERIES best: a static [QUERIES, width] whatever NMS kept.
        padded = op("Concat", [rows, const("pad_rows", np.zeros((QUERIES, width_out), np.float32))], "padded",
                    axis=0)
        key = op("ReduceMax", [op("Slice", [padded, const("k_lo", np.array([4])),
                                            const("k_hi", np.array([width_out])), const("k_ax", np.array([1]))],
                                  "key_cols")], "key", axes=[1], keepdims=0)
        nodes.append(helper.make_node("TopK", [key, const("k", np.array([QUERIES], np.int64))],
                                      ["lay_top_v", "lay_top_i"], name="lay_top", axis=0))
        out = op("Unsqueeze", [op("Gather", [padded, "lay_top_i"], "best_rows", axis=0), const("ax0d", np.array([0]))],
                 f"{layout}_out")
        shape = [1, QUERIES, width_out]
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    graph.output.pop()
    graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, shape))
    metadata = {"names": repr(dict(enumerate(names))), "imgsz": repr([height, width]), "stride": "32"}
    if layout == "end2end":
        metadata |= {"end2end": "True", "description": "Ultralytics YOLO26n model (rewritten YOLOv3-tiny)"}
    elif layout == "rtdetr":
        metadata |= {"end2end": "False", "description": "Ultralytics rtdetr-l model (rewritten YOLOv3-tiny)"}
    del model.metadata_props[:]
    for key_, value in metadata.items():
        model.metadata_props.add(key=key_, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target


def _feed_bgr_255(graph: Any, inits: list[Any], name: str) -> None:
    """Make the model take BGR 0..255 (as YOLOX's preprocessing feeds it) and give the network RGB 0..1: two
    nodes in front of the graph."""
    from onnx import helper, numpy_helper

    inner = f"{name}_rgb01"
    inits.append(numpy_helper.from_array(np.array([2, 1, 0], np.int64), "bgr_order"))
    inits.append(numpy_helper.from_array(np.array(1.0 / 255.0, np.float32), "inv255"))
    _in_front(graph, name, inner, [
        helper.make_node("Gather", [name, "bgr_order"], [f"{name}_rgb"], name="to_rgb", axis=1),
        helper.make_node("Mul", [f"{name}_rgb", "inv255"], [inner], name="to_01")])


def _in_front(graph: Any, name: str, inner: str, nodes: list[Any]) -> None:
    """``nodes`` (in order, the last writing ``inner``) go in front of the graph's input ``name``: what read
    ``name`` reads ``inner``."""
    for node in graph.node:
        node.input[:] = [inner if i == name else i for i in node.input]
    for node in reversed(nodes):
        graph.node.insert(0, node)


FUSED = ("dfine", "rfdetr", "hf-detr", "yolonas-raw", "yolonas-flat", "yolonas-batched")


def rewrite_fused(raw_onnx: Path, target: Path, form: str, names: list[str]) -> Path:
    """The multi-output forms of ``edged.tools.fuse``, with their reference exporters' names and meanings, made from
    the single-output rewrites above (the same network and the same NMS)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edged.models.images import IMAGENET_MEAN, IMAGENET_STD
    from edged.models.labels import COCO91_OF_80

    base = {"dfine": "end2end", "rfdetr": "detr", "hf-detr": "detr", "yolonas-flat": "end2end",
            "yolonas-batched": "end2end"}
    if form == "yolonas-raw":
        model = onnx.load(str(raw_onnx))
        model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    else:
        rewrite(raw_onnx, target, base[form], names)
        model = onnx.load(str(target))
    graph = model.graph
    height, width = (d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[2:])
    rows = graph.output[0].name
    count = [0]

    def const(value: np.ndarray) -> str:
        count[0] += 1
        name = f"mo_c{count[0]}"
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(kind: str, inputs: list[str], name: str | None = None, **attrs: Any) -> str:
        count[0] += 1
        name = name or f"mo_{kind.lower()}{count[0]}"
        graph.node.append(helper.make_node(kind, inputs, [name], name=name, **attrs))
        return name

    def cols(tensor: str, lo: int, hi: int, name: str | None = None) -> str:
        return op("Slice", [tensor, const(np.array([lo])), const(np.array([hi])), const(np.array([-1]))], name)

    def squeeze_last(tensor: str, name: str | None = None) -> str:
        return op("Squeeze", [tensor, const(np.array([-1]))], name)

    outputs: list[tuple[str, int, list[int | str]]] = []
    float_, int64 = TensorProto.FLOAT, TensorProto.INT64
    if form == "dfine":
        graph.input.append(helper.make_tensor_value_info("orig_target_sizes", int64, [1, 2]))
        per_px = op("Div", [op("Cast", ["orig_target_sizes"], to=1), const(np.array([[width, height]], np.float32))])
        scale = op("Unsqueeze", [op("Concat", [per_px, per_px], axis=1), const(np.array([1]))])
        op("Mul", [cols(rows, 0, 4), scale], "boxes")
        squeeze_last(cols(rows, 4, 5), "scores")
        op("Cast", [squeeze_last(cols(rows, 5, 6))], "labels", to=7)
        outputs = [("labels", int64, [1, QUERIES]), ("boxes", float_, [1, QUERIES, 4]),
                   ("scores", float_, [1, QUERIES])]
    elif form == "rfdetr":
        op("Identity", [cols(rows, 0, 4)], "dets")
        probs = op("Concat", [cols(rows, 4, 4 + len(names)), const(np.zeros((1, QUERIES, 1), np.float32))], axis=-1)
        spread = [COCO91_OF_80.index(i) if i in COCO91_OF_80 else len(names) for i in range(91)]
        p = op("Clip", [op("Gather", [probs, const(np.array(spread, np.int64))], axis=-1),
                        const(np.array(1e-6, np.float32)), const(np.array(1 - 1e-6, np.float32))])
        op("Log", [op("Div", [p, op("Sub", [const(np.array(1.0, np.float32)), p])])], "labels")
        outputs = [("dets", float_, [1, QUERIES, 4]), ("labels", float_, [1, QUERIES, 91])]
        _take_imagenet_normalised(graph, np.array(IMAGENET_MEAN), np.array(IMAGENET_STD))
    elif form == "hf-detr":  # as transformers' D-FINE or RT-DETR exported with its two outputs: logits, boxes
        p = op("Clip", [cols(rows, 4, 4 + len(names)), const(np.array(1e-6, np.float32)),
                        const(np.array(1 - 1e-6, np.float32))])
        op("Log", [op("Div", [p, op("Sub", [const(np.array(1.0, np.float32)), p])])], "logits")
        op("Identity", [cols(rows, 0, 4)], "pred_boxes")
        outputs = [("logits", float_, [1, "queries", len(names)]), ("pred_boxes", float_, [1, "queries", 4])]
    elif form == "yolonas-raw":
        xy, wh = cols(rows, 0, 2), cols(rows, 2, 4)
        half = op("Mul", [wh, const(np.array(0.5, np.float32))])
        op("Concat", [op("Sub", [xy, half]), op("Add", [xy, half])], "boxes", axis=-1)
        op("Mul", [cols(rows, 5, 5 + len(names)), cols(rows, 4, 5)], "scores")
        boxes_n = graph.output[0].type.tensor_type.shape.dim[1].dim_value
        outputs = [("boxes", float_, [1, boxes_n, 4]), ("scores", float_, [1, boxes_n, len(names)])]
    elif form == "yolonas-flat":
        flat = op("Squeeze", [rows, const(np.array([0]))])
        op("Concat", [const(np.zeros((QUERIES, 1), np.float32)), flat], "detections", axis=1)
        outputs = [("detections", float_, [QUERIES, 7])]
    else:  # yolonas-batched, named and shaped as super-gradients 3.7.1 writes it: graph2_ names, K symbolic
        scores = squeeze_last(cols(rows, 4, 5), "graph2_pred_scores")
        live = op("Cast", [op("Greater", [scores, const(np.array(0.0, np.float32))])], to=1)
        op("Cast", [op("ReduceSum", [live, const(np.array([1]))], keepdims=1)], "graph2_num_predictions", to=7)
        op("Identity", [cols(rows, 0, 4)], "graph2_pred_boxes")
        op("Cast", [squeeze_last(cols(rows, 5, 6))], "graph2_pred_classes", to=7)
        outputs = [("graph2_num_predictions", int64, [1, 1]), ("graph2_pred_boxes", float_, [1, "k", 4]),
                   ("graph2_pred_scores", float_, [1, "k"]), ("graph2_pred_classes", int64, [1, "k"])]
        _take_u8_pixels(graph)  # its default export: UINT8 0..255 in, the scaling inside
    graph.output.pop()
    graph.output.extend(helper.make_tensor_value_info(name, kind, shape) for name, kind, shape in outputs)
    del model.metadata_props[:]
    model.metadata_props.add(key="names", value=repr(dict(enumerate(names))))
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target


def _take_u8_pixels(graph: Any) -> None:
    """super-gradients' default export: a UINT8 image input, cast and divided by 255 inside the graph."""
    from onnx import TensorProto, helper, numpy_helper

    image = graph.input[0]
    inner = f"{image.name}_01"
    graph.initializer.append(numpy_helper.from_array(np.array(1.0 / 255.0, np.float32), "u8_inv255"))
    _in_front(graph, image.name, inner, [
        helper.make_node("Cast", [image.name], [f"{image.name}_f"], name="u8_cast", to=1),
        helper.make_node("Mul", [f"{image.name}_f", "u8_inv255"], [inner], name="u8_scale")])
    image.type.tensor_type.elem_type = TensorProto.UINT8


def _take_imagenet_normalised(graph: Any, mean: np.ndarray, std: np.ndarray) -> None:
    """RF-DETR's input: ImageNet-normalised RGB; the network inside wants RGB 0..1 (x * std + mean first)."""
    from onnx import helper, numpy_helper

    name = graph.input[0].name
    inner = f"{name}_01"
    graph.initializer.extend([numpy_helper.from_array(std.astype(np.float32).reshape(1, 3, 1, 1), "in_std"),
                              numpy_helper.from_array(mean.astype(np.float32).reshape(1, 3, 1, 1), "in_mean")])
    _in_front(graph, name, inner, [
        helper.make_node("Mul", [name, "in_std"], [f"{name}_scaled"], name="in_mul_std"),
        helper.make_node("Add", [f"{name}_scaled", "in_mean"], [inner], name="in_add_mean")])
