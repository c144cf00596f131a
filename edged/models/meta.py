"""The metadata sidecar written next to every model edged builds.

``model.onnx`` / ``model.xml`` is described by ``model.json`` beside it: labels,
input geometry and layout, output layout, precision, the hash of what it was
built from and the tool versions. The daemon reads it to decode outputs and
refuses a model whose sidecar disagrees with the file or the config.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edged.errors import ModelError
from edged.models.labels import COCO80

FORMAT: Final = "edged-model/1"
Precision = Literal["fp32", "fp16", "bf16", "int8"]


class InputMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    height: int = Field(gt=0)
    width: int = Field(gt=0)
    layout: Literal["NCHW"] = "NCHW"
    color: Literal["RGB", "BGR"] = "RGB"
    scale: float = 255.0
    letterbox: bool = True


class SourceMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    files: list[str]
    sha256: str


class ModelMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["edged-model/1"] = FORMAT
    name: str
    family: Literal["yolo"] = "yolo"
    head: Literal["yolov5", "yolov8"]
    labels: list[str] = Field(min_length=1)
    input: InputMeta
    output_shape: list[int]
    precision: Precision
    source: SourceMeta
    tools: dict[str, str] = Field(default_factory=dict)
    created: float = 0.0

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.model_dump(), indent=2) + "\n")


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def read_sidecar(model_path: Path) -> ModelMeta | None:
    """The model's sidecar, None if there is none; ModelError if it is unreadable."""
    path = sidecar_path(model_path)
    if not path.exists():
        return None
    try:
        return ModelMeta.model_validate_json(path.read_text())
    except (ValidationError, ValueError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
        where = ".".join(str(p) for p in first["loc"]) or "(file)"
        raise ModelError(f"{path}: not a valid edged model sidecar: {where}: {first['msg']}") from None


def onnx_labels(model_path: Path) -> list[str] | None:
    """Class names an Ultralytics ONNX export stores in its metadata, if any."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == "names":
            try:
                names = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return None
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names)]
            if isinstance(names, list):
                return [str(n) for n in names]
    return None


def default_labels(num_classes: int, model_path: Path) -> list[str]:
    if num_classes == len(COCO80):
        return list(COCO80)
    raise ModelError(
        f"{model_path}: has {num_classes} classes and no labels; give engine.labels "
        f"(a file with one class name per line)"
    )
