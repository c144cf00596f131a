"""The remote engine against the local one, and the engine chain under a Triton crash, in one run.

    python -m studies.remote_engine [--seconds 20] [--out out/studies]

Starts a real Triton (PyTriton, scripts/triton-venv.sh) serving the FP32 model on this
machine's CPU, then measures, all in one run on the same model at f32:
- the engine alone: local OpenVINO against the KServe client to Triton (frames/s, latency);
- the daemon on one file camera, unthrottled: local, remote, and the chain remote > local
  (frames/s, edged's own CPU per frame, resident memory: what a warm fallback costs);
- failover: the chain at 8 frames/s, Triton killed (SIGKILL) under load, then started
  again: time to the ``engine_failover`` alert, the longest gap in detections, frames
  published against those expected, time back on Triton once it serves again.
Writes ``remote.json`` and ``remote.md`` to ``--out``; never fails on a time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from edged.bench.harness import bare_engine, measure_daemon, workspace
from edged.config.models import KServeConfig, OpenVinoConfig
from edged.testing.broker import Mosquitto
from edged.testing.subscriber import Subscriber
from edged.testing.triton import TritonServer
from edged.tools.remote import write_remote_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("out/studies"))
    args = parser.parse_args()
    ws = workspace(args.out)
    cache = ws.cache
    result: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M")}
    local = {"backend": "openvino", "model": "yolov3-tiny", "precision": "fp32", "inference_precision": "f32",
             "num_requests": 2}
    with tempfile.TemporaryDirectory(prefix="edged-bench-remote-") as tmp:
        work = Path(tmp)
        model, _ = write_remote_model("yolov3-tiny", cache, work / "repo")
        triton = TritonServer(work / "triton", model, "yolov3-tiny").start()
        remote = {"backend": "kserve", "url": triton.url, "model": "yolov3-tiny", "num_requests": 2, "timeout_s": 1.0}
        try:
            result["engine"] = {
                "local": bare_engine(OpenVinoConfig(**local), cache, args.seconds).__dict__,
                "remote": bare_engine(KServeConfig(**remote), cache, args.seconds).__dict__,
            }
            broker = Mosquitto(work / "broker").start()
            try:
                camera = {"url": str(ws.media["street.mp4"]), "loop": True, "realtime": False,
                          "motion": {"enabled": False}}
                daemon = {}
                for name, engine in (("local", local), ("remote", remote), ("chain", [remote, local])):
                    config = {"device_id": f"remote-{name}", "mqtt": {"host": "127.0.0.1", "port": broker.port},
                              "engine": engine, "telemetry": {"interval_s": 10}, "cameras": {"cam": camera},
                              "snapshots": {"enabled": False}, "homeassistant": {"enabled": False}}
                    figures = measure_daemon(name, config, broker.port, work, cache, 5.0, args.seconds)
                    daemon[name] = {"fps": round(figures.processed_fps, 1), "rss_mb": round(figures.rss_mb),
                                    "latency_ms_p50": round(figures.latency_ms_p50, 1),
                                    "core_ms_per_frame": round(figures.core_ms_per_frame, 2)}
                    print(name, daemon[name], flush=True)
                result["daemon"] = daemon
                result["failover"] = failover(work, cache, broker, triton, remote, local, ws.media["street.mp4"])
            finally:
                broker.stop()
        finally:
            triton.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "remote.json").write_text(json.dumps(result, indent=1))
    lines = markdown(result)
    (args.out / "remote.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def failover(work: Path, cache: Path, broker: Mosquitto, triton: TritonServer, remote: dict[str, Any],
             local: dict[str, Any], clip: Path, fps: float = 8.0) -> dict[str, Any]:
    from edged.testing.daemon_process import DaemonProcess

    config = {"device_id": "failover", "mqtt": {"host": "127.0.0.1", "port": broker.port},
              "engine": [remote, local], "telemetry": {"interval_s": 1}, "snapshots": {"enabled": False},
              "homeassistant": {"enabled": False},
              "cameras": {"cam": {"url": str(clip), "loop": True, "fps": fps, "motion": {"enabled": False}}}}
    sub = Subscriber(broker.port, "edged/failover/#")
    proc = DaemonProcess(config, work / "failover", cache).start()
    try:
        _wait(lambda: len(sub.on("edged/failover/cam/detections")) >= 20, 120)
        killed = time.time()
        triton.kill()
        firing = _alert(sub, "firing", 30)
        time.sleep(5.0)
        ready_from = time.time()
        triton.start()
        ready = time.time()
        resolved = _alert(sub, "resolved", 120)
        time.sleep(2.0)
        published = [m.received for m in sub.on("edged/failover/cam/detections")]
    finally:
        proc.stop()
        sub.close()
    window = [t for t in published if killed - 2 <= t <= firing.received + 2]
    before = [t for t in published if t < killed - 2][-20:]
    gaps = [b - a for a, b in itertools.pairwise(published) if a >= killed - 1 and b <= firing.received + 3]
    span = (firing.received + 2) - (killed - 2)
    return {"failover_s": round(firing.received - killed, 2), "longest_gap_s": round(max(gaps), 2) if gaps else None,
            "published_in_window": len(window), "expected_in_window": round(span * fps),
            "rate_before": round((len(before) - 1) / (before[-1] - before[0]), 2) if len(before) > 1 else None,
            "triton_restart_s": round(ready - ready_from, 1), "return_s": round(resolved.received - ready, 2)}


def _alert(sub: Subscriber, state: str, timeout: float) -> Any:
    return sub.wait_for(lambda m: m.topic == "edged/failover/alerts" and m.json().get("alert") == "engine_failover"
                        and m.json().get("state") == state, timeout)


def _wait(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("no detections from the failover daemon")
        time.sleep(0.2)


def markdown(result: dict[str, Any]) -> list[str]:
    engine, daemon, fo = result["engine"], result["daemon"], result["failover"]
    lo, re_ = engine["local"], engine["remote"]
    return [
        f"Remote engine ({result['when']}, one run, YOLOv3-tiny FP32 at f32 on both sides; Triton on this machine's "
        "CPU, so the server's inference and the gRPC round trip share its cores):", "",
        "| | engine alone frames/s | latency p50 / p95 ms | daemon frames/s | edged core-ms/frame | RSS MB |",
        "|---|---|---|---|---|---|",
        f"| local OpenVINO | {lo['fps']:.1f} | {lo['latency_ms_p50']:.1f} / {lo['latency_ms_p95']:.1f} | "
        f"{daemon['local']['fps']} | {daemon['local']['core_ms_per_frame']} | {daemon['local']['rss_mb']} |",
        f"| KServe to Triton | {re_['fps']:.1f} | {re_['latency_ms_p50']:.1f} / {re_['latency_ms_p95']:.1f} | "
        f"{daemon['remote']['fps']} | {daemon['remote']['core_ms_per_frame']} | {daemon['remote']['rss_mb']} |",
        f"| chain KServe > local | | | {daemon['chain']['fps']} | {daemon['chain']['core_ms_per_frame']} | "
        f"{daemon['chain']['rss_mb']} |", "",
        f"Failover at {fo['rate_before']} detections/s: Triton killed, `engine_failover` fired {fo['failover_s']} s "
        f"later; longest gap in detections {fo['longest_gap_s']} s; {fo['published_in_window']} published of "
        f"{fo['expected_in_window']} expected in the window from 2 s before the kill to 2 s after the alert; Triton "
        f"served again {fo['triton_restart_s']} s after its restart, and edged was back on it {fo['return_s']} s "
        "after that.",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
