"""The bench's engine cases: the same detector at the input size that makes the engine fast or slow here.

Machines differ from day to day (AVX2 to AMX; the same INT8 engine ran 59 and 246
frames/s), so the bench does not fix one size: it measures the bare engine at the
usual 416 and, where needed, at other sizes of the same YOLOv3-tiny (its cfg with
another ``width=``/``height=``; the network is fully convolutional), until it has a
*fast* case (the largest size whose bare engine runs >= 200 frames/s) and a *slow*
one (the smallest whose bare engine runs <= 60). Those sizes are for speed: their
INT8 models are installed whatever their agreement with FP32 at that size.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2

from edged.artifacts import zoo
from edged.bench.harness import EngineFigures
from edged.errors import EdgedError
from edged.tools.export import InputSize

log = logging.getLogger(__name__)

USUAL = 416
FAST_FPS = 200.0
SLOW_FPS = 60.0
FASTER = (320, 256, 192)  # tried in turn when the usual size is not fast enough
SLOWER = (608, 832, 1024)  # tried in turn when the usual size is not slow enough


def model_name(size: int) -> str:
    return "yolov3-tiny" if size == USUAL else f"yolov3-tiny-{size}"


def build_sized(size: int, cache: Path, calibration: Callable[[], object]) -> str:
    """YOLOv3-tiny at ``size`` x ``size`` in ``cache``, with an INT8 variant; returns its model name."""
    from edged.tools.export import export, source_for
    from edged.tools.int8 import Int8Options, make_int8

    name = model_name(size)
    if size == USUAL:
        return name
    cfg, weights, names = zoo.catalogue_files("yolov3-tiny")
    text = re.sub(r"(?m)^width=\d+", f"width={size}", cfg.read_text())
    text = re.sub(r"(?m)^height=\d+", f"height={size}", text)
    sized = cache / "sized" / f"{name}.cfg"
    sized.parent.mkdir(parents=True, exist_ok=True)
    if not sized.is_file() or sized.read_text() != text:
        sized.write_text(text)
    built = export(source_for(str(sized), name=name, weights=weights, labels=names), cache)
    if not built.has("int8"):
        make_int8(built, calibration(), cache, Int8Options(force=True))  # type: ignore[arg-type]
    return name


@dataclass
class EngineCase:
    kind: str  # "fast" or "slow"
    size: int
    model: str
    bare: EngineFigures


def pick_cases(measure: Callable[[str], EngineFigures], build: Callable[[int], str],
               usual: EngineFigures) -> tuple[EngineCase | None, EngineCase | None, dict[int, float]]:
    """The fast and slow cases (None where no size here qualifies) and every size's bare frames/s."""
    tried = {USUAL: usual.fps}
    figures = {USUAL: usual}

    def find(kind: str, sizes: tuple[int, ...], good: Callable[[float], bool]) -> EngineCase | None:
        if good(usual.fps):
            return EngineCase(kind, USUAL, model_name(USUAL), usual)
        for size in sizes:
            model = build(size)
            figures[size] = measure(model)
            tried[size] = figures[size].fps
            log.info("bench: bare engine at %d: %.1f frames/s", size, figures[size].fps)
            if good(figures[size].fps):
                return EngineCase(kind, size, model, figures[size])
        return None

    fast = find("fast", FASTER, lambda fps: fps >= FAST_FPS)
    slow = find("slow", SLOWER, lambda fps: fps <= SLOW_FPS)
    return fast, slow, tried


def rect_size(video: Path, imgsz: int) -> InputSize:
    """The input Ultralytics infers a frame of ``video`` at: the long side ``imgsz``, the other padded to 32."""
    capture = cv2.VideoCapture(str(video))
    width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    capture.release()
    if not width or not height:
        raise EdgedError(f"{video}: cannot read its frame size")
    scale = imgsz / max(width, height)
    return InputSize(*(int(-(-round(side * scale) // 32) * 32) for side in (width, height)))
