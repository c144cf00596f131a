"""OpenVINO backend: compiled once (with a model cache), warmed, run asynchronously.

The pre-processing (uint8 BGR NHWC -> float RGB NCHW, divided by the model's scale)
is added to the graph with OpenVINO's PrePostProcessor, so the CPU plugin fuses
it into the first layers. Each slot is one infer request whose input tensor
shares memory with a numpy buffer that the letterbox writes straight into.

Completions are collected by a thread of ours that waits on the requests in the
order they were started (``InferRequest.wait`` releases the GIL), not by an
OpenVINO callback: a Python callback runs on the device stream's own thread and
must take the GIL first, so while the pipeline's Python threads hold it the stream
would sit idle instead of starting the next request.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from edged.engines.ov import openvino as ov  # first: imports OpenVINO without telemetry
from edged.engines.ov import version as ov_version

from openvino.preprocess import ColorFormat, PrePostProcessor  # isort: skip

from edged.artifacts.info import ModelInfo
from edged.config.models import OpenVinoConfig
from edged.engines.base import Done, InputSpec
from edged.errors import EngineError, ModelError

log = logging.getLogger(__name__)

_PRECISION_HINT = {"f32": "f32", "f16": "f16", "bf16": "bf16"}


class OpenVinoEngine:
    def __init__(self, config: OpenVinoConfig, model: ModelInfo, cache_dir: Path) -> None:
        self.config = config
        self.model = model
        self.cache_dir = config.cache_dir or cache_dir / "openvino"
        self.input_spec = InputSpec(config.batch, model.height, model.width)
        self.num_slots = config.num_requests or 0  # 0 until start() asks the device
        self.output_shape: tuple[int, ...] = ()
        self.optimal_requests = 0  # the device's own figure, known after start()
        self._requests: list[Any] = []
        self._buffers: list[np.ndarray] = []
        self._busy: list[bool] = []
        self._compiled: Any = None
        self._lock = threading.Lock()
        self._started: queue.SimpleQueue[tuple[int, Done] | None] = queue.SimpleQueue()  # in the order started
        self._waiter: threading.Thread | None = None

    def _prepare(self, core: ov.Core) -> ov.Model:
        try:
            model = core.read_model(str(self.model.path))
        except RuntimeError as exc:
            reason = str(exc).splitlines()[0]
            raise ModelError(f"{self.model.path}: OpenVINO cannot read this model: {reason}") from None
        if len(model.inputs) != 1:
            raise ModelError(f"{self.model.path}: expected one input, found {len(model.inputs)}")
        spec = self.input_spec
        model.reshape({model.input(0).get_any_name(): ov.PartialShape([spec.batch, 3, spec.height, spec.width])})
        ppp = PrePostProcessor(model)
        tensor = ppp.input().tensor()
        tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
        if self.model.color == "RGB":
            steps.convert_color(ColorFormat.RGB)
        if self.model.scale != 1.0:
            steps.scale(self.model.scale)
        ppp.output().tensor().set_element_type(ov.Type.f32)
        return ppp.build()

    def start(self) -> None:
        started = time.monotonic()
        cfg = self.config
        core = ov.Core()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        properties: dict[str, Any] = {
            "CACHE_DIR": str(self.cache_dir),
            "PERFORMANCE_HINT": cfg.performance_hint.upper(),
        }
        if cfg.inference_precision in _PRECISION_HINT:
            properties["INFERENCE_PRECISION_HINT"] = _PRECISION_HINT[cfg.inference_precision]
        if cfg.num_streams is not None:
            properties["NUM_STREAMS"] = str(cfg.num_streams)
        if cfg.num_threads is not None:
            properties["INFERENCE_NUM_THREADS"] = cfg.num_threads
        model = self._prepare(core)
        try:
            self._compiled = core.compile_model(model, cfg.device, properties)
        except RuntimeError as exc:
            reason = str(exc).splitlines()[0]
            raise EngineError(f"OpenVINO could not compile the model for {cfg.device}: {reason}") from None
        self.output_shape = tuple(int(d) for d in self._compiled.output(0).get_shape())
        self.optimal_requests = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        if not cfg.num_requests:
            # The device's optimum keeps every stream busy; one more is letterboxed meanwhile and
            # waits inside OpenVINO, so a stream never idles while Python hands the next batch over.
            self.num_slots = self.optimal_requests + 1
        for _ in range(self.num_slots):
            request = self._compiled.create_infer_request()
            buf = np.zeros(self.input_spec.shape, dtype=np.uint8)
            request.set_input_tensor(ov.Tensor(buf, shared_memory=True))
            self._requests.append(request)
            self._buffers.append(buf)
            self._busy.append(False)
        self._warm_up()
        self._waiter = threading.Thread(target=self._wait_loop, name="openvino-wait", daemon=True)
        self._waiter.start()
        log.info("OpenVINO engine ready in %.2f s", time.monotonic() - started)

    def _warm_up(self) -> None:
        for request in self._requests:
            request.infer()

    def _wait_loop(self) -> None:
        """Wait for each started request in turn and hand its output on (a thread of ours)."""
        while True:
            item = self._started.get()
            if item is None:
                return
            slot, done = item
            request = self._requests[slot]
            try:
                request.wait()
                output = request.get_output_tensor(0).data
            except Exception as exc:  # the runtime reports a failed request here
                result: np.ndarray | BaseException = EngineError(f"OpenVINO inference failed: {exc}")
            else:
                result = output
            with self._lock:
                self._busy[slot] = False
            done(result)

    def input_buffer(self, slot: int) -> np.ndarray:
        return self._buffers[slot]

    def submit(self, slot: int, done: Done) -> None:
        with self._lock:
            if self._busy[slot]:
                raise EngineError(f"slot {slot} submitted while still in flight")
            self._busy[slot] = True
        try:
            self._requests[slot].start_async()
        except RuntimeError as exc:
            with self._lock:
                self._busy[slot] = False
            raise EngineError(f"OpenVINO could not start inference: {exc}") from None
        self._started.put((slot, done))

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backend": "openvino",
            "version": ov_version(),
            "model": f"{self.model.name} {self.model.precision}",
            "device": self.config.device,
            "batch": self.input_spec.batch,
            "requests": self.num_slots,
            "optimal_requests": self.optimal_requests,
        }
        if self._compiled is not None:
            for key, name in (("INFERENCE_PRECISION_HINT", "precision"), ("NUM_STREAMS", "streams"),
                              ("INFERENCE_NUM_THREADS", "threads"), ("PERFORMANCE_HINT", "hint")):
                with contextlib.suppress(RuntimeError):
                    out[name] = _plain(self._compiled.get_property(key))
        return out

    def close(self) -> None:
        for request in self._requests:
            with contextlib.suppress(RuntimeError):
                request.wait()
        if self._waiter is not None:
            self._started.put(None)
            self._waiter.join(5.0)
            self._waiter = None
        self._requests.clear()
        self._compiled = None


def _plain(value: Any) -> str:
    """OpenVINO property values (Type, enums) as short strings: 'f32', 'THROUGHPUT'."""
    if hasattr(value, "get_type_name"):
        return str(value.get_type_name())
    if hasattr(value, "name"):
        return str(value.name)
    return str(value)
