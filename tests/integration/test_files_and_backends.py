"""File sources, the ONNX Runtime backend, `edged check` and the demo, with real parts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from edged.artifacts.zoo import BuiltModel
from edged.testing.broker import Mosquitto, free_port
from edged.testing.media import make_clip
from edged.testing.subscriber import Subscriber
from tests.integration.reference import BUS_PEOPLE, iou
from tests.support.types import MakeDaemon, Media, Subscribe


def test_file_played_as_fast_as_possible_loses_no_frame(tmp_path: Path, media: Media, broker: Mosquitto,
                                                        subscribe: Subscribe, daemon: MakeDaemon) -> None:
    """A file with realtime: false is pulled: every frame is processed, none dropped."""
    clip = make_clip(media["bus.jpg"], tmp_path / "bus-2s.mp4", seconds=2.0)
    sub = subscribe(broker.port, "edged/files/+/detections")
    daemon({
        "device_id": "files",
        "mqtt": {"host": "127.0.0.1", "port": broker.port},
        "engine": {"backend": "onnxruntime", "model": "yolov3-tiny", "num_requests": 2},
        "detect": {"labels": ["person"], "min_score": 0.5},
        "cameras": {"clip": {"url": str(clip), "realtime": False}},
    })
    messages = sub.wait_count("edged/files/clip/detections", 50, timeout=90)
    seqs = [m.json()["seq"] for m in messages]
    assert seqs == list(range(1, 51))
    best = max(iou(BUS_PEOPLE[0][0], d["box"]) for d in messages[-1].json()["detections"])
    assert best >= 0.5
    # The camera goes offline at the end of a file that does not loop.
    end = subscribe(broker.port, "edged/files/clip/status")
    status = end.wait_for(lambda m: m.json()["state"] == "offline", 15, "offline at end of file").json()
    assert status["reason"] == "end of file"


def test_check_accepts_a_good_config_and_names_problems(tmp_path: Path, built_model: BuiltModel, cache_dir: Path,
                                                        media: Media) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "engine: {model: yolov3-tiny}\n"
        f"cameras:\n  gate: {{url: 'rtsp://user:hunter22@10.0.0.7/s', fps: 5, detect: {{labels: [car]}}}}\n"
        f"  clip: {{url: '{media['bus.mp4']}', loop: true}}\n"
    )
    cmd = [sys.executable, "-m", "edged", "check", "--cache-dir", str(cache_dir), "-c"]
    ok = subprocess.run([*cmd, str(good)], capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout and "hunter22" not in ok.stdout and "rtsp://***@10.0.0.7/s" in ok.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("engine: {model: yolov3-tiny}\ncameras:\n  gate: {url: 'rtsp://x/s', detect: {labels: [unicorn]}}\n")
    failed = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 2
    assert "cameras.gate.detect.labels" in failed.stderr and "unicorn" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_demo_runs_with_nothing_to_configure(cache_dir: Path, built_model: BuiltModel, media: Media) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "edged", "demo", "--cache-dir", str(cache_dir), "--port", str(port), "--duration", "25"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        sub = None
        while sub is None and time.monotonic() < deadline:
            try:
                sub = Subscriber(port, "edged/demo/#")
            except (OSError, RuntimeError):
                time.sleep(0.5)
        assert sub is not None, "the demo's broker never came up"
        for camera in ("street", "zidane", "bus"):
            sub.wait_count(f"edged/demo/{camera}/detections", 3, timeout=45)
        sub.close()
    finally:
        demo.terminate()
        out, _ = demo.communicate(timeout=30)
    from edged.tools.demo import watch_command

    assert watch_command(port) in out and "-T 'edged/+/+/+/snapshot'" in out  # the JPEGs left out
    assert demo.returncode == 0, out[-3000:]
