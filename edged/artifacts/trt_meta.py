"""Which TensorRT engine fits this device, decided from sidecars alone (no TensorRT needed).

TensorRT promises a serialized engine only to the exact TensorRT version (patch and
build included) and the GPU model it was built with: JetPack updates change the
former, another board the latter. Engines are named
``trt-<precision>-sm<cc>-trt<major.minor>.engine``; the sidecar records the full
version and the GPU, and anything else is refused with the command that rebuilds it.
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


def check_engine_matches(path: Path, meta: ModelMeta | None, trt_version: str, compute_capability: str,
                         device: str = "") -> None:
    """Refuse an engine built with another TensorRT (any digit of the version) or for another GPU (compute
    capability, and the GPU's name where both are known), saying how to rebuild."""
    meta = meta or read_sidecar(path)
    precision = meta.precision if meta else "int8"
    name = meta.name if meta else path.stem
    hint = REBUILD.format(name=name, precision=precision)
    if meta is None or meta.runtime is None or meta.runtime.runtime != "tensorrt":
        raise ModelError(f"{path}: no TensorRT build record in its sidecar; {hint}")
    if meta.runtime.version != trt_version:
        raise ModelError(
            f"{path.name} was built with TensorRT {meta.runtime.version}; this device has TensorRT {trt_version} "
            f"(TensorRT only promises an engine to the exact version that built it: engines do not survive "
            f"JetPack updates); {hint}"
        )
    if meta.runtime.compute_capability != compute_capability:
        raise ModelError(
            f"{path.name} was built for GPU compute capability {meta.runtime.compute_capability} "
            f"({meta.runtime.device or 'another device'}); this GPU is {compute_capability}; {hint}"
        )
    if device and meta.runtime.device and meta.runtime.device != device:
        raise ModelError(f"{path.name} was built on {meta.runtime.device}; this GPU is {device} (TensorRT only "
                         f"promises an engine to the GPU model that built it); {hint}")
