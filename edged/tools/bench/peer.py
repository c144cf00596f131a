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
    print(json.dumps({"frames": frames, "seconds": seconds, "fps": frames / seconds, "nms_shim": SHIM}))
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


def _run(python: Path, *args: str, cwd: Path) -> dict[str, object]:
    done = subprocess.run([str(python), "-c", _SCRIPT, *args], capture_output=True, text=True, cwd=cwd, check=False)
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


def predict_fps(python: Path, weights: Path, video: Path, repeats: int, imgsz: int, cwd: Path) -> float:
    """Frames per second of Ultralytics' own loop over ``repeats`` passes of ``video``."""
    result = _run(python, "predict", str(weights), str(video), str(repeats), str(imgsz), cwd=cwd)
    return float(result["fps"])  # type: ignore[arg-type]
