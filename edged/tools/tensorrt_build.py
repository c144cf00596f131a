"""Build a TensorRT engine on the device (a Jetson) from a model in the cache.

The network is the model's ONNX with edged's uint8 BGR NHWC input prepended (the
same graph ONNX Runtime runs), so the engine takes the letterboxed frame as it is
and converts it on the GPU; a TensorRT whose ONNX parser refuses uint8 inputs gets
the plain float graph instead. INT8 uses an entropy calibrator fed from the same
calibration frames as OpenVINO's INT8, with a calibration cache keyed by the frames
and the model, so a rebuild after a JetPack upgrade skips calibration. FP16 is
enabled alongside INT8 for the layers that stay in float.

The engine's sidecar records the TensorRT version and the GPU compute capability;
the runtime refuses an engine built for anything else (trt_meta.py).

TensorRT 10.1 deprecated this implicit-quantization path (an ``IInt8`` calibrator);
TensorRT 10.3 (JetPack 6.1/6.2) still builds with it, and edged keeps it because it
needs nothing beyond TensorRT on the device. Its successor is explicit quantization:
an ONNX with Q/DQ nodes (NNCF or NVIDIA's Model Optimizer) built with the INT8 flag
and no calibrator; that is the way once a TensorRT drops the calibrator.

Each calibration cache has a sidecar naming the graph (model and input layout) it
was made for, so ``jetson/build_engine.sh`` hands trtexec only a cache of the graph
it builds: a cache from another graph makes TensorRT fall back from INT8 silently.

Everything that does not need TensorRT (batch feeding, cache handling, naming,
the record) is plain code that the tests run anywhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edged.artifacts.meta import ModelMeta, RuntimeMeta, file_digest
from edged.artifacts.trt_meta import engine_name
from edged.artifacts.zoo import BuiltModel
from edged.errors import EngineUnavailable, ModelError
from edged.models.yolo import Letterbox

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 1 << 30


class CalibrationFeeder:
    """Letterboxes calibration frames, a batch at a time, into one preallocated host array.

    ``layout``: ``nhwc-u8`` (the engine takes frames as they are) or ``nchw-f32``
    (the float graph: RGB or BGR per ``color``, divided by ``scale``).
    """

    def __init__(self, images: Sequence[Path], batch: int, height: int, width: int,
                 layout: str = "nhwc-u8", color: str = "RGB", scale: float = 255.0, resize: str = "letterbox") -> None:
        if layout not in ("nhwc-u8", "nchw-f32"):
            raise ValueError(f"unknown layout {layout}")
        self.images = list(images)
        self.batch, self.height, self.width = batch, height, width
        self.layout, self.color, self.scale, self.resize = layout, color, scale, resize
        self._canvas = np.empty((batch, height, width, 3), np.uint8)
        if layout == "nhwc-u8":
            self.host = self._canvas
        else:
            self.host = np.empty((batch, 3, height, width), np.float32)
        self.position = 0

    @property
    def batches(self) -> int:
        return len(self.images) // self.batch  # TensorRT wants full batches only

    def reset(self) -> None:
        self.position = 0

    def next_batch(self) -> np.ndarray | None:
        if self.position + self.batch > len(self.images):
            return None
        for i in range(self.batch):
            path = self.images[self.position + i]
            image = cv2.imread(str(path))
            if image is None:
                raise ModelError(f"{path}: not an image")
            Letterbox.fit(image.shape[1], image.shape[0], self.width, self.height,
                          resize=self.resize).apply(image, self._canvas[i])
        self.position += self.batch
        if self.layout == "nchw-f32":
            pixels = self._canvas[..., ::-1] if self.color == "RGB" else self._canvas
            np.multiply(pixels.transpose(0, 3, 1, 2), 1.0 / self.scale, out=self.host)
        return self.host


class CalibrationCache:
    """TensorRT's calibration table on disk, named after the frames and the model."""

    def __init__(self, directory: Path, model_key: str, images: Sequence[Path], layout: str) -> None:
        h = hashlib.sha256(f"{model_key}|{layout}".encode())
        for path in images:
            h.update(path.name.encode())
            h.update(path.read_bytes())
        self.path = directory / f"trt-calibration-{h.hexdigest()[:12]}.cache"
        self.graph = {"model": model_key, "layout": layout, "frames": len(images)}

    def read(self) -> bytes | None:
        if self.path.is_file():
            log.info("using the calibration cache %s", self.path)
            return self.path.read_bytes()
        return None

    def write(self, data: bytes) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_bytes(bytes(data))
        tmp.replace(self.path)
        self.path.with_suffix(".json").write_text(json.dumps(self.graph))


