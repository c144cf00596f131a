"""The bench's stand-in engine: the model's real outputs, recorded once, returned at once.

With it, ``edged run`` measures the pipeline on its own: what a frame costs outside
the engine (decode, letterbox, box decode, tracking and events, serialisation,
publishing and the hand-offs between them) and how many frames per second the
pipeline could feed an engine that took no time at all. It is bench code, not a
backend: the config cannot name it.

``record()`` runs the real engine on frames of a real clip, letterboxed as the daemon
does, and saves the raw outputs; the stand-in hands them back in turn, so the box
decode, the tracker and the events see the detections the model really makes.
Run as ``python -m edged.bench.standin OUTPUTS.npy edged run-arguments...``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edged.artifacts.info import load_model_info
from edged.config.models import AnyEngineConfig
from edged.engines.base import Done, InputSpec
from edged.engines.registry import create_engine
from edged.models.yolo import Letterbox
from edged.tools.enginebench import infer_once


def record(config: AnyEngineConfig, cache: Path, clip: Path, out: Path, frames: int = 48, every: int = 5) -> Path:
    """The real engine's outputs on ``frames`` frames of ``clip`` (one in ``every``), saved as ``out``."""
    info = load_model_info(config, cache)
    engine = create_engine(config, info, cache)
    engine.start()
    outputs: list[np.ndarray] = []
    capture = cv2.VideoCapture(str(clip))
    try:
        buffer = engine.input_buffer(0)
        index = 0
        while len(outputs) < frames:
            ok, frame = capture.read()
            if not ok:
                if index == 0:
                    raise RuntimeError(f"{clip}: no frame could be read")
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            index += 1
            if index % every:
                continue
            Letterbox.fit(frame.shape[1], frame.shape[0], info.width, info.height,
                          resize=info.resize).apply(frame, buffer[0])
            outputs.append(infer_once(engine, 0)[0].copy())
    finally:
        capture.release()
        engine.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, np.stack(outputs).astype(np.float32))
    return out


class StandInEngine:
    """The Engine protocol over recorded outputs: ``submit`` answers at once, on the caller's thread."""

    def __init__(self, outputs: np.ndarray, spec: InputSpec, num_slots: int = 2) -> None:
        if len(outputs) < spec.batch:
            raise ValueError("fewer recorded outputs than one batch")
        usable = len(outputs) - len(outputs) % spec.batch
        self._batches = [outputs[i:i + spec.batch] for i in range(0, usable, spec.batch)]  # views, made once
        self.input_spec = spec
        self.num_slots = num_slots
        self.output_shape: tuple[int, ...] = (spec.batch, *outputs.shape[1:])
        self._buffers: list[np.ndarray] = []
        self._next = 0

    def start(self) -> None:
        self._buffers = [np.zeros(self.input_spec.shape, dtype=np.uint8) for _ in range(self.num_slots)]

    def input_buffer(self, slot: int) -> np.ndarray:
        return self._buffers[slot]

    def submit(self, slot: int, done: Done) -> None:
        batch = self._batches[self._next]
        self._next = (self._next + 1) % len(self._batches)
        done(batch)

    def describe(self) -> dict[str, Any]:
        return {"backend": "stand-in", "device": "none (recorded outputs)", "batch": self.input_spec.batch,
                "requests": self.num_slots, "model": f"{len(self._batches)} recorded outputs"}

    def close(self) -> None:
        self._buffers.clear()


def main(argv: list[str]) -> int:
    """``OUTPUTS.npy -c CONFIG --cache-dir DIR``: ``edged run`` with the stand-in engine."""
    import argparse

    from edged.service.malloc import tune_allocator

    tune_allocator(os.environ)  # as ``edged run`` does

    from edged.config import load_config
    from edged.daemon import build_daemon
    from edged.logs import setup_logging
    from edged.paths import default_spool_path

    parser = argparse.ArgumentParser(prog="edged-standin")
    parser.add_argument("outputs", type=Path)
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    config = load_config(Path(args.config), dict(os.environ), None)  # the bench's own configs: no credentials
    setup_logging(config.log.level, config.log.format, [])
    model = load_model_info(config.engine, args.cache_dir)
    runtime = StandInEngine(np.load(args.outputs), InputSpec(config.engine.batch, model.height, model.width))
    daemon = build_daemon(config, args.cache_dir, default_spool_path(dict(os.environ), config.device_id),
                          runtime=runtime)
    return asyncio.run(daemon.run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
