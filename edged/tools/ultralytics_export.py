"""An Ultralytics ``.pt`` checkpoint -> ONNX, run in an interpreter that has Ultralytics.

Ultralytics needs torch and torchvision and pulls in ``opencv-python`` 5.x, which
would replace the OpenCV 4 that edged needs, so it lives in its own virtualenv
(the ``export`` environment) and edged runs it as a subprocess. The ONNX comes
out with a dynamic batch (a static export bakes batch 1 into its reshapes) and
edged pins H and W afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edged.errors import ModelError

SETUP_HINT = (
    "python3 -m venv ~/.venvs/edged-export && ~/.venvs/edged-export/bin/pip install torch==2.13.0 && "
    "~/.venvs/edged-export/bin/pip install torch==2.13.0 ultralytics onnx onnxslim"
)

_SCRIPT = """
import shutil, sys
from ultralytics import YOLO
source, target = sys.argv[1], sys.argv[2]
imgsz = [int(side) for side in sys.argv[3].split(",")]  # height, width
model = YOLO(source)
if getattr(model, "task", "detect") != "detect":
    sys.exit(f"{source}: an Ultralytics {model.task} model; edged needs a detection model")
out = model.export(format="onnx", imgsz=imgsz, opset=13, dynamic=True, simplify=True, verbose=False)
shutil.move(str(out), target)
"""


def has_ultralytics(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import ultralytics"], capture_output=True, check=False)
    return probe.returncode == 0


def export_onnx(pt: Path, target: Path, imgsz: tuple[int, int], python: str | None) -> None:
    """``imgsz`` is (height, width), as Ultralytics takes it."""
    interpreter = python or sys.executable
    if not has_ultralytics(interpreter):
        raise ModelError(
            f"{pt}: exporting an Ultralytics checkpoint needs Ultralytics in {interpreter}; make an export "
            f"environment and pass --python: {SETUP_HINT}"
        )
    with tempfile.TemporaryDirectory(prefix="edged-pt-") as tmp:
        work = Path(tmp) / pt.name
        shutil.copyfile(pt, work)  # Ultralytics writes next to its input
        done = subprocess.run(
            [interpreter, "-c", _SCRIPT, str(work), str(target), f"{imgsz[0]},{imgsz[1]}"],
            capture_output=True, text=True, cwd=tmp, check=False,
        )
    if done.returncode != 0 or not target.is_file():
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(f"{pt}: Ultralytics could not export it to ONNX: {detail}")
