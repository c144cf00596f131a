"""FP32, FP16 and INT8 of one model on this machine, in one run, and how INT8 agrees.

    python -m bench.precision [--seconds 6] [--rounds 3] [--frames 100]

1. Calibrates INT8 from two real clips (street footage and the carphone sequence)
   exactly as ``edged calibrate`` does, in a private cache: capture, NNCF
   quantization, comparison with FP32 on held-out frames per clip, timings.
2. Measures the throughput of the FP32, FP16 and INT8 IR with the same engine
   settings, in alternating rounds so drift on a noisy machine hits all three alike;
   reports medians and ratios to FP32.
Writes bench/out/precision.json. Never fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from edged.artifacts import zoo
from edged.artifacts.info import load_model_info
from edged.config.models import CameraConfig, OpenVinoConfig
from edged.engines.registry import create_engine
from edged.logs import setup_logging
from edged.tools.bench.harness import workspace
from edged.tools.calibration import capture
from edged.tools.enginebench import throughput
from edged.tools.export import build_catalogue
from edged.tools.int8 import Int8Options, make_int8


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per round and precision")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=100, help="calibration frames kept per clip")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    setup_logging("warning")
    ws = workspace(args.out)
    media = ws.media
    with tempfile.TemporaryDirectory(prefix="edged-precision-") as tmp:
        private = Path(tmp) / "cache"
        mine = zoo.copy_base(build_catalogue("yolov3-tiny", ws.cache), private)

        print("calibrating from street.mp4 and carphone.mp4 ...", flush=True)
        started = time.monotonic()
        frames = capture({"street": CameraConfig(url=str(media["street.mp4"])),
                          "carphone": CameraConfig(url=str(media["carphone.mp4"]))},
                         Path(tmp) / "calibration", args.frames, duration_s=60)
        capture_s = time.monotonic() - started
        report = make_int8(mine, frames, private, Int8Options(min_map=0.0), capture_s)

        print(f"throughput, {args.rounds} rounds x {args.seconds:g} s per precision ...", flush=True)
        engines = {}
        for precision in ("fp32", "fp16", "int8"):
            config = OpenVinoConfig(backend="openvino", model="yolov3-tiny", precision=precision)
            engine = create_engine(config, load_model_info(config, private), private)
            engine.start()
            engines[precision] = engine
        rounds: dict[str, list[float]] = {p: [] for p in engines}
        latency: dict[str, list[float]] = {p: [] for p in engines}
        for _ in range(args.rounds):
            for precision, engine in engines.items():
                figures = throughput(engine, args.seconds)
                rounds[precision].append(figures.fps)
                latency[precision].append(figures.latency_ms_p50)
        settings = {p: e.describe() for p, e in engines.items()}
        for engine in engines.values():
            engine.close()

    fps = {p: statistics.median(v) for p, v in rounds.items()}
    latency_p50 = {p: statistics.median(v) for p, v in latency.items()}
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"), "cores": os.cpu_count(),
        "throughput_fps": fps, "rounds_fps": rounds,
        "latency_ms_p50": latency_p50,
        "ratio_to_fp32": {p: fps[p] / fps["fp32"] for p in fps}, "settings": settings,
        "int8": asdict(report),
    }
    out = args.out / "precision.json"
    out.write_text(json.dumps(result, indent=2))
    print()
    print(f"{'precision':10}{'frames/s':>10}{'x FP32':>8}{'latency p50 ms':>16}   OpenVINO inference precision")
    for precision, value in fps.items():
        print(f"{precision:10}{value:10.1f}{value / fps['fp32']:8.2f}"
              f"{latency_p50[precision]:16.1f}   {settings[precision].get('precision')}")
    print()
    print(report.table())
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
