"""The verifier: the project's own detector, run again on an enlarged crop of a new object at its full input size.

A person 50 pixels tall is a 27-pixel one in a 416 input of a 768-wide frame, and YOLOv3-tiny boxes it as an 11x27
one (its torso); cropped at three times that box and letterboxed into the same input, the person fills most of it,
with the context the detector needs (at twice the box it found under half of the people it then found at three
times, on the plaza clip). The object is confirmed when the detector finds its label there at ``min_score`` or
better, on the object: a box that covers at least ``min_cover`` of the object's box and whose centre lies within
the object's box grown by half its size each way (the first box was often a part of the object, so IoU with it says
little); otherwise it is rejected. One crop at a time, batch 1, on its own OpenVINO engine (compiled beside the
pipeline's, never sharing its requests).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edged.artifacts.info import ModelInfo, load_model_info
from edged.config.looks import VerifierConfig
from edged.config.models import OpenVinoConfig
from edged.engines.base import Engine
from edged.engines.registry import create_engine
from edged.errors import EngineError
from edged.models.heads import Decoder
from edged.models.yolo import Letterbox


@dataclass(frozen=True)
class Verdict:
    confirmed: bool
    score: float  # the best score of the label where the box was (0: not found)


class Verifier:
    def __init__(self, config: VerifierConfig, primary_model: str, cache_dir: Path) -> None:
        self.settings = OpenVinoConfig(backend="openvino", model=config.model or primary_model, device=config.device,
                                       inference_precision=config.inference_precision, batch=1, num_requests=1,
                                       performance_hint="latency", num_streams=1,
                                       num_threads=config.threads if config.device == "CPU" else None)
        self.cache_dir = cache_dir
        self.engine: Engine | None = None
        self.info: ModelInfo | None = None
        self.decoder: Decoder | None = None
        self.size = (0, 0)  # the detector's input (width, height)
        self.describe: dict[str, Any] = {}

    def start(self) -> None:
        info = load_model_info(self.settings, self.cache_dir)
        engine = create_engine(self.settings, info, self.cache_dir)
        engine.start()
        self.info = info.with_output(engine.output_shape)
        self.decoder = self.info.make_decoder(engine.output_shape, iou=self.settings.iou, max_det=50)
        self.engine = engine
        self.size = (engine.input_spec.width, engine.input_spec.height)
        self.describe = engine.describe()

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.info.labels or ()) if self.info is not None else ()

    def fit(self, rect: tuple[int, int, int, int], picture_w: int, picture_h: int) -> Letterbox:
        """How the crop ``rect`` (x, y, w, h in the picture) goes into the detector's input."""
        x, y, w, h = rect
        return Letterbox.fit(w, h, *self.size, (x, y, picture_w, picture_h),
                             resize=self.info.resize if self.info is not None else "letterbox")

    def check(self, image: np.ndarray, box: Letterbox, cls: int, expected: np.ndarray, min_score: float,
              min_cover: float) -> Verdict:
        """``image``: the crop, already letterboxed ([H, W, 3] BGR); ``expected``: the object's normalised box."""
        assert self.engine is not None and self.decoder is not None
        np.copyto(self.engine.input_buffer(0)[0], image)
        dets = self.decoder.decode(_infer(self.engine), box, min_score)
        best = 0.0
        same = dets.classes == cls
        if same.any():
            on = on_object(expected, dets.boxes[same], min_cover)
            found = dets.scores[same][on]
            best = float(found.max()) if len(found) else 0.0
        return Verdict(best >= min_score, best)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


def on_object(expected: np.ndarray, boxes: np.ndarray, min_cover: float) -> np.ndarray:
    """Which of ``boxes`` (xyxy) are on the object boxed by ``expected``: covering ``min_cover`` of it, centred
    within it grown by half its size each way."""
    x1, y1, x2, y2 = (float(v) for v in expected)
    w, h = x2 - x1, y2 - y1
    inter_w = np.clip(np.minimum(boxes[:, 2], x2) - np.maximum(boxes[:, 0], x1), 0, None)
    inter_h = np.clip(np.minimum(boxes[:, 3], y2) - np.maximum(boxes[:, 1], y1), 0, None)
    cover = inter_w * inter_h / max(w * h, 1e-9)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    centred = (np.abs(cx - (x1 + x2) / 2) <= w) & (np.abs(cy - (y1 + y2) / 2) <= h)
    return np.asarray((cover >= min_cover) & centred)


def _infer(engine: Engine, timeout: float = 30.0) -> np.ndarray:
    done = threading.Event()
    out: list[Any] = []

    def finished(result: Any) -> None:
        out.append(result)
        done.set()

    engine.submit(0, finished)
    if not done.wait(timeout):
        raise EngineError(f"the verifier's inference did not finish within {timeout:g} s")
    if isinstance(out[0], BaseException):
        raise out[0]
    output: np.ndarray = np.asarray(out[0])[0]
    return output
