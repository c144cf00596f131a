"""Which TensorRT engine fits this device, decided from sidecars alone (no TensorRT needed).

An engine is only valid for the TensorRT version (major.minor) and the GPU compute
capability it was built with; JetPack upgrades change the former, a different board
the latter. Engines are named ``trt-<precision>-sm<cc>-trt<major.minor>.engine``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edged.artifacts.meta import ModelMeta, read_sidecar
from edged.errors import ModelError

if TYPE_CHECKING:
    from edged.artifacts.zoo import BuiltModel

REBUILD = (
    "rebuild it on this device: edged export {name} --tensorrt {precision} --calibration DIR "
    "(or jetson/build_engine.sh)"
)


def engine_name(precision: str, compute_capability: str, trt_version: str) -> str:
    major_minor = ".".join(trt_version.split(".")[:2])
    return f"trt-{precision}-sm{compute_capability.replace('.', '')}-trt{major_minor}.engine"


def pick_engine(built: BuiltModel, precision: str) -> Path:
    engines = sorted(built.directory.glob(f"trt-{precision}-*.engine"))
    if not engines:
        hint = REBUILD.format(name=built.name, precision=precision)
        raise ModelError(f"model '{built.name}' has no TensorRT {precision} engine; {hint}")
    # The daemon checks the chosen engine against the device when it starts; prefer the newest.
    return max(engines, key=lambda p: p.stat().st_mtime)


def check_engine_matches(path: Path, meta: ModelMeta | None, trt_version: str, compute_capability: str) -> None:
    """Refuse an engine built for another TensorRT or another GPU, saying how to rebuild."""
    meta = meta or read_sidecar(path)
    precision = meta.precision if meta else "int8"
    name = meta.name if meta else path.stem
    hint = REBUILD.format(name=name, precision=precision)
    if meta is None or meta.runtime is None or meta.runtime.runtime != "tensorrt":
        raise ModelError(f"{path}: no TensorRT build record in its sidecar; {hint}")
    built_ver = ".".join(meta.runtime.version.split(".")[:2])
    here_ver = ".".join(trt_version.split(".")[:2])
    if built_ver != here_ver:
        raise ModelError(
            f"{path.name} was built with TensorRT {meta.runtime.version}; this device has TensorRT {trt_version} "
            f"(engines do not survive JetPack upgrades); {hint}"
        )
    if meta.runtime.compute_capability != compute_capability:
        raise ModelError(
            f"{path.name} was built for GPU compute capability {meta.runtime.compute_capability} "
            f"({meta.runtime.device or 'another device'}); this GPU is {compute_capability}; {hint}"
        )
