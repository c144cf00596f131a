"""Clips played through edged's own stages, frame by frame, without the daemon or the clock.

The analytics figures (nothing missed with gating, small objects with regions, tracker
identities, tamper alerts) compare two settings on the *same* frames, which a live run
cannot do. A clip is decoded with PyAV at a chosen rate; each frame's timestamp is its
position in the clip. The stages are the daemon's: the camera's grey copy (the luma
plane, as the daemon takes it from PyAV), ``CameraGate``, the letterbox or the
motion-region crop, the real engine, ``YoloDecoder``, the tracker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edged.analytics import CameraGate, Transition, colours, decode_floor, detect_region, grey_shape, tiles
from edged.artifacts.info import ModelInfo, load_model_info
from edged.config.models import CameraConfig, OpenVinoConfig
from edged.engines.base import Engine
from edged.engines.registry import create_engine
from edged.models.heads.common import merge
from edged.models.yolo import Detections, Letterbox
from edged.pipeline import frame_fit
from edged.sources.pyav import luma_into
from edged.tools.enginebench import infer_once


@dataclass
class Frame:
    ts: float  # seconds into the clip
    index: int
    grey: np.ndarray
    _frame: Any = field(repr=False)

    def bgr(self) -> np.ndarray:
        return np.ascontiguousarray(self._frame.to_ndarray(format="bgr24"))


def frames(path: Path, fps: float, grey_width: int = 320, limit_s: float | None = None) -> Iterator[Frame]:
    """Frames of ``path`` at ``fps`` (the first frame at or after each tick), with the camera's grey copy."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 2
        base = float(stream.time_base or 0)
        following = 0.0
        grey: np.ndarray | None = None
        for index, frame in enumerate(container.decode(stream)):
            ts = float(frame.pts or 0) * base
            if limit_s is not None and ts > limit_s:
                return
            if ts + 1e-6 < following:
                continue
            following += 1.0 / fps
            while following <= ts:
                following += 1.0 / fps
            shape = grey_shape(frame.width, frame.height, grey_width)
            if grey is None or grey.shape != shape:
                grey = np.empty(shape, np.uint8)
            luma_into(frame, grey)
            yield Frame(ts, index, grey, frame)


def camera(**settings: Any) -> CameraConfig:
    """A camera config for a replay (the url is never opened)."""
    return CameraConfig(url="replay.mp4", **settings)


def tamper_run(path: Path, fps: float = 10.0, **settings: Any) -> list[tuple[float, Transition]]:
    """Every tamper transition a camera raises on ``path``, with the clip time it happened at."""
    found: list[tuple[float, Transition]] = []
    gate = CameraGate("replay", camera(**settings), lambda _camera, t: found.append((now[0], t)))
    now = [0.0]
    for frame in frames(path, fps):
        now[0] = frame.ts
        gate.decide(frame.grey, frame.ts)
        gate.after(frame.grey, frame.ts)
    return found


class Detector:
    """The real engine with the daemon's letterbox (or crop) and decoder, one frame at a time."""

    def __init__(self, config: OpenVinoConfig, cache: Path) -> None:
        self.info: ModelInfo = load_model_info(config, cache)
        self.engine: Engine = create_engine(config, self.info, cache)
        self.engine.start()
        self.info = self.info.with_output(self.engine.output_shape)
        self.labels = tuple(self.info.labels or ())
        self.decoder = self.info.make_decoder(self.engine.output_shape, iou=config.iou,
                                              max_det=config.max_detections)
        self.size = (self.engine.input_spec.width, self.engine.input_spec.height)
        self.colour_s = 0.0  # CPU seconds reading detections' colours, and how many objects
        self.coloured = 0

    def close(self) -> None:
        self.engine.close()

    def crop(self, image: np.ndarray, motion: tuple[float, float, float, float] | None,
             regions: str = "auto", margin: float = 0.5) -> tuple[int, int, int, int] | None:
        height, width = image.shape[:2]
        return detect_region(motion, width, height, *self.size, regions, margin)

    def _fill(self, image: np.ndarray, crop: tuple[int, int, int, int] | None) -> tuple[Letterbox, np.ndarray]:
        """``image`` (or ``crop`` of it) letterboxed into the engine's input, as the daemon does; its fit and the
        picture there."""
        box, pixels = frame_fit(image, crop, *self.size, self.info.resize)
        buffer = self.engine.input_buffer(0)
        box.apply(pixels, buffer[0])
        return box, buffer[0]

    def colours_of(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The colours of ``boxes`` (normalised xyxy on ``image``) read from the detector's input, as ``detect`` reads
        a detection's."""
        box, picture = self._fill(image, None)
        return colours(picture, box.to_input(boxes))

    def tiled(self, image: np.ndarray, min_score: float) -> Detections:
        """Detections on the frame's two tiles, merged, as the daemon detects for a camera with ``tiles: true``."""
        height, width = image.shape[:2]
        return merge([self.detect(image, min_score, crop) for crop in tiles(width, height)], self.decoder.iou)

    def detect(self, image: np.ndarray, min_score: float,
               crop: tuple[int, int, int, int] | None = None, appearance: bool = True) -> Detections:
        """Detections down to ``decode_floor(min_score)`` (what the tracker gets), on ``crop`` or all, with their
        colours read from the input as the daemon reads them (``appearance``)."""
        box, picture = self._fill(image, crop)
        output = infer_once(self.engine, 0)
        dets = self.decoder.decode(output[0], box, decode_floor(min_score))
        if appearance and len(dets):
            clock = time.thread_time()
            high = dets.scores >= min_score
            dets.colours = colours(picture, box.to_input(dets.boxes), high)
            self.colour_s += time.thread_time() - clock
            self.coloured += int(high.sum())
        return dets
