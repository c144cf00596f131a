"""The metadata sidecar written next to every model file edged builds.

``fp32.xml`` is described by ``fp32.json`` beside it: labels, input geometry and
layout, output layout, precision, the hash of the model file itself and of what it
was built from, tool versions, and for INT8 how it was calibrated and how it scored
against FP32. The daemon reads it to decode outputs and refuses a model whose
sidecar disagrees with the file, the config or the device.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edged.errors import ModelError
from edged.models.labels import COCO80
from edged.names import check_name

FORMAT: Final = "edged-model/1"
Precision = Literal["fp32", "fp16", "int8"]


class InputMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    height: int = Field(gt=0)
    width: int = Field(gt=0)
    batch: int | None = Field(None, description="a fixed batch size the model needs; None: any")
    layout: Literal["NCHW"] = "NCHW"
    color: Literal["RGB", "BGR"] = "RGB"
    scale: float = 255.0
    resize: Literal["letterbox", "stretch", "corner"] = "letterbox"  # models.yolo.RESIZES

    @model_validator(mode="before")
    @classmethod
    def _letterbox_flag(cls, data: Any) -> Any:
        """Sidecars written before ``resize`` said ``letterbox: true`` or ``false`` (stretched)."""
        if isinstance(data, dict) and "letterbox" in data and "resize" not in data:
            data = dict(data)
            data["resize"] = "letterbox" if data.pop("letterbox") else "stretch"
        return data


class SourceMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["darknet", "onnx", "ultralytics-pt"]
    files: list[str]
    sha256: str  # of the source files and the export options: the cache key


class CalibrationMeta(BaseModel):
    """How an INT8 model was made and how it compared with FP32 on held-out frames."""

    model_config = ConfigDict(extra="forbid")

    frames: int
    held_out: int
    cameras: list[str]
    dataset_sha256: str
    preset: str
    subset_size: int
    map50: float  # against FP32 on the held-out frames
    min_map: float  # the gate it had to pass
    forced: bool = False  # installed although under the gate
    report: str = ""  # file name of the full report beside the model


class RuntimeMeta(BaseModel):
    """For engines tied to one runtime and device (TensorRT): what they were built with."""

    model_config = ConfigDict(extra="forbid")

    runtime: str
    version: str
    device: str = ""
    compute_capability: str = ""


class ModelMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["edged-model/1"] = FORMAT
    name: str
    family: Literal["yolo"] = "yolo"
    head: Literal["yolov5", "yolov8", "yolox", "end2end", "rtdetr", "detr"]
    layout: str = ""  # what export found, in words ('end-to-end, 300 boxes, ... letterbox, RGB 0..1')
    labels: list[str] = Field(min_length=1)
    input: InputMeta
    output_shape: list[int]
    precision: Precision
    file_sha256: str = ""  # of the model file(s) this sidecar describes
    source: SourceMeta
    tools: dict[str, str] = Field(default_factory=dict)
    created: float = 0.0
    calibration: CalibrationMeta | None = None
    runtime: RuntimeMeta | None = None

    def write(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.model_dump(exclude_none=True), indent=2) + "\n")
        tmp.replace(path)


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def model_files(model_path: Path) -> list[Path]:
    """The files that make up a model: an IR is its .xml and its .bin."""
    files = [model_path]
    if model_path.suffix == ".xml":
        files.append(model_path.with_suffix(".bin"))
    return files


def file_digest(model_path: Path) -> str:
    h = hashlib.sha256()
    for path in model_files(model_path):
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


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


def verify_file(model_path: Path, meta: ModelMeta) -> None:
    """Refuse a model file that is not the one its sidecar describes."""
    if meta.file_sha256 and file_digest(model_path) != meta.file_sha256:
        raise ModelError(
            f"{model_path} does not match its sidecar {sidecar_path(model_path).name} (the file changed after "
            f"it was built); rebuild it (edged export <source> --name {meta.name} --rebuild) or restore it"
        )


def onnx_labels(model_path: Path) -> list[str] | None:
    """Class names an Ultralytics ONNX export stores in its metadata, if any."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == "names":
            try:
                names = ast.literal_eval(prop.value)
                if isinstance(names, dict):
                    return [str(names[k]) for k in sorted(names)]
            except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
                return None
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


def check_labels(labels: Sequence[str], where: Path) -> list[str]:
    """Labels become topic levels and payload fields: one that MQTT cannot carry is refused where it enters (a labels
    file, a sidecar, the model's metadata), naming the model, the label and its index."""
    for index, label in enumerate(labels):
        try:
            check_name(label)
        except ValueError as exc:
            raise ModelError(f"{where}: label {index} {label!r} {exc}; give the model clean class names or name "
                             f"them in a file with engine.labels (export: --labels)") from None
    return list(labels)
