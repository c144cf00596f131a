"""A classifier on TensorRT (a Jetson's GPU): a serialized engine (``.engine``, built with ``trtexec``
from the classifier's ONNX) with one float ``[N, 3, H, W]`` input and one ``[N, C]`` output.

Written against TensorRT's tensor API (8.6 and 10, as the detector's backend) and pycuda; it runs on the looks
thread, which makes the GPU's primary context current around each batch (the engine was loaded on another thread).
The classifier normalises the crops on the CPU straight into the page-locked input (the channel order, 1/255, mean
and std, as for ONNX Runtime); they are copied in, run and copied out on one stream. The engine's precision is the
one it was built with.
Not run here: no GPU and no TensorRT on the machines this project is built on; its tests skip where TensorRT is
missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edged.engines.tensorrt import check_version, describe_io
from edged.errors import EngineUnavailable, ModelError


def load_tensorrt(path: Path, batch: int, gpu: int = 0) -> tuple[Any, Any, Any]:
    """(tensorrt, pycuda.driver, the retained primary context), TensorRT's version checked; the context is not
    left current."""
    try:
        import pycuda.driver as cuda
        import tensorrt as trt
    except ImportError:
        raise EngineUnavailable(f"{path}: backend tensorrt needs TensorRT and pycuda (JetPack 6: TensorRT 8.6 or "
                                f"10); they are not installed here") from None
    check_version(trt.__version__)
    cuda.init()
    return trt, cuda, cuda.Device(gpu).retain_primary_context()


class TensorRtClassifier:
    """The caller normalises crops into ``host_in[:n]`` (float ``[batch, 3, H, W]``, page-locked), then
    ``run(n)`` gives the raw scores ``[n, C]``."""

    def __init__(self, path: Path, batch: int) -> None:
        self.path = path
        self.batch = batch
        self.host_in = np.zeros(0, np.float32)
        self.height = self.width = self.classes = 0
        self.device = ""
        self._trt: Any = None
        self._cuda: Any = None
        self._context: Any = None

    def start(self) -> None:
        trt, cuda, context = load_tensorrt(self.path, self.batch)
        self._trt, self._cuda, self._context = trt, cuda, context
        context.push()
        try:
            self._setup(trt, cuda)
            self.device = cuda.Context.get_device().name()
        finally:
            context.pop()

    def _setup(self, trt: Any, cuda: Any) -> None:
        engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise ModelError(f"{self.path}: TensorRT could not deserialize this engine (built for another "
                             f"TensorRT or GPU?)")
        io = describe_io(trt, engine, self.batch)
        inputs = [t for t in io if t.is_input]
        outputs = [t for t in io if not t.is_input]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.path}: one input and one output expected, found {len(inputs)} and "
                             f"{len(outputs)}")
        source, scores = inputs[0], outputs[0]
        if len(source.shape) != 4 or source.shape[1] != 3 or source.dtype.kind != "f":
            raise ModelError(f"{self.path}: the input must be float [N, 3, H, W], not {list(source.shape)} "
                             f"{source.dtype}")
        if source.shape[0] != self.batch:
            raise ModelError(f"{self.path}: the engine takes batches of {source.shape[0]}; set this classifier's "
                             f"'batch: {source.shape[0]}' (or build it with a dynamic batch)")
        if len(scores.shape) != 2:
            raise ModelError(f"{self.path}: a classifier's output is [N, C], not {list(scores.shape)}")
        self.height, self.width, self.classes = source.shape[2], source.shape[3], scores.shape[1]
        self._exec = engine.create_execution_context()
        self._engine = engine  # the context needs its engine alive
        self._stream = cuda.Stream()
        self.host_in = cuda.pagelocked_empty(source.shape, source.dtype)
        self._host_out = cuda.pagelocked_empty(scores.shape, scores.dtype)
        self._device_in = cuda.mem_alloc(self.host_in.nbytes)
        self._device_out = cuda.mem_alloc(self._host_out.nbytes)
        self._exec.set_input_shape(source.name, source.shape)
        self._exec.set_tensor_address(source.name, int(self._device_in))
        self._exec.set_tensor_address(scores.name, int(self._device_out))

    def run(self, count: int) -> np.ndarray:
        cuda, stream = self._cuda, self._stream
        self._context.push()
        try:
            cuda.memcpy_htod_async(self._device_in, self.host_in, stream)
            if not self._exec.execute_async_v3(stream.handle):
                raise ModelError(f"{self.path}: TensorRT failed to run the batch")
            cuda.memcpy_dtoh_async(self._host_out, self._device_out, stream)
            stream.synchronize()
        finally:
            self._context.pop()
        return np.array(self._host_out[:count], np.float32)
