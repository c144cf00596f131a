"""Every precision this machine offers, for YOLOv3-tiny (and YOLOv8n), in one run, against f32.

    python -m studies.precision [--seconds 4] [--rounds 2] [--frames 60] [--yolov8n DIR]

1. Calibrates INT8 from two real clips (street footage and the carphone sequence)
   exactly as ``edged calibrate`` does, in a private cache.
2. For the FP32 and the INT8 IR, each at every float precision this device offers
   (f32, and bf16 or f16 where the policy would try them): the precision the compiled
   model reports (read back, not assumed), throughput with every request busy and the
   latency of one request at a time, in alternating rounds so drift on a noisy
   machine hits all alike; and agreement with FP32-at-f32 on held-out frames (mAP@0.5,
   mean IoU, NaN/inf), with the gate's verdict (0.95 for float precisions, 0.90 for
   INT8, as ``edged calibrate``).
3. What ``precision: auto`` / ``inference_precision: auto`` choose here.
4. ``--yolov8n DIR``: an Ultralytics OpenVINO export of YOLOv8n (its ``*_openvino_model``
   folder; ``edged bench`` makes one): the same speed rows (random weights: agreement is
   not measured).
Writes out/studies/precision.json and .md. Never fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2

from edged.artifacts import zoo
from edged.artifacts.info import load_model_info
from edged.bench.harness import workspace
from edged.config.models import CameraConfig, OpenVinoConfig
from edged.engines.base import Engine
from edged.engines.precision import candidates, read_traits
from edged.engines.registry import create_engine
from edged.logs import setup_logging
from edged.models.agreement import compare
from edged.models.yolo import Detections
from edged.tools.calibration import capture
from edged.tools.enginebench import detect_frames, throughput
from edged.tools.export import build_catalogue
from edged.tools.int8 import Int8Options, make_int8
from edged.tools.precision_gate import choose, finite_outputs

THRESHOLD = 0.4


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def start(config: OpenVinoConfig, cache: Path) -> tuple[Engine, Any]:
    info = load_model_info(config, cache)
    engine = create_engine(config, info, cache)
    engine.start()
    return engine, info.with_output(engine.output_shape)


def measure(rows: dict[str, dict[str, Any]], engines: dict[str, Engine], seconds: float, rounds: int) -> None:
    fps: dict[str, list[float]] = {name: [] for name in engines}
    latency: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, engine in engines.items():
            fps[name].append(throughput(engine, seconds).fps)
            latency[name].append(throughput(engine, seconds / 2, in_flight=1).latency_ms_p50)
    for name in engines:
        rows[name]["fps"] = round(statistics.median(fps[name]), 1)
        rows[name]["latency_ms_p50"] = round(statistics.median(latency[name]), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per round and row")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--frames", type=int, default=60, help="calibration frames kept per clip")
    parser.add_argument("--yolov8n", type=Path, help="an Ultralytics *_openvino_model folder of YOLOv8n")
    parser.add_argument("--out", type=Path, default=Path("out/studies"))
    args = parser.parse_args()
    setup_logging("warning")
    ws = workspace(args.out)
    traits = read_traits("CPU")
    floats = list(reversed(candidates(traits)))  # f32 first: the reference
    with tempfile.TemporaryDirectory(prefix="edged-precision-") as tmp:
        private = Path(tmp) / "cache"
        mine = zoo.copy_base(build_catalogue("yolov3-tiny", ws.cache), private)
        print("calibrating INT8 from street.mp4 and carphone.mp4 ...", flush=True)
        calibration = capture({"street": CameraConfig(url=str(ws.media["street.mp4"])),
                               "carphone": CameraConfig(url=str(ws.media["carphone.mp4"]))},
                              Path(tmp) / "calibration", args.frames, duration_s=60)
        report = make_int8(mine, calibration, private, Int8Options(min_map=0.0))
        held = [cv2.imread(str(p)) for p in calibration.paths("held_out")]
        held += [cv2.imread(str(ws.media[name])) for name in ("bus.jpg", "zidane.jpg")]
        frames = [f for f in held if f is not None]

        rows: dict[str, dict[str, Any]] = {}
        engines: dict[str, Engine] = {}
        detections: dict[str, list[Detections]] = {}
        finite: dict[str, bool] = {}
        labels: list[str] = []
        for variant in ("fp32", "int8"):
            for precision in floats:
                name = f"yolov3-tiny {variant.upper()} IR @ {precision}"
                config = OpenVinoConfig(backend="openvino", model="yolov3-tiny", precision=variant,
                                        inference_precision=precision)
                engine, info = start(config, private)
                labels = list(info.labels or ())
                engines[name] = engine
                detections[name] = detect_frames(engine, info, frames, min_score=0.01)
                finite[name] = finite_outputs(engine, info, frames[:4])
                rows[name] = {"model": "yolov3-tiny", "variant": variant, "asked": precision,
                              "compiled": str(engine.describe().get("precision"))}
        reference = detections[f"yolov3-tiny FP32 IR @ {floats[0]}"]
        for name, row in rows.items():
            agreement = compare(reference, detections[name], labels, THRESHOLD)
            gate = 0.90 if row["variant"] == "int8" else 0.95
            row.update(map50=round(float(agreement.map50), 3), mean_iou=round(float(agreement.mean_iou), 3),
                       reference_boxes=agreement.reference_boxes, finite=finite[name], gate=gate,
                       verdict="reference" if name.endswith("FP32 IR @ f32") else
                       ("pass" if finite[name] and agreement.map50 >= gate else "FAIL"))
        if args.yolov8n is not None:
            xml = next(args.yolov8n.glob("*.xml"))
            for precision in floats:
                name = f"yolov8n FP32 IR (Ultralytics export) @ {precision}"
                config = OpenVinoConfig(backend="openvino", model=str(xml), inference_precision=precision)
                engine, info = start(config, private)
                engines[name] = engine
                rows[name] = {"model": "yolov8n", "variant": "fp32", "asked": precision,
                              "compiled": str(engine.describe().get("precision")), "verdict": "speed only",
                              "finite": finite_outputs(engine, info, frames[:4])}
        print(f"throughput, {args.rounds} rounds x {args.seconds:g} s per row ...", flush=True)
        measure(rows, engines, args.seconds, args.rounds)
        for engine in engines.values():
            engine.close()
        auto = choose(OpenVinoConfig(backend="openvino", model="yolov3-tiny"), private, lambda: frames,
                      threshold=THRESHOLD, traits=traits)
        variant = zoo.resolve_precision("yolov3-tiny", private, "auto")

    base = {r["model"]: r["fps"] for n, r in rows.items() if r["asked"] == "f32" and r["variant"] == "fp32"}
    cpu, cores = cpu_name(), os.cpu_count()
    flags = sorted(traits.flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "fphp"})
    result: dict[str, Any] = {
              "when": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu": cpu, "cores": cores, "flags": flags,
              "held_out_frames": len(frames), "rows": rows, "int8_calibration": report.agreement,
              "auto": {"precision": auto.precision, "variant": variant, "reason": auto.reason}}
    lines = [f"CPU: {cpu} ({cores} cores; {', '.join(flags)}), "
             f"OpenVINO {engines_version()}, {len(frames)} held-out frames, reference FP32 IR at f32, "
             f"boxes with score >= {THRESHOLD}", "",
             "| model | asked | compiled (read back) | frames/s | x f32 | latency p50 ms (1 request) | "
             "mAP@0.5 vs f32 | mean IoU | finite | gate |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        ratio = row["fps"] / base[row["model"]] if base.get(row["model"]) else float("nan")
        agreed = (f"{row['map50']:.3f} | {row['mean_iou']:.3f}" if "map50" in row else "n/a | n/a")
        gate = row["verdict"] + (f" (>= {row['gate']:.2f})" if row["verdict"] in ("pass", "FAIL") else "")
        lines.append(f"| {name.split(' @ ')[0]} | {row['asked']} | {row['compiled']} | {row['fps']:.1f} | "
                     f"{ratio:.2f} | {row['latency_ms_p50']:.1f} | {agreed} | {row['finite']} | {gate} |")
    lines += ["", f"auto on this machine: model variant {variant}, float layers "
              f"{auto.precision}: {auto.reason}"]
    text = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "precision.json").write_text(json.dumps(result, indent=2))
    (args.out / "precision.md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nwritten: {args.out / 'precision.json'}, {args.out / 'precision.md'}")
    return 0


def engines_version() -> str:
    from edged.engines.ov import version

    return version()


if __name__ == "__main__":
    raise SystemExit(main())
