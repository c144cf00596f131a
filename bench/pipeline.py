"""End-to-end figures for edged on this machine, in one run.

    python -m bench.pipeline [--seconds 20] [--out bench/out]

Measures, with the same model file and engine settings:
- the bare OpenVINO engine (every request kept busy on random input);
- edged with 1 and 4 RTSP cameras in real time (25 fps H.264 from a local
  gst-rtsp-server), every camera unthrottled: processed frames/s, capture-to-
  subscriber latency p50/p95/p99, resident memory, CPU;
- edged with 4 file cameras pulled as fast as possible (the engine-bound ceiling).
Prints a table and the ratios to the bare engine; writes JSON. Never fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.harness import RunFigures, bare_engine, measure_daemon
from edged.cli import default_cache_dir
from edged.config.models import OpenVinoConfig
from edged.models import zoo
from edged.tools.broker import Mosquitto
from edged.tools.media import prepare_media
from tests.support.rtsp import RtspServer

CLIPS = ["zidane.mp4", "bus.mp4", "street.mp4", "zidane.mp4"]


def long_clip(source: Path, loops: int) -> Path:
    target = source.with_name(f"long-{source.name}")
    if not target.exists():
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", str(loops),
                        "-i", str(source), "-c", "copy", str(target)], check=True)
    return target


def engine_section(**overrides: Any) -> dict[str, Any]:
    return {"backend": "openvino", "model": "yolov3-tiny", "precision": "fp32", **overrides}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per scenario")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    cache = default_cache_dir(dict(os.environ))
    zoo.build("yolov3-tiny", cache)
    media = prepare_media(cache / "media")
    clips = {name: long_clip(media[name], 9) for name in set(CLIPS)}
    args.out.mkdir(parents=True, exist_ok=True)

    print(f"bare engine, {args.seconds:g} s ...", flush=True)
    bare = bare_engine(OpenVinoConfig(**engine_section()), cache, args.seconds)
    runs: list[RunFigures] = []
    with tempfile.TemporaryDirectory(prefix="edged-bench-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker").start()
        rtsp = RtspServer({f"cam{i}": clips[name] for i, name in enumerate(CLIPS)}).start()
        try:
            scenarios: list[tuple[str, dict[str, Any]]] = []
            for k in (1, 4):
                cams = {f"cam{i}": {"url": rtsp.url(f"cam{i}")} for i in range(k)}
                scenarios.append((f"rtsp-{k}cam-realtime", cams))
            files = {f"file{i}": {"url": str(clips[CLIPS[i]]), "realtime": False, "loop": True} for i in range(4)}
            scenarios.append(("file-4cam-unthrottled", files))
            for name, cams in scenarios:
                print(f"{name}, {args.seconds:g} s ...", flush=True)
                config = {"device_id": "bench", "log": {"level": "warning"},
                          "mqtt": {"host": "127.0.0.1", "port": broker.port},
                          "engine": engine_section(), "cameras": cams}
                runs.append(measure_daemon(name, config, broker.port, work, cache, args.warmup, args.seconds))
        finally:
            rtsp.stop()
            broker.stop()

    report = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "bare_engine": asdict(bare),
        "runs": [asdict(r) for r in runs],
    }
    out = args.out / "pipeline.json"
    out.write_text(json.dumps(report, indent=2))
    print()
    print(f"bare OpenVINO engine: {bare.fps:.1f} frames/s, latency p50 {bare.latency_ms_p50:.1f} ms "
          f"p95 {bare.latency_ms_p95:.1f} ms  ({bare.settings})")
    header = (f"{'scenario':24} {'fps':>6} {'x bare':>7} {'lat p50':>8} {'lat p95':>8} {'lat p99':>8} "
              f"{'age p95':>8} {'rss MB':>7} {'cpu %':>6} {'first s':>7}")
    print(header)
    for r in runs:
        print(f"{r.name:24} {r.processed_fps:6.1f} {r.processed_fps / bare.fps:7.2f} {r.latency_ms_p50:8.1f} "
              f"{r.latency_ms_p95:8.1f} {r.latency_ms_p99:8.1f} {r.age_ms_p95:8.1f} {r.rss_mb:7.0f} "
              f"{r.cpu_percent:6.0f} {r.first_detection_s or float('nan'):7.2f}")
        print(f"{'':24} per camera: {r.per_camera_fps}")
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
