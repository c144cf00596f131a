"""A second look at each object: classifiers on tracked crops, the detector again on an enlarged crop (the
verifier), and named colours. Classifiers are declared once (``classifiers:``) and used by cameras (``classify:``);
``verify:`` and ``colors:`` are per camera."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edged.config.base import Name, Strict

Triple = tuple[float, float, float]


class ClassifierConfig(Strict):
    """An ONNX or OpenVINO IR classifier with one ``[N, C]`` output (ImageNet-style or a user's own)."""

    model: Path = Field(description="the classifier's .onnx or .xml (IR) file; for backend tensorrt its serialized "
                                    ".engine")
    labels: list[Name] | Path = Field(description="its C class names, in output order: a list, or a file with one a "
                                                  "line")
    backend: Literal["openvino", "onnxruntime", "tensorrt"] = "openvino"
    device: str = Field("CPU", min_length=1, description="OpenVINO device (CPU, GPU, NPU)")
    inference_precision: Literal["auto", "f32", "f16", "bf16"] = Field(
        "auto", description="OpenVINO's INFERENCE_PRECISION_HINT; auto: the device's default")
    batch: int = Field(8, ge=1, le=64, description="crops inferred together (from all cameras)")
    threads: int = Field(1, ge=1, le=256, description="CPU threads it may use: few, so the detector keeps the "
                                                       "cores")
    color: Literal["RGB", "BGR"] = Field("RGB", description="the channel order the model was trained on")
    mean: Triple = Field((0.485, 0.456, 0.406), description="per channel, on pixel values scaled to 0..1, in the "
                                                            "model's channel order (ImageNet's by default)")
    std: Triple = Field((0.229, 0.224, 0.225), description="per channel, as mean")
    softmax: Literal["auto", "yes", "no"] = Field(
        "auto", description="turn the output into probabilities; auto: when it does not already sum to 1")

    @field_validator("model")
    @classmethod
    def _suffix(cls, value: Path) -> Path:
        if value.suffix not in (".onnx", ".xml", ".engine"):
            raise ValueError(f"'{value}': a classifier is an .onnx, an OpenVINO .xml or a TensorRT .engine file")
        return value

    @model_validator(mode="after")
    def _engine_file(self) -> ClassifierConfig:
        if (self.backend == "tensorrt") != (self.model.suffix == ".engine"):
            raise ValueError(f"model: '{self.model}': backend tensorrt runs a serialized TensorRT .engine, and only "
                             f"it does (backend is {self.backend})")
        return self

    @field_validator("std")
    @classmethod
    def _positive(cls, value: Triple) -> Triple:
        if min(value) <= 0:
            raise ValueError("every 'std' must be above 0")
        return value


class ClassifyConfig(Strict):
    """One classifier on one camera's tracked objects."""

    classifier: Name = Field(description="a name under 'classifiers:'")
    labels: list[Name] = Field(default_factory=list, description="the detected labels it looks at; empty: all")
    every_s: float = Field(1.0, ge=0.05, le=3600, description="at most one attempt per object this often")
    min_size: int = Field(32, ge=4, le=4096, description="only objects whose box is at least this many pixels "
                                                         "on its shorter side")
    attempts: int = Field(3, ge=1, le=100, description="attempts before a sub-label is published")
    agree: float = Field(0.6, gt=0.5, le=1, description="the share of attempts that must agree")
    min_score: float = Field(0.5, gt=0, le=1, description="an attempt counts when its best class scores this much")
    max_attempts: int = Field(10, ge=1, le=1000, description="attempts per object, then it is left alone")
    scale: float = Field(1.0, ge=1.0, le=4.0, description="enlarge the box by this factor before cropping")

    @model_validator(mode="after")
    def _attempts(self) -> ClassifyConfig:
        if self.max_attempts < self.attempts:
            raise ValueError(f"'max_attempts' ({self.max_attempts}) must be at least 'attempts' ({self.attempts})")
        return self


class VerifyConfig(Strict):
    """The detector again, on an enlarged crop at its full input size: a new object of this label is published only
    once that second look confirms it."""

    scale: float = Field(3.0, ge=1.0, le=8.0, description="the crop is the box enlarged by this factor")
    min_score: float = Field(0.3, gt=0, le=1, description="the label must be found on the crop at this score")
    min_cover: float = Field(0.3, gt=0, le=1, description="...on the object: covering this share of its box, "
                                                          "centred near it")
    attempts: int = Field(2, ge=1, le=10, description="looks (on newer frames) before an object is rejected")
    every_s: float = Field(0.3, ge=0, le=60, description="between two looks at the same object")
    timeout_s: float = Field(3.0, gt=0, le=60, description="no verdict within this long: published unverified")


class ColorsConfig(Strict):
    """Named colours of objects' central parts (no weights): clothing for people, body for vehicles."""

    labels: list[Name] = Field(min_length=1, description="the detected labels to name colours of")
    every_s: float = Field(1.0, ge=0.05, le=3600)
    min_size: int = Field(24, ge=4, le=4096, description="as classify's min_size")
    attempts: int = Field(3, ge=1, le=100, description="attempts before the colours are published")
    max_attempts: int = Field(10, ge=1, le=1000)


class VerifierConfig(Strict):
    """Where the verifier runs: the primary engine's model again, on OpenVINO, batch 1."""

    model: str | None = Field(None, min_length=1, description="a model name or path; unset: the primary engine's")
    device: str = Field("CPU", min_length=1)
    inference_precision: Literal["auto", "f32", "f16", "bf16"] = "auto"
    threads: int = Field(1, ge=1, le=256, description="CPU threads it may use: few, so the detector keeps the "
                                                       "cores")


def check_looks(camera: str, classify: list[ClassifyConfig], classifiers: dict[str, ClassifierConfig]) -> None:
    """Raise ValueError where a camera's classify names no declared classifier, or one label is classified twice."""
    seen: dict[str, str] = {}
    for index, look in enumerate(classify):
        if look.classifier not in classifiers:
            known = ", ".join(sorted(classifiers)) or "none is declared"
            raise ValueError(f"cameras.{camera}.classify[{index}]: classifier '{look.classifier}' is not under "
                             f"'classifiers:' ({known})")
        for label in look.labels or ["*"]:
            if label in seen or "*" in seen or (label == "*" and seen):
                raise ValueError(f"cameras.{camera}.classify[{index}]: label '{label}' is classified twice; one "
                                 f"classifier per label")
            seen[label] = look.classifier
