"""ONNX Runtime backend: the generic second engine (CPU, or any provider installed).

Inputs and outputs are bound to preallocated numpy buffers with IOBinding, one
pair per slot; runs happen on a small thread pool (ONNX Runtime releases the GIL),
so ``submit`` returns at once like OpenVINO's ``start_async``.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edged.artifacts.info import ModelInfo
from edged.artifacts.onnx_wrap import wrap_u8_bgr
from edged.config.models import OnnxRuntimeConfig
from edged.engines.base import Done, InputSpec
from edged.errors import EngineError, EngineUnavailable

log = logging.getLogger(__name__)


class OnnxRuntimeEngine:
    def __init__(self, config: OnnxRuntimeConfig, model: ModelInfo, cache_dir: Path) -> None:
        self.config = config
        self.model = model
        self.input_spec = InputSpec(config.batch, model.height, model.width)
        self.num_slots = config.num_requests or 2  # ping-pong
        self.output_shape: tuple[int, ...] = ()
        self._session: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._inputs: list[np.ndarray] = []
        self._outputs: list[np.ndarray] = []
        self._bindings: list[Any] = []

    def start(self) -> None:
        cfg = self.config
        missing = [p for p in cfg.providers if p not in ort.get_available_providers()]
        if missing:
            raise EngineUnavailable(
                f"engine.providers: {', '.join(missing)} not available in this onnxruntime build "
                f"(available: {', '.join(ort.get_available_providers())})"
            )
        options = ort.SessionOptions()
        if cfg.num_threads:
            options.intra_op_num_threads = cfg.num_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        wrapped = wrap_u8_bgr(self.model.path, cfg.batch, self.model.color, self.model.scale)
        self._session = ort.InferenceSession(wrapped, options, providers=list(cfg.providers))
        output = self._session.get_outputs()[0]
        self.output_shape = self._infer_output_shape(output.shape)
        for _ in range(self.num_slots):
            inp = np.zeros(self.input_spec.shape, dtype=np.uint8)
            out = np.zeros(self.output_shape, dtype=np.float32)
            binding = self._session.io_binding()
            binding.bind_cpu_input("frames_bgr_u8", inp)
            binding.bind_output(output.name, "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
            self._inputs.append(inp)
            self._outputs.append(out)
            self._bindings.append(binding)
        self._pool = ThreadPoolExecutor(max_workers=self.num_slots, thread_name_prefix="onnxruntime")
        for binding in self._bindings:
            self._session.run_with_iobinding(binding)
        log.info("ONNX Runtime engine ready")

    def _infer_output_shape(self, declared: list[Any]) -> tuple[int, ...]:
        if all(isinstance(d, int) for d in declared[1:]):
            return (self.input_spec.batch, *[int(d) for d in declared[1:]])
        probe = self._session.run(None, {"frames_bgr_u8": np.zeros(self.input_spec.shape, np.uint8)})[0]
        return tuple(int(d) for d in probe.shape)

    def input_buffer(self, slot: int) -> np.ndarray:
        return self._inputs[slot]

    def submit(self, slot: int, done: Done) -> None:
        if self._pool is None:
            raise EngineError("the engine is not started")
        self._pool.submit(self._run, slot, done)

    def _run(self, slot: int, done: Done) -> None:
        try:
            self._session.run_with_iobinding(self._bindings[slot])
        except Exception as exc:
            done(EngineError(f"ONNX Runtime inference failed: {exc}"))
            return
        done(self._outputs[slot])

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "onnxruntime",
            "version": ort.__version__,
            "model": f"{self.model.name} {self.model.precision}",
            "providers": list(self.config.providers),
            "batch": self.input_spec.batch,
            "requests": self.num_slots,
            "precision": self.model.precision,
        }

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._session = None
