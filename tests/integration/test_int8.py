"""INT8 with real parts: calibrate from a live RTSP camera and a file, the accuracy gate,
installation, the daemon running the INT8 model, and refusing mismatched models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from edged.artifacts import zoo
from edged.artifacts.meta import read_sidecar
from edged.testing.broker import Mosquitto
from edged.testing.rtsp import RtspServer
from tests.integration.reference import BUS_PEOPLE, iou
from tests.integration.test_engines import _as_yolov8_export
from tests.support.frames import write_frames
from tests.support.types import MakeDaemon, Media, Subscribe


def edged(*args: str, cache: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edged", *args, "--cache-dir", str(cache)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def write_config(path: Path, cameras: dict[str, Any], **engine: Any) -> Path:
    path.write_text(yaml.safe_dump({
        "device_id": "int8test", "engine": {"model": "yolov3-tiny", "precision": "int8", **engine},
        "detect": {"min_score": 0.4}, "cameras": cameras,
    }))
    return path


def test_calibrate_from_a_live_camera_and_a_file_then_run_int8(private_cache: Path, rtsp: RtspServer, media: Media,
                                                               broker: Mosquitto, subscribe: Subscribe,
                                                                daemon: MakeDaemon, tmp_path: Path) -> None:
    config = write_config(tmp_path / "edged.yaml", {
        "street": {"url": rtsp.url("street")},
        "carphone": {"url": str(media["carphone.mp4"])},
    })
    done = edged("calibrate", "-c", str(config), "--frames", "25", "--duration", "12", cache=private_cache)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mAP@0.5" in done.stdout and "installed" in done.stdout and "x" in done.stdout

    built = zoo.find_built("yolov3-tiny", private_cache)
    assert built is not None and built.has("int8")
    meta = read_sidecar(built.path("int8"))
    assert meta is not None and meta.precision == "int8" and meta.calibration is not None
    assert meta.calibration.cameras == ["carphone", "street"]
    assert meta.calibration.map50 >= 0.9 and not meta.calibration.forced
    report = json.loads((built.directory / "int8-report.json").read_text())
    assert report["installed"] and report["int8_fps"] > 0 and report["fp32_fps"] > 0
    assert report["agreement"]["per_class"] and report["held_out_frames"] >= 4

    manifest = json.loads((private_cache / "calibration" / "int8test" / "manifest.json").read_text())
    held = {f["file"] for f in manifest["frames"] if f["split"] == "held_out"}
    calib = {f["file"] for f in manifest["frames"] if f["split"] == "calibration"}
    assert held and calib and not held & calib
    assert manifest["cameras"]["street"]["kept"] >= 10  # live frames, spread over the window

    # The daemon runs the installed INT8 model and still finds the people on the bus.
    sub = subscribe(broker.port, "edged/int8test/+/detections")
    proc = daemon({"device_id": "int8test", "mqtt": {"host": "127.0.0.1", "port": broker.port},
                   "engine": {"model": "yolov3-tiny", "precision": "int8"},
                   "cameras": {"bus": {"url": rtsp.url("bus"), "fps": 4}}}, cache=private_cache)
    messages = sub.wait_count("edged/int8test/bus/detections", 5, timeout=60)
    people = [d["box"] for d in messages[-1].json()["detections"] if d["label"] == "person"]
    assert min(max(iou(ref, b) for b in people) for ref, _ in BUS_PEOPLE) >= 0.5
    assert "yolov3-tiny int8" in proc.log()


def test_the_gate_refuses_unless_forced(private_cache: Path, media: Media, tmp_path: Path) -> None:
    config = write_config(tmp_path / "edged.yaml", {"street": {"url": str(media["street.mp4"])}})
    refused = edged("calibrate", "-c", str(config), "--frames", "20", "--min-map", "1.01", cache=private_cache)
    assert refused.returncode == 1
    assert "INT8 model not installed: mAP@0.5" in refused.stderr and "under the 1.01 threshold" in refused.stderr
    built = zoo.find_built("yolov3-tiny", private_cache)
    assert built is not None and not built.has("int8")
    check = edged("check", "-c", str(config), cache=private_cache)
    assert check.returncode == 2 and "has no INT8 variant yet" in check.stderr

    forced = edged("calibrate", "-c", str(config), "--frames", "20", "--min-map", "1.01", "--force",
                   cache=private_cache)
    assert forced.returncode == 0, forced.stderr
    meta = read_sidecar(built.path("int8"))
    assert meta is not None and meta.calibration is not None and meta.calibration.forced


def test_models_that_do_not_match_their_sidecar_or_config_are_refused(private_cache: Path, media: Media,
                                                                      tmp_path: Path) -> None:
    built = zoo.find_built("yolov3-tiny", private_cache)
    assert built is not None
    wrong_precision = write_config(tmp_path / "a.yaml", {"c": {"url": str(media["bus.mp4"])}})
    text = wrong_precision.read_text().replace("model: yolov3-tiny", f"model: {built.path('fp32')}")
    wrong_precision.write_text(text)
    done = edged("check", "-c", str(wrong_precision), cache=private_cache)
    assert done.returncode == 2 and "engine.precision is int8, but fp32.xml is a fp32 model" in done.stderr

    with built.path("fp16").with_suffix(".bin").open("ab") as f:
        f.write(b"tampered")
    tampered = write_config(tmp_path / "b.yaml", {"c": {"url": str(media["bus.mp4"])}}, precision="fp16")
    done = edged("check", "-c", str(tampered), cache=private_cache)
    assert done.returncode == 2 and "does not match its sidecar" in done.stderr


def test_export_an_onnx_with_int8_from_a_directory(private_cache: Path, media: Media, tmp_path: Path) -> None:
    built = zoo.find_built("yolov3-tiny", private_cache)
    assert built is not None
    onnx_path = tmp_path / "detector-v8.onnx"
    _as_yolov8_export(built.onnx, onnx_path, list(built.meta.labels))
    frames = write_frames(media["street.mp4"], tmp_path / "frames", 250, 10)
    done = edged("export", str(onnx_path), "--name", "detector", "--int8", "--calibration", str(frames),
                 cache=private_cache)
    assert done.returncode == 0, done.stderr
    exported = zoo.find_built("detector", private_cache)
    assert exported is not None and exported.meta.head == "yolov8" and exported.meta.source.kind == "onnx"
    assert set(exported.variants()) >= {"onnx", "fp32", "fp16", "int8"}
    created = exported.meta.created
    again = edged("export", str(onnx_path), "--name", "detector", cache=private_cache)
    assert again.returncode == 0 and "up to date" in again.stderr
    rebuilt = edged("export", str(onnx_path), "--name", "detector", "--rebuild", cache=private_cache)
    assert rebuilt.returncode == 0
    fresh = zoo.find_built("detector", private_cache)
    assert fresh is not None and fresh.meta.created > created and fresh.has("int8")  # INT8 kept
    listing = edged("model", "list", cache=private_cache)
    assert "detector" in listing.stdout and "int8 (mAP@0.5 vs FP32" in listing.stdout


def test_export_an_ultralytics_checkpoint(private_cache: Path, tmp_path: Path) -> None:
    """Needs an interpreter with Ultralytics (torch, torchvision): EDGED_EXPORT_PYTHON."""
    import os

    import pytest

    python = os.environ.get("EDGED_EXPORT_PYTHON")
    if not python:
        pytest.skip("set EDGED_EXPORT_PYTHON to a Python with Ultralytics to test .pt export")
    pt = tmp_path / "yolov8n.pt"
    made = subprocess.run([python, "-c", f"from ultralytics import YOLO; YOLO('yolov8n.yaml').save('{pt}')"],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert made.returncode == 0, made.stderr
    done = edged("export", str(pt), "--imgsz", "320", "--python", python, cache=private_cache, timeout=600)
    assert done.returncode == 0, done.stderr
    built = zoo.find_built("yolov8n", private_cache)
    assert built is not None and built.meta.head == "yolov8" and built.meta.source.kind == "ultralytics-pt"
    assert built.meta.input.height == 320 and built.meta.input.batch is None  # dynamic batch
    assert built.meta.output_shape == [-1, 84, 2100] and built.has("fp16")


def test_a_pt_without_ultralytics_says_how_to_export_it(private_cache: Path, tmp_path: Path) -> None:
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"not really a checkpoint")
    done = edged("export", str(pt), cache=private_cache)
    assert done.returncode == 2 and "needs Ultralytics" in done.stderr and "--python" in done.stderr