def matching_calibration(directory: Path, model_key: str, layout: str) -> Path | None:
    """The newest calibration cache made for this graph (model and input layout), or None."""
    found = []
    for cache in directory.glob("trt-calibration-*.cache"):
        try:
            graph = json.loads(cache.with_suffix(".json").read_text())
        except (OSError, ValueError):
            continue  # no record of its graph: it may be another graph's, which TensorRT would not say
        if graph.get("model") == model_key and graph.get("layout") == layout:
            found.append(cache)
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def engine_record(base: ModelMeta, precision: str, path: Path, trt_version: str, device: str,
                  compute_capability: str, batch: int) -> ModelMeta:
    """The sidecar of a freshly built engine."""
    return base.model_copy(update={
        "precision": precision, "file_sha256": file_digest(path), "created": time.time(),
        "input": base.input.model_copy(update={"batch": batch}),
        "runtime": RuntimeMeta(runtime="tensorrt", version=trt_version, device=device,
                               compute_capability=compute_capability),
    })


def _import_runtime() -> tuple[Any, Any]:
    try:
        import pycuda.driver as cuda
        import tensorrt as trt
    except ImportError as exc:
        raise EngineUnavailable(
            f"building a TensorRT engine needs TensorRT and pycuda on the device ({exc.name} is missing); on a "
            f"Jetson: sudo apt-get install python3-libnvinfer python3-pycuda, or use jetson/build_engine.sh"
        ) from None
    return trt, cuda


