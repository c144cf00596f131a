"""Decoding, the floor under many cameras: what a frame costs to decode and to convert, with and without FFmpeg's
``skip_loop_filter``, and what skipping the filter does to the detections.

Every frame of a stream is decoded whether or not it is inferred (H.264's frames depend on the ones before), so
decoding is per *received* frame; the conversion to BGR is per *inferred* frame. Both are measured on the reader
that offers the setting (``PyAvSource``), on the process's CPU clock, so that work a library hands to threads of
its own counts (swscale's pool did, before the conversion moved to OpenCV; OpenCV's pool off, as in the daemon),
for the bench's two clips (640x272, and 1280x720 at 30 frames/s). The agreement: the detector on the same frames
decoded both ways, the plain decode as the reference (``models.agreement.compare``: mAP@0.5, mean IoU of matched
boxes).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edged.config.models import CameraConfig, OpenVinoConfig
from edged.sources.pyav import PyAvSource

FRAMES = 300  # decoded per clip and mode
CONVERTED = 100  # of those, converted (both ways)
DETECTED_EVERY = 10  # one frame in this many goes to the detector for the agreement


def _decode_cost(clip: Path, skip: bool) -> tuple[float, float, list[np.ndarray]]:
    """Core-ms per decoded frame and per converted frame, and every ``DETECTED_EVERY``-th frame as BGR."""
    source = PyAvSource(CameraConfig(url=str(clip), skip_loop_filter=skip))
    source.open()
    kept: list[np.ndarray] = []
    decode_s = convert_s = 0.0
    decoded = converted = 0
    out: np.ndarray | None = None
    try:
        for index in range(FRAMES):
            started = time.process_time()
            if not source.grab():
                break
            decode_s += time.process_time() - started
            decoded += 1
            if index < CONVERTED or index % DETECTED_EVERY == 0:
                started = time.process_time()
                out = source.retrieve(out)
                convert_s += time.process_time() - started
                converted += 1
                if index % DETECTED_EVERY == 0 and out is not None:
                    kept.append(out.copy())
    finally:
        source.close()
    return decode_s * 1e3 / max(decoded, 1), convert_s * 1e3 / max(converted, 1), kept


def run_decoding(clips: dict[str, Path], cache: Path, engine: dict[str, Any]) -> dict[str, Any]:
    """Per clip: decode and conversion costs both ways and the detections' agreement."""
    import cv2

    from edged.artifacts.info import load_model_info
    from edged.engines.registry import create_engine
    from edged.models.agreement import compare
    from edged.tools.enginebench import detect_frames

    cv2.setNumThreads(1)  # as the daemon runs it (sources.opencv.prepare_native_libraries)
    config = OpenVinoConfig(**engine)
    info = load_model_info(config, cache)
    detector = create_engine(config, info, cache)
    detector.start()
    rows = []
    try:
        for name, clip in clips.items():
            plain_ms, convert_ms, plain_frames = _decode_cost(clip, skip=False)
            skip_ms, _, skip_frames = _decode_cost(clip, skip=True)
            count = min(len(plain_frames), len(skip_frames))
            reference = detect_frames(detector, info, plain_frames[:count], 0.2)
            candidate = detect_frames(detector, info, skip_frames[:count], 0.2)
            agreement = compare(reference, candidate, list(info.labels or ()), 0.4)
            height, width = plain_frames[0].shape[:2] if plain_frames else (0, 0)
            rows.append({"clip": name, "size": f"{width}x{height}", "decode_ms": round(plain_ms, 3),
                         "decode_skip_ms": round(skip_ms, 3), "saving": round(1 - skip_ms / plain_ms, 3),
                         "convert_ms": round(convert_ms, 3),
                         "frames_detected": count, "map50": round(agreement.map50, 3),
                         "mean_iou": round(agreement.mean_iou, 3), "boxes": agreement.reference_boxes,
                         "boxes_skip": agreement.candidate_boxes})
    finally:
        detector.close()
    return {"rows": rows}


def markdown(decoding: dict[str, Any]) -> list[str]:
    lines = ["", "**Decoding** (core-ms per frame, the process's CPU clock, a library's own threads included; "
             "every received frame is decoded, only inferred ones are converted; the agreement: the detector on the "
             "same frames decoded both ways, the plain decode as the reference):", "",
             "| clip | decode | decode, `skip_loop_filter` | saving | BGR conversion | mAP@0.5 skip vs plain | "
             "mean IoU | boxes plain / skip |", "|---|---|---|---|---|---|---|---|"]
    for row in decoding["rows"]:
        lines.append(f"| {row['clip']} ({row['size']}) | {row['decode_ms']:.2f} | {row['decode_skip_ms']:.2f} | "
                     f"{100 * row['saving']:.0f} % | {row['convert_ms']:.2f} | "
                     f"{row['map50']:.3f} | {row['mean_iou']:.3f} | {row['boxes']} / {row['boxes_skip']} "
                     f"({row['frames_detected']} frames) |")
    return lines
