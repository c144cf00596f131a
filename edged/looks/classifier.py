"""A classifier on crops: an ONNX or OpenVINO IR model (or a TensorRT engine built from one: ``looks.trt``) with one
``[N, 3, H, W]`` input and one ``[N, C]`` output, run synchronously on the looks thread, a batch of crops at a time.

Crops arrive as uint8 BGR ``[n, H, W, 3]`` (the crop step resizes straight into the runtime's buffer). On OpenVINO
the channel order, the scaling to 0..1, the mean and the std are compiled into the graph (PrePostProcessor) and the
batch is dynamic, so a batch of 3 costs 3 crops, not ``batch``; on ONNX Runtime and TensorRT they are a few numpy
steps on the batch, into a preallocated float buffer (TensorRT's page-locked input).

Checked at start: one input of rank 4 with fixed H and W, an ``[N, C]`` output, and C equal to the number of labels
(a mismatch is one line, exit 2).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from edged.config.looks import ClassifierConfig
from edged.errors import EngineUnavailable, ModelError
from edged.models.labels import read_labels

log = logging.getLogger(__name__)


def classifier_labels(name: str, config: ClassifierConfig) -> list[str]:
    if isinstance(config.labels, list):
        return list(config.labels)
    try:
        labels = read_labels(config.labels.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"classifiers.{name}.labels: cannot read {config.labels}: {exc}") from None
    if not labels:
        raise ModelError(f"classifiers.{name}.labels: {config.labels} holds no label")
    return labels


class Classifier:
    def __init__(self, name: str, config: ClassifierConfig, cache_dir: Path) -> None:
        self.name = name
        self.config = config
        self.cache_dir = cache_dir
        self.labels = classifier_labels(name, config)
        self.height = self.width = 0
        self._run: Any = None
        self.describe: dict[str, Any] = {}

    def start(self) -> None:
        path = self.config.model
        if not path.is_file():
            raise ModelError(f"classifiers.{self.name}.model: {path} does not exist")
        started = time.monotonic()
        if self.config.backend == "openvino":
            self._start_openvino()
        elif self.config.backend == "tensorrt":
            self._start_tensorrt()
        else:
            self._start_onnxruntime()
        self.infer(np.zeros((1, self.height, self.width, 3), np.uint8))  # warm
        log.info("classifier %s ready in %.2f s: %s, %dx%d, %d labels", self.name, time.monotonic() - started,
                 path.name, self.width, self.height, len(self.labels))

    def _geometry(self, shape: list[Any]) -> None:
        where = f"classifiers.{self.name}.model: {self.config.model}"
        if len(shape) != 4 or not isinstance(shape[2], int) or not isinstance(shape[3], int) or shape[2] <= 0:
            raise ModelError(f"{where}: the input must be [N, 3, H, W] with a fixed H and W, not {shape}")
        if shape[1] != 3:
            raise ModelError(f"{where}: the input must have 3 channels first ([N, 3, H, W]), not {shape}")
        self.height, self.width = int(shape[2]), int(shape[3])

    def _check_output(self, shape: list[Any]) -> None:
        where = f"classifiers.{self.name}.model: {self.config.model}"
        if len(shape) != 2:
            raise ModelError(f"{where}: a classifier's output is [N, C], not {list(shape)}")
        if isinstance(shape[1], int) and shape[1] != len(self.labels):
            raise ModelError(f"{where}: the output has {shape[1]} classes but {len(self.labels)} labels are given")

    def inspect(self) -> None:
        """Read the model (not compiled) and check its input and output against the labels: ``edged check``."""
        if not self.config.model.is_file():
            raise ModelError(f"classifiers.{self.name}.model: {self.config.model} does not exist")
        if self.config.backend == "tensorrt":  # an engine is read only by loading it, on the GPU
            self._start_tensorrt()
            return
        from edged.engines.ov import openvino as ov

        try:
            model = ov.Core().read_model(str(self.config.model))
        except RuntimeError as exc:
            raise ModelError(f"classifiers.{self.name}.model: OpenVINO cannot read {self.config.model}: "
                             f"{str(exc).splitlines()[0]}") from None
        self._geometry([d.get_length() if d.is_static else None for d in model.input(0).get_partial_shape()])
        self._check_output([d.get_length() if d.is_static else None for d in model.output(0).get_partial_shape()])

    def _start_openvino(self) -> None:
        from edged.engines.ov import openvino as ov

        from openvino.preprocess import ColorFormat, PrePostProcessor  # isort: skip

        core = ov.Core()
        try:
            model = core.read_model(str(self.config.model))
        except RuntimeError as exc:
            raise ModelError(f"classifiers.{self.name}.model: OpenVINO cannot read {self.config.model}: "
                             f"{str(exc).splitlines()[0]}") from None
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ModelError(f"classifiers.{self.name}.model: one input and one output expected, found "
                             f"{len(model.inputs)} and {len(model.outputs)}")
        shape = [d.get_length() if d.is_static else None for d in model.input(0).get_partial_shape()]
        self._geometry(shape)
        model.reshape({model.input(0).get_any_name(): ov.PartialShape([-1, 3, self.height, self.width])})
        ppp = PrePostProcessor(model)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")) \
            .set_color_format(ColorFormat.BGR)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
        if self.config.color == "RGB":
            steps.convert_color(ColorFormat.RGB)
        steps.scale(255.0).mean(list(self.config.mean)).scale(list(self.config.std))
        ppp.output().tensor().set_element_type(ov.Type.f32)
        model = ppp.build()
        out = [d.get_length() if d.is_static else None for d in model.output(0).get_partial_shape()]
        self._check_output(out)
        properties: dict[str, Any] = {"CACHE_DIR": str(self.cache_dir / "openvino"), "PERFORMANCE_HINT": "LATENCY"}
        if self.config.device == "CPU":
            properties |= {"INFERENCE_NUM_THREADS": self.config.threads, "NUM_STREAMS": "1"}
        if self.config.inference_precision != "auto":
            properties["INFERENCE_PRECISION_HINT"] = self.config.inference_precision
        try:
            compiled = core.compile_model(model, self.config.device, properties)
        except RuntimeError as exc:
            raise EngineUnavailable(f"classifiers.{self.name}: OpenVINO cannot compile it for "
                                    f"{self.config.device}: {str(exc).splitlines()[0]}") from None
        request = compiled.create_infer_request()
        self.describe = {"backend": "openvino", "device": self.config.device,
                         "precision": _type_name(compiled.get_property("INFERENCE_PRECISION_HINT"))}

        def run(batch: np.ndarray) -> np.ndarray:
            request.set_input_tensor(ov.Tensor(batch, shared_memory=True))
            request.infer()
            return np.asarray(request.get_output_tensor(0).data)

        self._run = run

    def _start_onnxruntime(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise EngineUnavailable(f"classifiers.{self.name}: backend onnxruntime needs the 'onnxruntime' "
                                    f"package (pip install 'edged[onnxruntime]')") from None
        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.config.threads
            session = ort.InferenceSession(str(self.config.model), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise ModelError(f"classifiers.{self.name}.model: ONNX Runtime cannot load {self.config.model}: "
                             f"{str(exc).splitlines()[0]}") from None
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"classifiers.{self.name}.model: one input and one output expected")
        self._geometry(list(inputs[0].shape))
        self._check_output(list(outputs[0].shape))
        normalise = self._normaliser()
        floats = np.zeros((self.config.batch, 3, self.height, self.width), np.float32)
        name = inputs[0].name
        self.describe = {"backend": "onnxruntime", "device": "CPU", "precision": "f32"}

        def run(batch: np.ndarray) -> np.ndarray:
            out = floats[:len(batch)]
            normalise(batch, out)
            return np.asarray(session.run(None, {name: out})[0])

        self._run = run

    def _start_tensorrt(self) -> None:
        from edged.looks.trt import TensorRtClassifier

        engine = TensorRtClassifier(self.config.model, self.config.batch)
        try:
            engine.start()
        except (ModelError, EngineUnavailable) as exc:
            raise type(exc)(f"classifiers.{self.name}.model: {exc}") from None
        self.height, self.width = engine.height, engine.width
        self._check_output([self.config.batch, engine.classes])
        normalise = self._normaliser()
        self.describe = {"backend": "tensorrt", "device": engine.device, "precision": "as built"}

        def run(batch: np.ndarray) -> np.ndarray:
            normalise(batch, engine.host_in[:len(batch)])
            return engine.run(len(batch))

        self._run = run

    def _normaliser(self) -> Any:
        """``normalise(crops, out)``: uint8 BGR ``[n, H, W, 3]`` into float ``[n, 3, H, W]`` as the model was
        trained (channel order, 0..1, mean, std)."""
        order = [2, 1, 0] if self.config.color == "RGB" else [0, 1, 2]
        scale = (1.0 / (255.0 * np.asarray(self.config.std, np.float32))).reshape(1, 3, 1, 1)
        shift = np.asarray(np.divide(self.config.mean, self.config.std), np.float32).reshape(1, 3, 1, 1)

        def normalise(crops: np.ndarray, out: np.ndarray) -> None:
            np.copyto(out, crops[..., order].transpose(0, 3, 1, 2), casting="unsafe")
            out *= scale
            out -= shift

        return normalise

    def buffers(self) -> np.ndarray:
        """A tray of ``batch`` crops as this classifier takes them: uint8 BGR ``[batch, H, W, 3]``."""
        return np.zeros((self.config.batch, self.height, self.width, 3), np.uint8)

    def infer(self, crops: np.ndarray) -> np.ndarray:
        """Scores ``[n, C]`` (probabilities) for ``crops`` (uint8 BGR ``[n, H, W, 3]``, contiguous)."""
        count = len(crops)
        raw = np.asarray(self._run(crops), np.float32).reshape(count, -1)
        if raw.shape[1] != len(self.labels):
            raise ModelError(f"classifiers.{self.name}: the output has {raw.shape[1]} classes but "
                             f"{len(self.labels)} labels are given")
        return probabilities(raw, self.config.softmax)


def probabilities(raw: np.ndarray, softmax: str) -> np.ndarray:
    """Softmax over classes where asked, or (auto) where rows are not already probabilities."""
    if softmax == "no":
        return raw
    if softmax == "auto" and raw.min() >= 0 and np.allclose(raw.sum(axis=1), 1.0, atol=1e-3):
        return raw
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


def _type_name(value: Any) -> str:
    """OpenVINO's element type as a short string: 'bf16', 'f32'."""
    return str(value.get_type_name()) if hasattr(value, "get_type_name") else str(value)