def _calibrator(trt: Any, cuda: Any, feeder: CalibrationFeeder, cache: CalibrationCache) -> Any:
    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.device = cuda.mem_alloc(feeder.host.nbytes)

        def get_batch_size(self) -> int:
            return feeder.batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            host = feeder.next_batch()
            if host is None:
                return None
            log.info("calibrating: batch %d/%d", feeder.position // feeder.batch, feeder.batches)
            cuda.memcpy_htod(self.device, host)
            return [int(self.device)]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read()

        def write_calibration_cache(self, data: Any) -> None:
            cache.write(bytes(data))

    return EntropyCalibrator()


def _parse(trt: Any, builder: Any, logger: Any, onnx_bytes: bytes) -> tuple[Any, Any]:
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if hasattr(
        trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH") else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        return None, errors
    return network, ""


def build_for_device(built: BuiltModel, precision: str, images: Sequence[Path], cache_dir: Path,
                     batch: int = 1, gpu: int = 0) -> Path:
    """Build and record an engine for this device; returns its path in the model's directory."""
    trt, cuda = _import_runtime()
    from edged.artifacts.onnx_wrap import wrap_u8_bgr

    if precision == "int8" and len(images) < batch:
        raise ModelError("an INT8 TensorRT engine needs calibration frames: --calibration DIR or edged calibrate")
    cuda.init()
    device = cuda.Device(gpu)
    context = device.retain_primary_context()
    context.push()
    try:
        major, minor = device.compute_capability()
        capability = f"{major}.{minor}"
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        meta = built.meta
        layout = "nhwc-u8"
        network, errors = _parse(trt, builder, logger, wrap_u8_bgr(built.onnx, batch, meta.input.color,
                                                                    meta.input.scale))
        if network is None:
            log.warning("this TensorRT cannot take uint8 input (%s); building with a float input", errors)
            layout = "nchw-f32"
            network, errors = _parse(trt, builder, logger, built.onnx.read_bytes())
            if network is None:
                raise ModelError(f"{built.onnx}: TensorRT cannot parse it: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        inp = network.get_input(0)
        if any(d < 0 for d in inp.shape):
            profile = builder.create_optimization_profile()
            shape = (batch, *inp.shape[1:])
            profile.set_shape(inp.name, shape, shape, shape)
            config.add_optimization_profile(profile)
            if precision == "int8":
                config.set_calibration_profile(profile)
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            feeder = CalibrationFeeder(images, batch, meta.input.height, meta.input.width, layout,
                                       meta.input.color, meta.input.scale, resize=meta.input.resize)
            cache = CalibrationCache(built.directory, meta.source.sha256, images, layout)
            config.int8_calibrator = _calibrator(trt, cuda, feeder, cache)
        started = time.monotonic()
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ModelError(f"TensorRT could not build a {precision} engine for {built.name} (see its log above)")
        path = built.directory / engine_name(precision, capability, trt.__version__)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(bytes(serialized))
        tmp.replace(path)
        record = engine_record(meta, precision, path, trt.__version__, device.name(), capability, batch)
        record.write(path.with_suffix(".json"))
        log.info("built %s in %.0f s", path, time.monotonic() - started)
        return path
    finally:
        context.pop()


def register_engine(built: BuiltModel, engine: Path, precision: str, batch: int, gpu: int = 0) -> Path:
    """Give an engine built outside edged (trtexec) its sidecar, read from this device."""
    trt, cuda = _import_runtime()
    cuda.init()
    device = cuda.Device(gpu)
    major, minor = device.compute_capability()
    capability = f"{major}.{minor}"
    target = built.directory / engine_name(precision, capability, trt.__version__)
    if engine.resolve() != target.resolve():
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(engine.read_bytes())
        tmp.replace(target)
    engine_record(built.meta, precision, target, trt.__version__, device.name(), capability, batch).write(
        target.with_suffix(".json"))
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Helpers for jetson/build_engine.sh: ``wrap`` writes the uint8-input ONNX that trtexec
    builds from; ``calibration`` prints the calibration cache made for that graph; ``register``
    records a finished engine for this device."""
    import argparse
    import os
    import sys

    from edged.artifacts import zoo
    from edged.artifacts.onnx_wrap import wrap_u8_bgr
    from edged.paths import default_cache_dir

    parser = argparse.ArgumentParser(prog="python -m edged.tools.tensorrt_build", description=main.__doc__)
    parser.add_argument("action", choices=["wrap", "calibration", "register"])
    parser.add_argument("model", help="model name in the cache")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--out", type=Path, help="wrap: where to write the ONNX")
    parser.add_argument("--engine", type=Path, help="register: the engine trtexec wrote")
    parser.add_argument("--precision", choices=["fp16", "int8", "fp32"], default="fp16")
    args = parser.parse_args(argv)
    cache = default_cache_dir(dict(os.environ))
    built = zoo.find_built(args.model, cache)
    if built is None:
        parser.error(f"model '{args.model}' is not built in {cache}")
    if args.action == "wrap":
        if args.out is None:
            parser.error("wrap needs --out")
        args.out.write_bytes(wrap_u8_bgr(built.onnx, args.batch, built.meta.input.color, built.meta.input.scale))
        print(args.out)
    elif args.action == "calibration":
        cache_file = matching_calibration(built.directory, built.meta.source.sha256, "nhwc-u8")
        if cache_file is None:
            print(f"no INT8 calibration cache for {args.model}'s uint8-input graph in {built.directory}; run "
                  f"'edged calibrate -c CONFIG' with a tensorrt engine in the config first", file=sys.stderr)
            return 2
        print(cache_file)
    else:
        if args.engine is None:
            parser.error("register needs --engine")
        print(register_engine(built, args.engine, args.precision, args.batch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
