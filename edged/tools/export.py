"""``edged export``: a model from Darknet, ONNX or an Ultralytics ``.pt`` into the cache,
as ``model.onnx`` plus OpenVINO IR in FP32 and FP16, each with a sidecar.

The cache key is a hash of the source files and the export options, so exporting
the same thing twice builds nothing. INT8 comes from ``edged calibrate`` (or
``edged export --int8 --calibration DIR``), which quantizes the FP32 IR.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from edged.artifacts import zoo
from edged.artifacts.meta import (
    InputMeta,
    ModelMeta,
    SourceMeta,
    check_labels,
    default_labels,
    file_digest,
    onnx_labels,
)
from edged.config.names import is_model_name
from edged.errors import InputError, ModelError
from edged.models.heads import KNOWN, Layout, recognise
from edged.models.heads.layout import unnamed_count
from edged.models.labels import DARKNET_ALIASES, read_labels
from edged.tools.fuse import float_input, fuse
from edged.tools.model_io import io_shapes, onnx_metadata, probe_output

log = logging.getLogger(__name__)

EXPORT_VERSION = "edged-export/3"


@dataclass(frozen=True)
class InputSize:
    """A model input size, ``WIDTHxHEIGHT`` (or one number for a square)."""

    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> InputSize:
        parts = text.lower().split("x")
        try:
            sizes = [int(part) for part in parts]
        except ValueError:
            sizes = []
        if len(sizes) not in (1, 2):
            raise InputError(f"--imgsz {text!r}: expected a size like 640 or WIDTHxHEIGHT like 640x384")
        width, height = sizes[0], sizes[-1]
        for side in (width, height):
            if not 32 <= side <= 4096 or side % 32:
                raise InputError(f"--imgsz {text!r}: each side must be a multiple of 32 between 32 and 4096 "
                                 "(YOLO models downsample by 32)")
        return cls(width, height)

    def __str__(self) -> str:
        return str(self.width) if self.width == self.height else f"{self.width}x{self.height}"


@dataclass(frozen=True)
class Source:
    kind: str  # darknet | onnx | ultralytics-pt
    name: str
    files: tuple[Path, ...]
    labels_file: Path | None = None
    imgsz: InputSize | None = None
    python: str | None = None  # interpreter with ultralytics, for .pt

    def key(self) -> str:
        h = hashlib.sha256(f"{EXPORT_VERSION}|{self.kind}|{self.imgsz}".encode())
        for path in (*self.files, *([self.labels_file] if self.labels_file else [])):
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()


def source_for(spec: str, *, name: str | None = None, weights: Path | None = None, labels: Path | None = None,
               imgsz: InputSize | None = None, python: str | None = None) -> Source:
    """Work out what ``spec`` is: a catalogue name, a Darknet .cfg, an .onnx, or a .pt."""
    if is_model_name(spec) and spec in zoo.CATALOGUE:
        if imgsz is not None:
            raise InputError(f"--imgsz: {spec} is a Darknet model whose cfg fixes its input size")
        cfg, w, names = zoo.catalogue_files(spec)
        return Source("darknet", name or spec, (cfg, w), labels or names)
    path = Path(spec)
    if not path.is_file():
        known = ", ".join(sorted(zoo.CATALOGUE))
        raise ModelError(f"{spec}: no such file, and not a catalogue model (known: {known})")
    for extra in (weights, labels):
        if extra is not None and not extra.is_file():
            raise ModelError(f"{extra}: no such file")
    stem = name or path.stem
    if path.suffix == ".cfg":
        if imgsz is not None:
            raise InputError(f"--imgsz: {spec} is a Darknet cfg, which fixes its input size (width=, height=)")
        if weights is None:
            raise ModelError(f"{spec}: a Darknet cfg needs its weights: --weights FILE.weights")
        return Source("darknet", stem, (path, weights), labels)
    if path.suffix == ".onnx":
        return Source("onnx", stem, (path,), labels, imgsz)
    if path.suffix == ".pt":
        return Source("ultralytics-pt", stem, (path,), labels, imgsz or InputSize(640, 640), python)
    raise ModelError(f"{spec}: unsupported model file (expected a catalogue name, .cfg, .onnx or .pt)")


def _pin_input(onnx_path: Path, imgsz: InputSize | None) -> tuple[int, int, int | None]:
    """Fix H and W of the input (keeping a dynamic batch); returns (H, W, batch or None)."""
    import onnx

    model = onnx.load(str(onnx_path))
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise ModelError(f"{onnx_path}: edged reads detectors with one image input and one output; this model has "
                         f"{io_shapes(onnx_path)}. Layouts edged reads: {KNOWN}")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4 or (dims[1].dim_value not in (0, 3)):
        raise ModelError(f"{onnx_path}: input must be [N, 3, H, W]")
    changed = False
    wanted = {2: imgsz.height, 3: imgsz.width} if imgsz is not None else {}
    for axis in (2, 3):
        if not dims[axis].dim_value:
            if imgsz is None:
                raise ModelError(f"{onnx_path}: the input size is not fixed; give --imgsz (640, or 640x384)")
            dims[axis].dim_value = wanted[axis]
            changed = True
        elif imgsz is not None and dims[axis].dim_value != wanted[axis]:
            raise ModelError(f"{onnx_path}: the input is fixed at {dims[3].dim_value}x{dims[2].dim_value} "
                             f"(width x height), not --imgsz {imgsz}")
    if changed:
        onnx.save(model, str(onnx_path))
    batch = dims[0].dim_value or None
    return dims[2].dim_value, dims[3].dim_value, batch


def _output_shape(onnx_path: Path, height: int, width: int) -> list[int]:
    from edged.engines.ov import openvino as ov

    model = ov.Core().read_model(str(onnx_path))
    model.reshape({model.input(0).get_any_name(): ov.PartialShape([1, 3, height, width])})
    shape = model.output(0).get_partial_shape()
    if not shape.is_static:
        raise ModelError(f"{onnx_path}: cannot infer a static output shape for a {height}x{width} input")
    return [int(d.get_length()) for d in shape]


def _labels(source: Source, onnx_path: Path, output_shape: list[int]) -> tuple[list[str], str]:
    """The labels and where they came from."""
    if source.labels_file is not None:
        labels = read_labels(source.labels_file.read_text())
        named = [DARKNET_ALIASES.get(n, n) for n in labels] if source.kind == "darknet" else labels
        return check_labels(named, source.labels_file), f"{source.labels_file.name}"
    found = onnx_labels(onnx_path)
    if found and not all(n.isdigit() for n in found):
        return check_labels(found, onnx_path), "the model's metadata"
    count = unnamed_count(output_shape)
    return default_labels(count, onnx_path), f"COCO's names for {count} classes (no names in the model)"



# How each family's reference exporter feeds its model: colour order and the divisor of 0..255 pixels.
_FEED = {"yolox": ("BGR", 1.0)}


def _layout(onnx_path: Path, output_shape: list[int], labels: list[str], height: int, width: int) -> Layout:
    metadata = onnx_metadata(onnx_path)
    return recognise(tuple(output_shape), len(labels), (height, width), metadata,
                     probe=lambda: probe_output(onnx_path, height, width, 1.0))


def _tool_versions() -> dict[str, str]:
    import importlib.metadata

    versions = {"edged-export": EXPORT_VERSION}
    for dist in ("edged", "onnx", "openvino", "nncf", "numpy"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    return versions


def _make_onnx(source: Source, target: Path) -> None:
    if source.kind == "darknet":
        from edged.artifacts.darknet import convert

        target.write_bytes(convert(source.files[0], source.files[1]).onnx_bytes)
    elif source.kind == "onnx":
        shutil.copyfile(source.files[0], target)
    else:
        from edged.tools.ultralytics_export import export_onnx

        size = source.imgsz or InputSize(640, 640)
        export_onnx(source.files[0], target, (size.height, size.width), source.python)


def _write_variant(fp32_onnx: Path, target: Path, base: ModelMeta, precision: str) -> ModelMeta:
    from edged.engines.ov import openvino as ov

    model = ov.convert_model(str(fp32_onnx))
    ov.save_model(model, str(target), compress_to_fp16=precision == "fp16")
    meta = base.model_copy(update={"precision": precision, "file_sha256": file_digest(target)})
    meta.write(target.with_suffix(".json"))
    return meta


def export(source: Source, cache: Path, precisions: tuple[str, ...] = ("fp32", "fp16"),
           force: bool = False) -> zoo.BuiltModel:
    """Export into the cache; only what is missing is built."""
    key = source.key()
    root = zoo.model_root(cache, source.name)
    target = root / key[:12]
    existing = zoo.load_built(source.name, target)
    if existing is not None and existing.meta.source.sha256 == key and not force:
        missing = [p for p in precisions if p in ("fp32", "fp16") and not existing.has(p)]
        for precision in missing:
            _write_variant(existing.path("onnx"), existing.path(precision), existing.meta, precision)
        log.info("model %s is up to date in %s", source.name, target)
        zoo.set_current(root, target.name)
        return zoo.load_built(source.name, target) or existing

    started = time.monotonic()
    log.info("exporting %s (%s) into %s", source.name, source.kind, target)
    staging = root / f".{key[:12]}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    onnx_path = staging / zoo.VARIANTS["onnx"]
    _make_onnx(source, onnx_path)
    fused = fuse(onnx_path, (source.imgsz.height, source.imgsz.width) if source.imgsz else None)
    pixels = float_input(onnx_path)  # a UINT8 input: the model scales 0..255 itself
    height, width, batch = _pin_input(onnx_path, source.imgsz)
    output_shape = _output_shape(onnx_path, height, width)
    labels, labels_from = _labels(source, onnx_path, output_shape)
    layout = _layout(onnx_path, output_shape, labels, height, width)
    color, scale = _FEED.get(layout.head, ("RGB", 255.0))
    scale = 1.0 if pixels else scale
    found = (f"{f'{fused}: ' if fused else ''}{layout.describe(len(labels), labels_from)}, {color} "
             f"{'0..1' if scale == 255.0 else '0..255'}{' (UINT8 input, scaled inside the model)' if pixels else ''}")
    log.info("%s: %s", source.name, found)
    meta = ModelMeta(
        name=source.name, head=layout.head, labels=labels, layout=found,
        input=InputMeta(height=height, width=width, batch=batch, color=color, scale=scale,
                        resize=layout.resize),
        output_shape=[-1, *output_shape[1:]], precision="fp32", file_sha256=file_digest(onnx_path),
        source=SourceMeta(kind=source.kind, files=[p.name for p in source.files], sha256=key),
        tools=_tool_versions(), created=time.time(),
    )
    meta.write(onnx_path.with_suffix(".json"))
    for precision in precisions:
        if precision in ("fp32", "fp16"):
            _write_variant(onnx_path, staging / zoo.VARIANTS[precision], meta, precision)
    if target.is_dir():
        # A rebuild of the same source: replace what export makes; keep the INT8 variant,
        # its candidates and TensorRT engines, which derive from this same source.
        for item in staging.iterdir():
            os.replace(item, target / item.name)
        shutil.rmtree(staging)
    else:
        os.replace(staging, target)
    zoo.set_current(root, target.name)
    log.info("exported %s in %.1f s: %s", source.name, time.monotonic() - started, target)
    built = zoo.load_built(source.name, target)
    assert built is not None
    return built



def build_catalogue(name: str, cache: Path, force: bool = False) -> zoo.BuiltModel:
    """Build a catalogue model (ONNX, FP32 and FP16 IR) into the cache."""
    if name not in zoo.CATALOGUE:
        raise ModelError(f"unknown model '{name}'; known: {', '.join(sorted(zoo.CATALOGUE))}")
    return export(source_for(name), cache, force=force)
