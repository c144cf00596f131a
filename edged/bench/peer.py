"""The peer a user would pick instead of edged: an Ultralytics ``predict(stream=True)`` loop.

Ultralytics lives in a virtualenv of its own (``<cache>/peer-venv``): torch is
pinned to the 2.13.0 CPU build before anything else is installed, so pip never
pulls a multi-GB CUDA build, and its OpenCV 5 never meets edged's. The model is
YOLOv8n built from its YAML (random weights: this measures speed, not accuracy),
exported by Ultralytics itself to OpenVINO IR and to ONNX.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from edged.errors import EdgedError

log = logging.getLogger(__name__)

TORCH = "torch==2.13.0"
PACKAGES = ("ultralytics", "onnx", "onnxslim", "openvino")

_SCRIPT = r"""
import importlib.util, json, os, sys, time
import torch

# PyPI's torchvision is built against the CUDA torch: beside the CPU torch 2.13.0 its
# C++ kernels do not load, and importing it then fails on its unconditional NMS
# registration. Give it the two operator schemas, with Ultralytics' own NMS (the one
# Ultralytics uses when torchvision is absent) as the CPU kernel; the rest of torchvision
# is pure Python. A random-weight YOLOv8n leaves next to nothing for NMS anyway.
_spec = importlib.util.find_spec("torchvision")
try:
    torch.ops.load_library(os.path.join(os.path.dirname(_spec.origin), "_C.so"))
    SHIM = False
except OSError:
    _lib = torch.library.Library("torchvision", "DEF")
    _lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")

    def _nms(dets, scores, iou_threshold):
        from ultralytics.utils.nms import TorchNMS

        return TorchNMS.nms(dets, scores, iou_threshold)

    _lib.impl("nms", _nms, "CPU")
    SHIM = True

# What precision does Ultralytics' OpenVINO model really run at? Its AutoBackend compiles
# with OpenVINO's defaults; wrap compile_model to read the precision back from the
# compiled model, and to pin it where asked (EDGED_PEER_PRECISION=f32).
COMPILED = []
try:
    import openvino as _ov

    _compile_model = _ov.Core.compile_model

    def _compile(self, model, device_name=None, config=None, **kw):
        config = dict(config or {})
        if os.environ.get("EDGED_PEER_PRECISION"):
            config["INFERENCE_PRECISION_HINT"] = os.environ["EDGED_PEER_PRECISION"]
        compiled = _compile_model(self, model, device_name, config, **kw)
        try:
            COMPILED.append(str(compiled.get_property("INFERENCE_PRECISION_HINT")))
        except Exception:
            COMPILED.append("unknown")
        return compiled

    _ov.Core.compile_model = _compile
except ImportError:
    pass

from ultralytics import YOLO

command = sys.argv[1]
if command == "export":
    out, imgsz = sys.argv[2], int(sys.argv[3])
    model = YOLO("yolov8n.yaml")  # random weights: speed, not accuracy
    pt = f"{out}/yolov8n.pt"
    model.save(pt)
    openvino = YOLO(pt).export(format="openvino", imgsz=imgsz, half=False, dynamic=False, verbose=False)
    onnx = YOLO(pt).export(format="onnx", imgsz=imgsz, opset=13, dynamic=True, simplify=True, verbose=False)
    print(json.dumps({"pt": pt, "openvino": str(openvino), "onnx": str(onnx)}))
