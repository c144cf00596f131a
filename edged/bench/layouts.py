"""``edged bench``'s model-layout section: the same network (the real YOLOv3-tiny) in each output layout edged
reads (rewritten by ``edged.testing.layouts``), so the rows differ only in what the layout leaves to Python: the
bare engine, edged on 4 file cameras, and the core-ms of box decoding per frame (measured on the daemon's own
clock, and alone on recorded outputs). An end-to-end or DETR layout leaves nothing for NMS."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edged.artifacts.info import load_model_info
from edged.bench.harness import bare_engine, measure_daemon
from edged.config.models import OpenVinoConfig
from edged.engines.registry import create_engine
from edged.models.labels import COCO80
from edged.models.yolo import Letterbox
from edged.testing.layouts import FUSED, LAYOUTS, rewrite, rewrite_fused
from edged.tools.enginebench import infer_once
from edged.tools.export import export, source_for

CAMERAS = 4
MIN_SCORE = 0.4


def build_layouts(cache: Path, work: Path) -> dict[str, str]:
    """layout -> model name in ``cache``: the raw catalogue model and each rewrite, exported."""
    raw = load_model_info(OpenVinoConfig(backend="openvino", model="yolov3-tiny"), cache).path.with_name("model.onnx")
    names = {"yolov5 (raw)": "yolov3-tiny"}
    for layout in (*LAYOUTS, *FUSED):
        make = rewrite if layout in LAYOUTS else rewrite_fused
        source = make(raw, work / f"bench-{layout}.onnx", layout, list(COCO80))
        built = export(source_for(str(source), name=f"bench-{layout}"), cache)
        names[layout if layout in LAYOUTS else f"{layout} ({built.meta.head})"] = f"bench-{layout}"
    return names


def decode_cost(engine_config: dict[str, Any], cache: Path, clip: Path, frames: int = 60,
                repeats: int = 20) -> dict[str, Any]:
    """Outputs recorded on ``frames`` frames of ``clip``, then each decoded ``repeats`` times: core-ms a frame."""
    config = OpenVinoConfig(**engine_config)
    info = load_model_info(config, cache)
    engine = create_engine(config, info, cache)
    engine.start()
    outputs: list[np.ndarray] = []
    boxes: list[Letterbox] = []
    try:
        info = info.with_output(engine.output_shape)
        capture = cv2.VideoCapture(str(clip))
        buffer = engine.input_buffer(0)
        while len(outputs) < frames:
            ok, frame = capture.read()
            if not ok:
                break
            box = Letterbox.fit(frame.shape[1], frame.shape[0], info.width, info.height, resize=info.resize)
            box.apply(frame, buffer[0])
            outputs.append(infer_once(engine, 0)[0].copy())
            boxes.append(box)
        capture.release()
    finally:
        engine.close()
    decoder = info.make_decoder(engine.output_shape)
    found = [len(decoder.decode(out, box, MIN_SCORE)) for out, box in zip(outputs, boxes, strict=True)]
    clock = time.thread_time
    started = clock()
    for _ in range(repeats):
        for out, box in zip(outputs, boxes, strict=True):
            decoder.decode(out, box, MIN_SCORE)
    spent = clock() - started
    return {"decode_core_ms": round(spent * 1e3 / (repeats * len(outputs)), 4),
            "boxes_per_frame": round(statistics.mean(found), 2), "output": str(list(engine.output_shape))}


def run_layouts(media: Path, cache: Path, engine: dict[str, Any], warmup: float, seconds: float,
                note: Callable[[str], None]) -> dict[str, Any]:
    from edged.testing.broker import Mosquitto
    from edged.testing.media import square_clip

    rows: dict[str, dict[str, Any]] = {}
    clip = square_clip(media)  # every layout the same pixels: a stretch and a letterbox agree on a square
    with tempfile.TemporaryDirectory(prefix="edged-bench-layouts-") as tmp:
        work = Path(tmp)
        models = build_layouts(cache, work)
        broker = Mosquitto(work / "broker").start()
        try:
            for layout, model in models.items():
                # The rewrites are exported in float only (no INT8 calibration each): every layout runs FP32 weights
                # at the run's float precision, the raw model too, so the rows compare the layouts alone.
                config = {**engine, "model": model, "precision": "fp32"}
                bare = bare_engine(OpenVinoConfig(**config), cache, seconds / 2)
                cameras = {f"cam{i}": {"url": str(clip), "loop": True, "motion": {"enabled": False},
                                       "detect": {"min_score": MIN_SCORE}} for i in range(CAMERAS)}
                daemon = {"device_id": f"lay{len(rows)}", "mqtt": {"host": "127.0.0.1", "port": broker.port},
                          "engine": config, "telemetry": {"interval_s": 10}, "cameras": cameras}
                figures = measure_daemon(f"layout-{model}", daemon, broker.port, work, cache, warmup, seconds)
                rows[layout] = {"bare_fps": round(bare.fps, 1), "edged_fps": round(figures.processed_fps, 1),
                                "of_bare": round(figures.processed_fps / bare.fps, 2) if bare.fps else None,
                                "box_decode_core_ms": round(figures.stage_core_ms.get("box_decode", float("nan")), 3),
                                **decode_cost(config, cache, clip)}
                note(f"layout {layout}: {figures.processed_fps:.1f}/s on {CAMERAS} cameras, decode "
                     f"{rows[layout]['decode_core_ms']:.3f} core-ms/frame")
        finally:
            broker.stop()
    return {"cameras": CAMERAS, "min_score": MIN_SCORE, "rows": rows}


def markdown(section: dict[str, Any]) -> list[str]:
    lines = ["", "### Model layouts: the same network in each output layout", "",
             f"The real YOLOv3-tiny rewritten into each layout edged reads (graph surgery: the same weights), "
             f"{section['cameras']} file cameras unthrottled (the street footage's middle square, so a stretch and a "
             f"letterbox feed the same pixels), min_score {section['min_score']}. `decode alone`: the box decoder on "
             f"recorded outputs; `box_decode`: the daemon's own stage clock.", "",
             "| layout | output | bare engine fps | edged fps | of bare | box_decode core-ms/frame | decode alone "
             "core-ms/frame | boxes/frame |", "|---|---|---|---|---|---|---|---|"]
    for layout, row in section["rows"].items():
        lines.append(f"| {layout} | {row['output']} | {row['bare_fps']} | {row['edged_fps']} | {row['of_bare']} | "
                     f"{row['box_decode_core_ms']} | {row['decode_core_ms']} | {row['boxes_per_frame']} |")
    raw = section["rows"].get("yolov5 (raw)")
    if raw:
        ratios = ", ".join(f"{layout} {row['decode_core_ms'] / raw['decode_core_ms']:.2f}x"
                           for layout, row in section["rows"].items() if layout != "yolov5 (raw)")
        lines += ["", f"Decoding cost against the raw head (decode alone): {ratios}."]
    return lines
