"""Soak: run the daemon for a long time and watch memory, file descriptors and threads.

    python -m studies.soak [--minutes 30] [--sample-s 10] [--warmup-min 2]

Cameras: three looping files played in real time, and one RTSP stream whose
file-backed media ends every ~200 s, so the reconnect path runs over and over.
Samples /proc/<pid> of the daemon; reports each series with its slope (linear fit
after the warm-up, per hour) and the detections a subscriber received. Writes
out/studies/soak.json. Never fails on a number.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edged.bench.harness import sample_process, workspace
from edged.testing.broker import Mosquitto
from edged.testing.daemon_process import DaemonProcess
from edged.testing.rtsp import RtspServer
from edged.testing.subscriber import Subscriber


def slope_per_hour(t: list[float], y: list[float]) -> float:
    if len(t) < 3:
        return float("nan")
    return float(np.polyfit(np.asarray(t) / 3600.0, np.asarray(y), 1)[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--warmup-min", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=Path("out/studies"))
    args = parser.parse_args()
    ws = workspace(args.out)
    cache, media = ws.cache, ws.media
    rtsp_clip = ws.long_clip("bus.mp4")
    samples = []
    with tempfile.TemporaryDirectory(prefix="edged-soak-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker").start()
        server = RtspServer({"bus": rtsp_clip}).start()
        sub = Subscriber(broker.port, "edged/soak/+/detections")
        proc = DaemonProcess({
            "device_id": "soak", "log": {"level": "warning"},
            "mqtt": {"host": "127.0.0.1", "port": broker.port},
            "engine": {"model": "yolov3-tiny"}, "telemetry": {"interval_s": 10},
            "cameras": {
                "street": {"url": str(media["street.mp4"]), "loop": True, "fps": 8},
                "zidane": {"url": str(media["zidane.mp4"]), "loop": True, "fps": 4},
                "carphone": {"url": str(media["carphone.mp4"]), "loop": True, "fps": 4},
                "rtsp": {"url": server.url("bus"), "fps": 4, "reconnect": {"min_s": 0.5, "max_s": 5}},
            },
        }, work / "daemon", cache).start()
        assert proc.process is not None
        started = time.monotonic()
        try:
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(args.sample_s)
                if proc.process.poll() is not None:
                    raise RuntimeError(f"the daemon exited:\n{proc.log()[-3000:]}")
                if server.process is not None and server.process.poll() is not None:
                    server.start()
                sample = sample_process(proc.process.pid)
                samples.append({**asdict(sample), "t": sample.t - started, "detections": len(sub.messages)})
                if len(samples) % max(1, int(60 / args.sample_s)) == 0:
                    print(f"{samples[-1]['t'] / 60:5.1f} min  rss {sample.rss_mb:6.1f} MB  fds {sample.fds:3d}  "
                          f"threads {sample.threads:3d}  detections {len(sub.messages)}", flush=True)
        finally:
            proc.stop()
            sub.close()
            server.stop()
            broker.stop()
        log = proc.log()
    steady = [s for s in samples if s["t"] >= args.warmup_min * 60]
    t = [s["t"] for s in steady]
    result = {
        "minutes": args.minutes, "samples": samples,
        "slopes_per_hour": {
            "rss_mb": slope_per_hour(t, [s["rss_mb"] for s in steady]),
            "fds": slope_per_hour(t, [s["fds"] for s in steady]),
            "threads": slope_per_hour(t, [s["threads"] for s in steady]),
        },
        "first": samples[0] if samples else None, "last": samples[-1] if samples else None,
        "reconnects_logged": log.count("reconnecting"),
    }
    (args.out / "soak.json").write_text(json.dumps(result, indent=2))
    if steady:
        print(f"\nafter {args.warmup_min:g} min warm-up, over {(t[-1] - t[0]) / 60:.1f} min:")
        for key, unit in (("rss_mb", "MB"), ("fds", "fds"), ("threads", "threads")):
            values = [s[key] for s in steady]
            print(f"  {key:8} {min(values):8.1f} .. {max(values):8.1f}   slope {result['slopes_per_hour'][key]:+8.2f} "
                  f"{unit}/hour")
        rate = (steady[-1]["detections"] - steady[0]["detections"]) / max(1.0, t[-1] - t[0])
        print(f"  detections received {rate:.1f}/s; camera reconnects logged: {result['reconnects_logged']}")
    print(f"written: {args.out / 'soak.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