elif command == "live":
    # Live RTSP streams, as a user would: a streams file, predict(stream=True). Frame age at the
    # callback: the time each stream's frame was read, kept beside the reader's per-stream buffers.
    import resource
    from ultralytics.data import loaders

    weights, streams, seconds, imgsz = sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
    READ = []  # per stream: when the frame in the current batch was read

    class Timed(list):
        # the reader's per-stream buffers; a reader thread replaces a stream's buffer with each frame

        def __init__(self, items):
            super().__init__(items)
            self.times = [time.monotonic()] * len(self)

        def __setitem__(self, index, value):
            super().__setitem__(index, value)
            self.times[index] = time.monotonic()

    _init, _next = loaders.LoadStreams.__init__, loaders.LoadStreams.__next__

    def init(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        self.imgs = Timed(self.imgs)

    def next_(self):
        out = _next(self)
        # Read after the frames were taken: a newer frame may have come meanwhile, so the age is, if
        # anything, too small (in Ultralytics' favour).
        READ[:] = list(getattr(self.imgs, "times", []))
        return out

    loaders.LoadStreams.__init__, loaders.LoadStreams.__next__ = init, next_
    model = YOLO(weights, task="detect")
    gen = model.predict(source=streams, stream=True, imgsz=imgsz, verbose=False, device="cpu")
    n = len([line for line in open(streams) if line.strip()])
    for _ in zip(range(10 * n), gen):  # warm up
        pass
    counts, ages, index = [0] * n, [], 0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, started = usage.ru_utime + usage.ru_stime, time.perf_counter()
    while time.perf_counter() - started < seconds:
        next(gen)
        now = time.monotonic()
        stream = index % n
        counts[stream] += 1
        if len(READ) == n and READ[stream] is not None:
            ages.append((now - READ[stream]) * 1000)
        index += 1
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = 100 * (usage.ru_utime + usage.ru_stime - cpu0) / elapsed
    precision = COMPILED[-1] if COMPILED else "f32 (PyTorch)"
    print(json.dumps({"per_camera_fps": [c / elapsed for c in counts], "ages_ms": ages, "cpu_percent": cpu,
                      "precision": precision, "seconds": elapsed}), flush=True)
    os._exit(0)  # the reader threads are still in OpenCV: an orderly exit aborts
else:
    weights, video, repeats, imgsz = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    model = YOLO(weights, task="detect")
    stream = lambda: model.predict(source=video, stream=True, imgsz=imgsz, verbose=False, device="cpu")
    for _ in zip(range(10), stream()):  # warm up
        pass
    frames, started = 0, time.perf_counter()
    for _ in range(repeats):
        for _ in stream():
            frames += 1
    seconds = time.perf_counter() - started
    precision = COMPILED[-1] if COMPILED else "f32 (PyTorch)"
    print(json.dumps({"frames": frames, "seconds": seconds, "fps": frames / seconds, "nms_shim": SHIM,
                      "precision": precision}))
"""


@dataclass
class PeerModels:
    pt: Path
    openvino_dir: Path
    onnx: Path

    @property
    def openvino_xml(self) -> Path:
        return next(self.openvino_dir.glob("*.xml"))


def peer_python(cache: Path) -> Path:
    """The peer virtualenv's Python, made on first use (a few minutes; about 1.5 GB)."""
    venv = cache / "peer-venv"
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import ultralytics"],
                                          capture_output=True, check=False).returncode == 0:
        return python
    log.info("making the Ultralytics peer environment in %s (once; a few minutes)", venv)
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
             [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", TORCH],
             [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", TORCH, *PACKAGES]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise EdgedError(f"could not make the peer environment ({' '.join(step[2:5])}): "
                             f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return python


def _run(python: Path, *args: str, cwd: Path, precision: str | None = None) -> dict[str, object]:
    env = {**os.environ, "EDGED_PEER_PRECISION": precision or ""}
    done = subprocess.run([str(python), "-c", _SCRIPT, *args], capture_output=True, text=True, cwd=cwd, check=False,
                          env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise EdgedError(f"the Ultralytics peer failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    result: dict[str, object] = json.loads(lines[-1])
    return result


def export_yolov8n(python: Path, out: Path, imgsz: int) -> PeerModels:
    out.mkdir(parents=True, exist_ok=True)
    pt = out / "yolov8n.pt"
    if not pt.exists() or not list(out.glob("*_openvino_model")) or not list(out.glob("*.onnx")):
        _run(python, "export", str(out), str(imgsz), cwd=out)
    return PeerModels(pt, next(out.glob("*_openvino_model")), next(out.glob("*.onnx")))


@dataclass(frozen=True)
class PeerRun:
    fps: float
    precision: str  # read back from the compiled OpenVINO model; "f32 (PyTorch)" for a .pt


def predict_fps(python: Path, weights: Path, video: Path, repeats: int, imgsz: int, cwd: Path,
                precision: str | None = None) -> PeerRun:
    """Frames per second of Ultralytics' own loop over ``repeats`` passes of ``video``; ``precision``
    pins OpenVINO's INFERENCE_PRECISION_HINT (None: Ultralytics' defaults)."""
    result = _run(python, "predict", str(weights), str(video), str(repeats), str(imgsz), cwd=cwd,
                  precision=precision)
    return PeerRun(float(str(result["fps"])), str(result.get("precision", "unknown")))


@dataclass(frozen=True)
class LiveRun:
    per_camera_fps: list[float]
    ages_ms: list[float]  # capture (read from the stream) -> result in the loop
    cpu_percent: float
    precision: str


def predict_live(python: Path, weights: Path, urls: list[str], seconds: float, imgsz: int, cwd: Path,
                 precision: str | None = None) -> LiveRun:
    """Ultralytics' loop on live streams (a streams file, one URL a line) for ``seconds``."""
    streams = cwd / f"cameras-{len(urls)}.streams"  # Ultralytics reads a stream list from a .streams file
    streams.write_text("".join(f"{url}\n" for url in urls))
    result = _run(python, "live", str(weights), str(streams), str(seconds), str(imgsz), cwd=cwd,
                  precision=precision)
    return LiveRun([float(v) for v in result["per_camera_fps"]],  # type: ignore[attr-defined]
                   [float(v) for v in result["ages_ms"]],  # type: ignore[attr-defined]
                   float(str(result["cpu_percent"])), str(result.get("precision", "unknown")))
