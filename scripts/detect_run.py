"""One real detection run, the same on any machine: mosquitto, ``edged run`` on a clip, an MQTT subscriber.

    python scripts/detect_run.py CLIP OUT.json [--cache-dir DIR] [--precision f32|auto]
    python scripts/detect_run.py --compare A.json B.json        # box agreement between two runs

scripts/check-arm64.sh runs it on x86 and inside the emulated arm64 root and compares
the two: every detection of one run must have a box of the same label in the other at
IoU >= 0.9, frame by frame.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(clip: Path, out: Path, cache: Path, precision: str, timeout_s: float) -> int:
    from edged.testing.broker import Mosquitto
    from edged.testing.daemon_process import DaemonProcess
    from edged.testing.subscriber import Subscriber

    work = out.parent / f"{out.stem}-work"
    shutil.rmtree(work, ignore_errors=True)  # a fresh log: the daemon appends to its own
    broker = Mosquitto(work / "broker").start()
    sub = Subscriber(broker.port, "edged/arm64/#")
    config = {"device_id": "arm64", "mqtt": {"host": "127.0.0.1", "port": broker.port},
              "engine": {"backend": "openvino", "model": "yolov3-tiny", "precision": "fp32",
                         "inference_precision": precision},
              "telemetry": {"interval_s": 0}, "events": {"enabled": False},
              "cameras": {"clip": {"url": str(clip), "realtime": False, "loop": False}}}
    started = time.monotonic()
    proc = DaemonProcess(config, work / "daemon", cache).start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(m.topic.endswith("clip/status") and b"end of file" in m.payload for m in sub.messages):
                # The last frames may still be in the engine (seconds each under emulation): until quiet.
                count, quiet_since = -1, time.monotonic()
                while time.monotonic() - quiet_since < 20 and time.monotonic() < deadline:
                    now = sum(m.topic.endswith("/detections") for m in sub.messages)
                    if now != count:
                        count, quiet_since = now, time.monotonic()
                    time.sleep(0.5)
                break
            if "reconnecting: cannot open" in proc.log():
                print("the camera cannot open the clip", file=sys.stderr)
                break
            if proc.process is not None and proc.process.poll() is not None:
                break
            time.sleep(0.5)
        log = proc.log()
    finally:
        proc.stop()
        sub.close()
        broker.stop()
    frames = {}
    for message in sub.messages:
        if message.topic.endswith("/detections"):
            payload = message.json()
            frames[payload["seq"]] = payload["detections"]
    engine = next((line.split(" on ", 1)[1] for line in log.splitlines() if "camera(s) on " in line), "")
    out.write_text(json.dumps({"seconds": round(time.monotonic() - started, 1), "engine": engine,
                               "frames": frames}, indent=1))
    print(f"{len(frames)} frames with detections' messages in {time.monotonic() - started:.0f} s on {engine}")
    return 0 if frames else 1


def compare(first: Path, second: Path, threshold: float = 0.9) -> int:
    import numpy as np

    from edged.models.agreement import box_iou

    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    common = sorted(set(a["frames"]) & set(b["frames"]), key=int)
    worst, unmatched, total = 1.0, [], 0
    for seq in common:
        for one, other, where in ((a["frames"][seq], b["frames"][seq], first.name),
                                  (b["frames"][seq], a["frames"][seq], second.name)):
            for det in one:
                total += 1
                same = np.array([o["box"] for o in other if o["label"] == det["label"]], np.float32).reshape(-1, 4)
                best = float(box_iou(np.array([det["box"]], np.float32), same).max(initial=0.0))
                worst = min(worst, best)
                if best < threshold:
                    unmatched.append(f"frame {seq}: {det['label']} {det['score']} in {where} (best IoU {best:.2f})")
    print(f"{len(common)} frames in both runs, {total} detections; worst matched IoU {worst:.3f} "
          f"(threshold {threshold}); {first.name}: {a['engine']}; {second.name}: {b['engine']}")
    for line in unmatched:
        print(f"  unmatched: {line}")
    return 0 if common and not unmatched else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs=2, type=Path)
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "edged")
    parser.add_argument("--precision", default="f32")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    if args.compare:
        return compare(*args.paths)
    return run(args.paths[0], args.paths[1], args.cache_dir, args.precision, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
