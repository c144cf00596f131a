"""TensorRT backend (Jetson): engine deserialized once, pinned buffers, one stream per slot.

One worker thread owns the CUDA context and does every CUDA call. Each slot has its
own execution context, CUDA stream, page-locked host input (the letterbox writes
straight into it), device buffers and page-locked host output. ``submit`` queues the
slot; the worker copies in, runs ``execute_async`` and copies out on the slot's
stream, and reports when the slot's event completes, so the scheduler letterboxes
the next batch into the other slot while this one runs.

Both TensorRT APIs are handled: the tensor API (``num_io_tensors``,
``set_tensor_address``, ``execute_async_v3``; TensorRT 8.5 and 10) and the binding
API (``num_bindings``, ``execute_async_v2``; TensorRT 8.x). An engine whose input is
float NCHW (built where uint8 input was refused) gets a uint8 staging buffer per
slot, converted on the worker thread.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edged.artifacts.info import ModelInfo
from edged.artifacts.trt_meta import check_engine_matches
from edged.config.models import TensorRtConfig
from edged.engines.base import Done, InputSpec
from edged.errors import EngineError, ModelError

log = logging.getLogger(__name__)

_STOP = object()


@dataclass
class TensorIO:
    name: str
    index: int
    is_input: bool
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


def describe_io(trt: Any, engine: Any, batch: int) -> list[TensorIO]:
    """Inputs and outputs, from whichever API this TensorRT has."""
    out = []
    if hasattr(engine, "num_io_tensors"):
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = tuple(int(d) for d in engine.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            out.append(TensorIO(name, i, is_input, shape, dtype))
    else:
        for i in range(engine.num_bindings):
            shape = tuple(int(d) for d in engine.get_binding_shape(i))
            dtype = np.dtype(trt.nptype(engine.get_binding_dtype(i)))
            out.append(TensorIO(engine.get_binding_name(i), i, engine.binding_is_input(i), shape, dtype))
    return [TensorIO(t.name, t.index, t.is_input, tuple(batch if d < 0 else d for d in t.shape), t.dtype)
            for t in out]


class _Slot:
    def __init__(self, cuda: Any, engine: Any, io: list[TensorIO], tensor_api: bool) -> None:
        self.context = engine.create_execution_context()
        self.stream = cuda.Stream()
        self.event = cuda.Event()
        self.host: dict[str, Any] = {}
        self.device: dict[str, Any] = {}
        for t in io:
            self.host[t.name] = cuda.pagelocked_empty(t.shape, t.dtype)
            self.device[t.name] = cuda.mem_alloc(self.host[t.name].nbytes)
            if tensor_api:
                if t.is_input:
                    self.context.set_input_shape(t.name, t.shape)
                self.context.set_tensor_address(t.name, int(self.device[t.name]))
            elif t.is_input and hasattr(self.context, "set_binding_shape"):
                self.context.set_binding_shape(t.index, t.shape)
        self.bindings = [int(self.device[t.name]) for t in sorted(io, key=lambda t: t.index)]
        self.staging: np.ndarray | None = None


class TensorRtEngine:
    def __init__(self, config: TensorRtConfig, model: ModelInfo, cache_dir: Path) -> None:
        self.config = config
        self.model = model
        self.input_spec = InputSpec(config.batch, model.height, model.width)
        self.num_slots = config.num_requests or 2  # ping-pong
        self.output_shape: tuple[int, ...] = ()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._slots: list[_Slot] = []
        self._io: list[TensorIO] = []
        self._thread: threading.Thread | None = None
        self._info: dict[str, Any] = {}

    def start(self) -> None:
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._worker, args=(ready,), name="tensorrt", daemon=True)
        self._thread.start()
        ready.result()

    # -- worker thread: every CUDA call happens here ------------------------------------

    def _worker(self, ready: Future[None]) -> None:
        import pycuda.driver as cuda
        import tensorrt as trt

        context = None
        try:
            cuda.init()
            device = cuda.Device(self.config.gpu)
            context = device.retain_primary_context()
            context.push()
            major, minor = device.compute_capability()
            check_engine_matches(self.model.path, self.model.meta, trt.__version__, f"{major}.{minor}")
            self._setup(trt, cuda)
            self._info = {"version": trt.__version__, "device": device.name(), "compute_capability": f"{major}.{minor}"}
            for slot in range(self.num_slots):
                self._launch(cuda, slot)
                self._slots[slot].event.synchronize()
        except BaseException as exc:
            ready.set_exception(exc)
            if context is not None:
                context.pop()
            return
        ready.set_result(None)
        try:
            self._serve(cuda)
        finally:
            context.pop()

    def _setup(self, trt: Any, cuda: Any) -> None:
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(self.model.path.read_bytes())
        if engine is None:
            raise ModelError(f"{self.model.path}: TensorRT could not deserialize this engine")
        self._engine = engine
        self._io = describe_io(trt, engine, self.config.batch)
        inputs = [t for t in self._io if t.is_input]
        outputs = [t for t in self._io if not t.is_input]
        if len(inputs) != 1 or not outputs:
            raise ModelError(f"{self.model.path}: expected one input and an output, found {len(inputs)} inputs")
        self._input, self._output = inputs[0], outputs[0]
        expected_u8 = (self.config.batch, self.model.height, self.model.width, 3)
        expected_f32 = (self.config.batch, 3, self.model.height, self.model.width)
        if self._input.shape not in (expected_u8, expected_f32):
            raise ModelError(f"{self.model.path}: input {list(self._input.shape)} does not fit engine.batch "
                             f"{self.config.batch} and a {self.model.width}x{self.model.height} model")
        self._float_input = self._input.shape == expected_f32
        tensor_api = hasattr(engine, "num_io_tensors")
        self._tensor_api = tensor_api
        for _ in range(self.num_slots):
            slot = _Slot(cuda, engine, self._io, tensor_api)
            if self._float_input:
                slot.staging = np.zeros(expected_u8, np.uint8)
            self._slots.append(slot)
        self.output_shape = self._output.shape

    def _launch(self, cuda: Any, index: int) -> None:
        slot = self._slots[index]
        host_in = slot.host[self._input.name]
        if slot.staging is not None:  # float engine: BGR uint8 NHWC -> RGB float NCHW / scale
            pixels = slot.staging[..., ::-1] if self.model.color == "RGB" else slot.staging
            np.multiply(pixels.transpose(0, 3, 1, 2), 1.0 / self.model.scale, out=host_in)
        cuda.memcpy_htod_async(slot.device[self._input.name], host_in, slot.stream)
        if self._tensor_api:
            ok = slot.context.execute_async_v3(slot.stream.handle)
        else:
            ok = slot.context.execute_async_v2(slot.bindings, slot.stream.handle)
        if not ok:
            raise EngineError("TensorRT could not enqueue inference")
        cuda.memcpy_dtoh_async(slot.host[self._output.name], slot.device[self._output.name], slot.stream)
        slot.event.record(slot.stream)

    def _serve(self, cuda: Any) -> None:
        pending: collections.deque[tuple[int, Done]] = collections.deque()
        while True:
            try:
                job = self._jobs.get(block=not pending)
            except queue.Empty:
                job = None
            if job is _STOP:
                break
            if job is not None:
                index, done = job
                try:
                    self._launch(cuda, index)
                except Exception as exc:
                    done(EngineError(f"TensorRT inference failed: {exc}"))
                    continue
                pending.append((index, done))
                continue
            index, done = pending.popleft()
            try:
                self._slots[index].event.synchronize()
            except Exception as exc:
                done(EngineError(f"TensorRT inference failed: {exc}"))
                continue
            done(self._slots[index].host[self._output.name])
        for index, done in pending:
            self._slots[index].event.synchronize()
            done(EngineError("the engine was closed"))

    # -- Engine protocol --------------------------------------------------------------

    def input_buffer(self, slot: int) -> np.ndarray:
        s = self._slots[slot]
        return s.staging if s.staging is not None else s.host[self._input.name]

    def submit(self, slot: int, done: Done) -> None:
        if self._thread is None or not self._thread.is_alive():
            raise EngineError("the TensorRT engine is not running")
        self._jobs.put((slot, done))

    def describe(self) -> dict[str, Any]:
        return {"backend": "tensorrt", "model": f"{self.model.name} {self.model.precision}",
                "precision": self.model.precision,
                "batch": self.input_spec.batch, "requests": self.num_slots, **self._info}

    def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join(10)
            self._thread = None
