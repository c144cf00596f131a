"""What the pipeline needs to know about a model, from its sidecar or the file itself.

Order of trust: edged's sidecar; the labels file named in the config; the class
names an Ultralytics export stores (ONNX metadata, or ``metadata.yaml`` beside an
OpenVINO export); COCO's 80 names for an 80-class model.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from pathlib import Path

from edged.artifacts import zoo
from edged.artifacts.meta import ModelMeta, check_labels, default_labels, onnx_labels, read_sidecar, verify_file
from edged.config.models import AnyEngineConfig
from edged.errors import ModelError
from edged.models.heads import Decoder, fits, make_decoder, recognise
from edged.models.heads.layout import unnamed_count
from edged.models.labels import read_labels


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    name: str
    height: int
    width: int
    color: str = "RGB"
    scale: float = 255.0
    labels: tuple[str, ...] | None = None
    head: str | None = None  # a layout of models.heads
    precision: str = "fp32"
    meta: ModelMeta | None = None
    resize: str = "letterbox"  # models.yolo.RESIZES: DETR exports are stretched, YOLOX in the top-left corner

    def __post_init__(self) -> None:
        check_labels(self.labels or (), self.path)

    def with_output(self, output_shape: tuple[int, ...]) -> ModelInfo:
        """Settle labels and head once the engine knows its output shape."""
        if len(output_shape) != 3:
            raise ModelError(f"{self.path}: output shape {list(output_shape)} is not a YOLO detector's [N, a, b]")
        labels = self.labels
        if labels is None:
            labels = tuple(default_labels(unnamed_count(list(output_shape)), self.path))
        if self.head is not None:
            if not fits(self.head, output_shape, len(labels)):
                raise ModelError(f"{self.path}: the sidecar says a {self.head} head, but the output shape "
                                 f"{list(output_shape)} with {len(labels)} labels is not one")
            return replace(self, labels=labels)
        layout = recognise(output_shape, len(labels), (self.height, self.width))
        return replace(self, labels=labels, head=layout.head, resize=layout.resize)

    def make_decoder(self, output_shape: tuple[int, ...], iou: float = 0.45, max_det: int = 100) -> Decoder:
        """This model's head decoder for an engine's output (after ``with_output``)."""
        assert self.head is not None and self.labels is not None
        return make_decoder(self.head, len(self.labels), output_shape, (self.height, self.width), iou, max_det)


def _onnx_geometry(path: Path) -> tuple[int, int]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not dims[2].dim_value or not dims[3].dim_value:
        raise ModelError(f"{path}: input must be [N, 3, H, W] with fixed H and W")
    return int(dims[2].dim_value), int(dims[3].dim_value)


def _ir_geometry(path: Path) -> tuple[int, int]:
    """Input height and width from an OpenVINO IR's XML (its first Parameter layer)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ModelError(f"{path}: not a readable OpenVINO IR: {exc}") from None
    for layer in root.iter("layer"):
        if layer.get("type") != "Parameter":
            continue
        data = layer.find("data")
        dims = (data.get("shape") or "").split(",") if data is not None else []
        if len(dims) != 4 or not dims[2].strip().isdigit() or not dims[3].strip().isdigit():
            break
        return int(dims[2]), int(dims[3])
    raise ModelError(f"{path}: input must be [N, 3, H, W] with fixed H and W")


def _ultralytics_labels(path: Path) -> list[str] | None:
    meta = path.parent / "metadata.yaml"
    if not meta.is_file():
        return None
    import yaml

    data = yaml.safe_load(meta.read_text())
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, str):
        names = ast.literal_eval(names)
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    return [str(n) for n in names] if isinstance(names, list) else None


def load_model_info(config: AnyEngineConfig, cache: Path) -> ModelInfo:
    """Resolve ``engine.model`` and check it against its sidecar and the config."""
    precision = zoo.resolve_precision(config.model, cache, config.precision)
    path = zoo.resolve(config.model, cache, config.backend, precision)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if config.backend in ("onnxruntime", "kserve") and path.suffix != ".onnx":
        raise ModelError(f"{path}: the {config.backend} backend needs an .onnx model")
    if config.backend == "tensorrt" and path.suffix not in (".engine", ".plan"):
        raise ModelError(f"{path}: the tensorrt backend needs a TensorRT engine (.engine), built on this device")
    if config.backend == "openvino" and path.suffix not in (".onnx", ".xml"):
        raise ModelError(f"{path}: unsupported model file for OpenVINO (expected .onnx or .xml)")
    file_labels = read_labels(config.labels.read_text()) if config.labels else None
    meta = read_sidecar(path)
    if meta is not None:
        if meta.precision != precision:
            raise ModelError(
                f"engine.precision is {precision}, but {path.name} is a {meta.precision} model "
                f"(per its sidecar {path.with_suffix('.json').name})"
            )
        if meta.input.batch is not None and meta.input.batch != config.batch:
            raise ModelError(
                f"engine.batch is {config.batch}, but {path.name} only takes a batch of {meta.input.batch}; "
                f"export it with a dynamic batch or set engine.batch: {meta.input.batch}"
            )
        verify_file(path, meta)
        labels = tuple(file_labels) if file_labels else tuple(meta.labels)
        return ModelInfo(
            path=path, name=meta.name, height=meta.input.height, width=meta.input.width,
            color=meta.input.color, scale=meta.input.scale, labels=labels, head=meta.head,
            precision=meta.precision, meta=meta, resize=meta.input.resize,
        )
    if config.backend == "tensorrt":
        raise ModelError(f"{path}: a TensorRT engine needs its sidecar ({path.with_suffix('.json').name})")
    if path.suffix == ".onnx":
        height, width = _onnx_geometry(path)
        found = file_labels or onnx_labels(path)
    else:
        height, width = _ir_geometry(path)
        found = file_labels or _ultralytics_labels(path)
    return ModelInfo(path=path, name=path.stem, height=height, width=width,
                     labels=tuple(found) if found else None)
