"""Which backends exist, and how to build one without importing the others.

A backend's module is imported only when the config asks for it, so a Jetson
without OpenVINO or a Pi without TensorRT runs fine. A missing runtime is an
EngineUnavailable that says which package to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edged.artifacts.info import ModelInfo
from edged.config.models import AnyEngineConfig
from edged.engines.base import Engine
from edged.errors import EngineUnavailable


@dataclass(frozen=True)
class Backend:
    module: str
    cls: str
    runtimes: tuple[str, ...]  # import names of the runtime packages it needs
    install: str


BACKENDS: dict[str, Backend] = {
    "openvino": Backend("edged.engines.openvino", "OpenVinoEngine", ("openvino",), "pip install 'edged[openvino]'"),
    "onnxruntime": Backend(
        "edged.engines.onnxruntime", "OnnxRuntimeEngine", ("onnxruntime",), "pip install 'edged[onnxruntime]'"
    ),
    "tensorrt": Backend(
        "edged.engines.tensorrt", "TensorRtEngine", ("tensorrt", "pycuda"),
        "JetPack's TensorRT and pycuda (sudo apt-get install python3-libnvinfer python3-pycuda)",
    ),
}


def check_available(name: str) -> None:
    backend = BACKENDS[name]
    for runtime in backend.runtimes:
        if importlib.util.find_spec(runtime) is None:
            raise EngineUnavailable(
                f"engine.backend '{name}' needs the '{runtime}' package, which is not installed here; "
                f"install it with: {backend.install}"
            )


def create_engine(config: AnyEngineConfig, model: ModelInfo, cache_dir: Path) -> Engine:
    check_available(config.backend)
    backend = BACKENDS[config.backend]
    try:
        module = importlib.import_module(backend.module)
    except ImportError as exc:
        raise EngineUnavailable(f"engine.backend '{config.backend}' failed to load its runtime: {exc}") from None
    engine: Engine = getattr(module, backend.cls)(config, model, cache_dir)
    return engine


def describe_engine(info: Mapping[str, object]) -> str:
    """One readable line: 'openvino 2026.4.1 on CPU, f32, 2 streams, 2 requests, batch 1, yolov3-tiny fp32'."""
    head = f"{info.get('backend')} {info.get('version', '')}".strip()
    if "device" in info:
        head += f" on {info['device']}"
    parts = [head]
    if "precision" in info:
        parts.append(str(info["precision"]))
    parts += [f"{info[key]} {key}" for key in ("streams", "threads", "requests") if key in info]
    if "batch" in info:
        parts.append(f"batch {info['batch']}")
    parts.append(str(info.get("model", "")))
    return ", ".join(parts)
