"""The demo's config, run as the daemon at f32 and at its default policy, one after the other.

    python -m studies.demo_precision [--seconds 20]

For each: the precision line the daemon logged at start (with the gate's agreement), the
engine's inference ms p50/p95 and the process's CPU from its telemetry, and the frames/s
of its three cameras. Never fails on time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from edged.bench.harness import sample_process, workspace
from edged.logs import setup_logging
from edged.testing.broker import Mosquitto
from edged.testing.daemon_process import DaemonProcess
from edged.testing.media import prepare_media
from edged.testing.subscriber import Subscriber
from edged.tools.demo import demo_config_text
from edged.tools.export import build_catalogue


def run(label: str, config: dict[str, Any], work: Path, cache: Path, port: int, seconds: float) -> dict[str, Any]:
    sub = Subscriber(port, "edged/demo/#")
    proc = DaemonProcess(config, work / label, cache).start()
    assert proc.process is not None
    try:
        proc.wait_log("first detections published", 180)
        time.sleep(3)
        before = sample_process(proc.process.pid)
        time.sleep(seconds)
        after = sample_process(proc.process.pid)
        telemetry = [m.json() for m in sub.on("edged/demo/telemetry")][-1]
    finally:
        proc.stop()
        sub.close()
    log = proc.log()
    policy = [line.split("INFO edged.tools.precision_gate: ", 1)[1] for line in log.splitlines()
              if "edged.tools.precision_gate: precision:" in line]
    engine = telemetry["engine"]
    return {"label": label, "precision": engine.get("precision"), "policy": policy[-1] if policy else "pinned",
            "infer_ms": engine["infer_ms"], "cpu_pct": round(100 * (after.cpu_s - before.cpu_s) / (after.t - before.t)),
            "processed_fps": {n: c.get("processed_fps") for n, c in telemetry["cameras"].items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("out/studies"))
    args = parser.parse_args()
    setup_logging("warning")
    ws = workspace(args.out)
    build_catalogue("yolov3-tiny", ws.cache)
    media = prepare_media(ws.cache / "media")
    text = (demo_config_text().replace("${EDGED_DEMO_MEDIA}", str(media["street.mp4"].parent)))
    results = []
    with tempfile.TemporaryDirectory(prefix="edged-demo-bench-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker").start()
        try:
            base = yaml.safe_load(text.replace("${EDGED_DEMO_PORT}", str(broker.port)))
            base["http"] = {"listen": ""}
            for label, precision in (("f32 (before: the old default)", "f32"), ("auto (the default now)", "auto")):
                config = json.loads(json.dumps(base))
                config["engine"]["inference_precision"] = precision
                results.append(run(label, config, work, ws.cache, broker.port, args.seconds))
        finally:
            broker.stop()
    for r in results:
        print(f"{r['label']}: precision {r['precision']}, inference p50 {r['infer_ms']['p50']} ms / p95 "
              f"{r['infer_ms']['p95']} ms, CPU {r['cpu_pct']} %, cameras {r['processed_fps']}")
        print(f"  {r['policy']}")
    first, second = results
    print(f"inference p50 {first['infer_ms']['p50'] / second['infer_ms']['p50']:.2f}x faster with the policy; "
          f"CPU {first['cpu_pct']} % -> {second['cpu_pct']} %")
    (args.out / "demo_precision.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
