"""Which backends exist, and how to build one without importing the others.

A backend's module is imported only when the config asks for it, so a Jetson
without OpenVINO or a Pi without TensorRT runs fine. A missing runtime is an
EngineUnavailable that says which package to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edged.artifacts.info import ModelInfo, load_model_info
from edged.config.models import AnyEngineConfig
from edged.engines.base import Done, Engine, InputSpec
from edged.engines.chain import EngineChain
from edged.errors import EdgedError, EngineError, EngineUnavailable

log = logging.getLogger(__name__)


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
    "kserve": Backend("edged.engines.kserve", "KServeEngine", ("tritonclient", "grpc"),
                      "pip install 'edged[remote]' (tritonclient with gRPC)"),
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


class Unavailable:
    """An engine of a chain that cannot be made here (no runtime, no model): it fails to load, with the reason,
    each time the chain tries it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.input_spec = InputSpec(1, 1, 1)
        self.num_slots = 1
        self.output_shape: tuple[int, ...] = ()

    def start(self) -> None:
        raise EngineUnavailable(self.reason)

    def input_buffer(self, slot: int) -> np.ndarray:
        raise EngineUnavailable(self.reason)

    def submit(self, slot: int, done: Done) -> None:
        raise EngineUnavailable(self.reason)

    def describe(self) -> dict[str, object]:
        return {"backend": "unavailable", "reason": self.reason}

    def close(self) -> None:
        return None


def engine_names(configs: list[AnyEngineConfig]) -> list[str]:
    """How a chain names its engines: 'openvino:GPU', 'onnxruntime'; '#2' and on where two are alike."""
    names: list[str] = []
    for config in configs:
        device = getattr(config, "device", None)
        base = f"{config.backend}:{device}" if device else config.backend
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}#{n}"
        names.append(name)
    return names


def engine_heading(info: Mapping[str, object]) -> str:
    """The page's short form of the start-up line: engine, device, model file, and the precision the runtime
    reports it runs at ('openvino on CPU: yolov3-tiny fp32, running bf16'); never the file's variant taken for
    the precision."""
    where = f"{info.get('backend')} on {info['device']}" if info.get("device") else str(info.get("backend"))
    line = f"{where}: {info.get('model', '?')}"
    if info.get("precision"):
        line += f", running {info['precision']}"
    if isinstance(info.get("chain"), list):
        line += f" (in use: {info.get('in_use')})"
    return line


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
    chain = info.get("chain")
    if isinstance(chain, list):
        failed = info.get("failed")
        gone = f" (failed: {', '.join(str(name) for name in failed)})" if isinstance(failed, dict) and failed else ""
        parts.append(f"in use: {info.get('in_use')} of chain {' > '.join(str(name) for name in chain)}{gone}")
    return ", ".join(parts)


def create_chain(configs: list[AnyEngineConfig], cache_dir: Path) -> tuple[EngineChain, ModelInfo]:
    """The engine chain: each engine made here (one that cannot be, a runtime or model missing, is a link that
    fails to load and is tried again later); the model info of the first that can be made."""
    links: list[tuple[str, Engine]] = []
    model: ModelInfo | None = None
    for name, engine_config in zip(engine_names(configs), configs):
        try:
            info = load_model_info(engine_config, cache_dir)
            links.append((name, create_engine(engine_config, info, cache_dir)))
            model = model or info
        except EdgedError as exc:
            log.warning("engine %s cannot be made here: %s", name, exc)
            links.append((name, Unavailable(str(exc))))
    if model is None:
        raise EngineError("no engine of the chain can be made here: " + "; ".join(
            f"{name}: {engine.reason}" for name, engine in links if isinstance(engine, Unavailable)))
    return EngineChain(links, timeout_s=min(c.timeout_s for c in configs)), model
