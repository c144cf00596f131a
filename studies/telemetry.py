"""What telemetry costs: processed frames/s with telemetry on and off, in one run.

    python -m studies.telemetry [--seconds 15] [--rounds 2]

Engine-bound scenario (4 files pulled as fast as possible), telemetry every second
(ten times the default rate, with /metrics served) against telemetry off; the two
alternate so machine drift hits both alike. Prints medians and the ratio, and a
sample telemetry message. Never fails on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from edged.bench.harness import measure_daemon, workspace
from edged.testing.broker import Mosquitto
from edged.testing.subscriber import Subscriber

CLIPS = ["zidane.mp4", "bus.mp4", "street.mp4", "zidane.mp4"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("out/studies"))
    args = parser.parse_args()
    ws = workspace(args.out)
    cache = ws.cache
    clips = {name: ws.long_clip(name) for name in set(CLIPS)}
    fps: dict[str, list[float]] = {"on": [], "off": []}
    sample = None
    with tempfile.TemporaryDirectory(prefix="edged-telemetry-") as tmp:
        broker = Mosquitto(Path(tmp) / "broker").start()
        try:
            for round_no in range(args.rounds):
                for mode in ("on", "off"):
                    print(f"round {round_no + 1}: telemetry {mode}, {args.seconds:g} s ...", flush=True)
                    config = {
                        "device_id": "bench", "log": {"level": "warning"},
                        "mqtt": {"host": "127.0.0.1", "port": broker.port},
                        "engine": {"model": "yolov3-tiny"},
                        "telemetry": {"interval_s": 1.0 if mode == "on" else 0},
                        "http": {"listen": "127.0.0.1:0" if mode == "on" else ""},
                        "cameras": {f"file{i}": {"url": str(clips[CLIPS[i]]), "realtime": False, "loop": True}
                                    for i in range(4)},
                    }
                    run = measure_daemon(f"{mode}-{round_no}", config, broker.port, Path(tmp), cache, 5, args.seconds)
                    fps[mode].append(run.processed_fps)
                    if mode == "on" and sample is None:
                        sub = Subscriber(broker.port, "edged/bench/telemetry")
                        sample = sub.wait_for(lambda m: m.retain, 5, "retained telemetry").json()
                        sub.close()
        finally:
            broker.stop()
    on, off = statistics.median(fps["on"]), statistics.median(fps["off"])
    result = {"fps": fps, "median_on": on, "median_off": off, "ratio": on / off, "sample": sample}
    (args.out / "telemetry.json").write_text(json.dumps(result, indent=2))
    print(f"\nprocessed frames/s, telemetry every 1 s: {on:.2f}  off: {off:.2f}  ratio {on / off:.3f}")
    print(f"rounds: {fps}")
    print(f"written: {args.out / 'telemetry.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
