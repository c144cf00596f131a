"""TensorRT backend (Jetson): engine deserialized once, pinned buffers, one stream per slot.

One worker thread owns the CUDA context and does every CUDA call. Each slot has its
own execution context, CUDA stream, page-locked host input (the letterbox writes
straight into it), device buffers and page-locked host output. ``submit`` queues the
slot; the worker copies in, runs ``execute_async`` and copies out on the slot's
stream, and reports when the slot's event completes, so the scheduler letterboxes
the next batch into the other slot while this one runs.

TensorRT 8.6 (JetPack 6.0) is the oldest supported: its tensor API (``num_io_tensors``,
``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) is the one TensorRT
10 kept. Output shapes are read from the execution context once the input shape is
set (a dynamic output need not follow the batch); every output gets its buffers, and
the first is the detector's. Element types map through a table of our own, not
``trt.nptype`` (which TensorRT 8.5 built on ``np.bool``, gone from numpy >= 1.24). An
engine whose input is float NCHW (built where uint8 input was refused) gets a uint8
staging buffer per slot, converted on the worker thread.
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


# TensorRT DataType names -> numpy element types (BF16/FP8/INT4 have no numpy type; refused below).
_DTYPES: dict[str, type[np.generic]] = {
    "FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
    "BOOL": np.bool_, "UINT8": np.uint8,
}
MIN_VERSION = (8, 6)


def numpy_dtype(trt_dtype: Any) -> np.dtype[Any]:
    name = getattr(trt_dtype, "name", str(trt_dtype)).rsplit(".", 1)[-1].upper()
    if name not in _DTYPES:
        raise ModelError(f"the engine has a {name} tensor, which edged cannot feed or read (rebuild it in FP16, "
                         f"FP32 or INT8 with uint8 or float input)")
    return np.dtype(_DTYPES[name])


def describe_io(trt: Any, engine: Any, batch: int) -> list[TensorIO]:
    """Inputs with the batch filled in, then outputs as the context computes them for those inputs."""
    if not hasattr(engine, "num_io_tensors"):
        raise EngineError("this TensorRT has no tensor API (TensorRT < 8.5); edged needs JetPack 6 (TensorRT 8.6+)")
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = {n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT}
    context = engine.create_execution_context()
    out = []
    for i, name in enumerate(names):
        if name in inputs:
            shape = tuple(batch if d < 0 else int(d) for d in engine.get_tensor_shape(name))
            context.set_input_shape(name, shape)
            out.append(TensorIO(name, i, True, shape, numpy_dtype(engine.get_tensor_dtype(name))))
    for i, name in enumerate(names):
        if name not in inputs:
            shape = tuple(int(d) for d in context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ModelError(f"output {name!r} has no static shape {list(shape)} for this input")
            out.append(TensorIO(name, i, False, shape, numpy_dtype(engine.get_tensor_dtype(name))))
    return out


def check_version(version: str) -> None:
    found = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if found < MIN_VERSION:
        raise EngineError(f"TensorRT {version} is older than 8.6: edged needs JetPack 6 (TensorRT 8.6 or 10) or "
                          f"newer; JetPack 5 and earlier are not supported")


class _Slot:
    def __init__(self, cuda: Any, engine: Any, io: list[TensorIO]) -> None:
        self.context = engine.create_execution_context()
        self.stream = cuda.Stream()
        self.event = cuda.Event()
        self.host: dict[str, Any] = {}
        self.device: dict[str, Any] = {}
        for t in io:
            self.host[t.name] = cuda.pagelocked_empty(t.shape, t.dtype)
            self.device[t.name] = cuda.mem_alloc(self.host[t.name].nbytes)
            if t.is_input:
                self.context.set_input_shape(t.name, t.shape)
            self.context.set_tensor_address(t.name, int(self.device[t.name]))
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
            check_version(trt.__version__)
            check_engine_matches(self.model.path, self.model.meta, trt.__version__, f"{major}.{minor}", device.name())
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
        self._input, self._output = inputs[0], outputs[0]  # every output gets buffers; the first is the detector's
        expected_u8 = (self.config.batch, self.model.height, self.model.width, 3)
        expected_f32 = (self.config.batch, 3, self.model.height, self.model.width)
        if self._input.shape not in (expected_u8, expected_f32):
            raise ModelError(f"{self.model.path}: input {list(self._input.shape)} does not fit engine.batch "
                             f"{self.config.batch} and a {self.model.width}x{self.model.height} model")
        self._float_input = self._input.shape == expected_f32
        for _ in range(self.num_slots):
            slot = _Slot(cuda, engine, self._io)
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
        if not slot.context.execute_async_v3(slot.stream.handle):
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
