"""``edged bench``: the pipeline alone, the bare engine, edged end to end, and the peer, in one run.

Same model file, precision and engine settings throughout. Scenarios:
- the pipeline on its own: K file cameras (640x272 H.264, decoded) on the stand-in
  engine (the model's recorded outputs, returned at once): the pipeline's ceiling in
  frames/s and its cost in core-ms per frame, stage by stage;
- the bare engine (every request busy on random input);
- K small file cameras pulled as fast as possible (the engine-bound ceiling);
- engine cases: the same detector at the input size whose bare engine runs >= 200
  frames/s here (fast) and <= 60 (slow), 4 file cameras each, the bare engine
  measured just before and just after (the host's speed drifts);
- K RTSP cameras, 1280x720 at 30 frames/s from a local gst-rtsp-server, 10
  detections/s each; and one unthrottled RTSP camera for latency;
- the Ultralytics loop against edged on the same exported YOLOv8n, on a file and
  on live RTSP streams (optional).
Figures are measured by an MQTT subscriber; ratios are within this run. Writes
JSON, Markdown, PNG plots, and the README's performance section if asked.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from edged.artifacts import zoo
from edged.bench.harness import (
    RunFigures,
    Workspace,
    bare_engine,
    benchmark_app,
    measure_daemon,
    outside_engine,
    plain_precision,
    workspace,
)
from edged.bench.sizes import EngineCase, rect_size
from edged.bench.verdicts import cpu_budget, notes, targets
from edged.config.models import CameraConfig, OpenVinoConfig
from edged.errors import EdgedError
from edged.testing.broker import Mosquitto
from edged.testing.rtsp import RtspServer
from edged.tools.export import build_catalogue, export, source_for
from edged.tools.precision_gate import Choice, choose
from edged.tools.progress import Progress

log = logging.getLogger(__name__)
# The throughput and latency scenarios measure the pipeline on every frame: the motion gate (which would hold
# back the montage's still moments) is off there; the gating scenario and the default-config row measure it.
EVERY_FRAME: dict[str, Any] = {"motion": {"enabled": False}}
# What a counting user turns on, in every daemon scenario but the peer's: a zone and a line (events, snapshots,
# the tracker and tamper are on as shipped).
COUNTING: dict[str, Any] = {
    "zones": {"left_half": {"polygon": [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]}},
    "lines": {"middle": {"points": [[0.5, 0.0], [0.5, 1.0]]}},
}


@dataclass
class BenchOptions:
    out: Path
    seconds: float = 20.0
    warmup: float = 5.0
    cameras: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    precision: str = "int8"
    peer: bool = True
    engine_cases: bool = True  # also the fast (>= 200 frames/s) and slow (<= 60) input sizes
    analytics: bool = True  # motion gating, regions, tracker and tamper figures
    page: bool = True  # snapshots, the page's live pictures and a request burst
    layouts: bool = True  # the same network in every output layout edged reads
    readme: Path | None = None


def bench_cache(ws: Workspace, precision: str) -> Path:
    """A cache of the bench's own: an INT8 model calibrated on sample clips never replaces the user's."""
    cache = ws.cache / "bench"
    mine = zoo.copy_base(build_catalogue("yolov3-tiny", ws.cache), cache)
    if precision == "int8" and not mine.has("int8"):
        from edged.tools.calibration import capture
        from edged.tools.int8 import Int8Options, make_int8

        frames = capture({"street": CameraConfig(url=str(ws.media["street.mp4"])),
                          "carphone": CameraConfig(url=str(ws.media["carphone.mp4"]))}, cache / "calibration", 100, 60)
        report = make_int8(mine, frames, cache, Int8Options())
        log.info("INT8 for the bench: mAP@0.5 against FP32 %.3f on held-out frames", report.agreement["map50"])
    return cache


def engine_section(precision: str, model: str = "yolov3-tiny", inference: str = "f32") -> dict[str, Any]:
    return {"backend": "openvino", "model": model, "precision": precision, "inference_precision": inference}


def policy_precision(ws: Workspace, cache: Path, precision: str) -> Choice:
    """What edged's own policy (inference_precision: auto) runs on this machine; the bench then pins
    it for every scenario, the bare engine and benchmark_app alike, so every row compares like with like."""
    frames = [cv2.imread(str(ws.media[name])) for name in ("bus.jpg", "zidane.jpg")]
    capture = cv2.VideoCapture(str(ws.media["street.mp4"]))
    for _ in range(12):
        for _ in range(15):
            capture.grab()
        ok, frame = capture.read()
        if ok:
            frames.append(frame)
    capture.release()
    config = OpenVinoConfig(**engine_section(precision, inference="auto"))
    return choose(config, cache, lambda: [f for f in frames if f is not None], threshold=0.4)


def _config(name: str, broker: int, cameras: dict[str, Any], engine: dict[str, Any],
            events: bool = True) -> dict[str, Any]:
    """A daemon's config; ``events`` False: the peer comparison, where the Ultralytics loop follows no objects."""
    return {"device_id": name, "mqtt": {"host": "127.0.0.1", "port": broker}, "engine": engine,
            "telemetry": {"interval_s": 10}, "events": {"enabled": events}, "cameras": cameras}


@dataclass
class Bracketed:
    """An edged run with the bare engine measured just before and just after it."""

    run: RunFigures
    bare_before: float
    bare_after: float

    @property
    def bare(self) -> float:
        return (self.bare_before + self.bare_after) / 2

    def row(self, kind: str, size: int, model: str) -> dict[str, Any]:
        return {"case": kind, "size": size, "model": model, "run": self.run.name,
                "bare_before": self.bare_before, "bare_after": self.bare_after, "bare_fps": self.bare,
                "edged_fps": self.run.processed_fps, "ratio": self.run.processed_fps / self.bare,
                "core_ms_outside_engine": outside_engine(self.run.stage_core_ms)}


def run_bench(options: BenchOptions, cache_dir: Path | None = None) -> dict[str, Any]:
    from edged.bench.sizes import USUAL, build_sized, pick_cases
    from edged.bench.standin import record
    from edged.tools.calibration import CalibrationSet

    ws = workspace(options.out, cache_dir)
    steps = (4 + (4 in options.cameras) + 3 * len(options.cameras) + 1 + (2 if options.engine_cases else 0)
             + (6 if options.peer else 0) + (6 if options.analytics else 0) + (4 if options.page else 0)
             + (5 if options.layouts else 0))
    with Progress("edged bench", steps) as progress:
        cache = bench_cache(ws, options.precision)
        policy = policy_precision(ws, cache, options.precision)
        engine = engine_section(options.precision, inference=policy.precision)
        bare = bare_engine(OpenVinoConfig(**engine), cache, options.seconds, rounds=2)
        app = benchmark_app(OpenVinoConfig(**engine), cache, options.seconds / 2)
        progress.update(note=f"bare engine {bare.fps:.1f} fps" + (f", benchmark_app {app.fps:.1f} fps" if app else ""))

        fast = slow = None
        tried: dict[int, float] = {USUAL: bare.fps}
        if options.engine_cases:
            fast, slow, tried = pick_cases(
                lambda model: bare_engine(OpenVinoConfig(**{**engine, "model": model}), cache, options.seconds / 2),
                lambda size: build_sized(size, cache, lambda: CalibrationSet.load(cache / "calibration")), bare)
            progress.update(note="engine cases: " + ", ".join(f"{size} {fps:.0f} fps" for size, fps in tried.items()))
        standin = record(OpenVinoConfig(**engine), cache, ws.media["street.mp4"], options.out / "standin-outputs.npy")
        progress.update(note=f"recorded the model's outputs for the stand-in engine ({standin.name})")
        from edged.bench.decoding import run_decoding

        decoding = run_decoding({"street": ws.long_clip("street.mp4"),
                                 "street-720p30": ws.long_clip("street-720p30.mp4")}, cache, engine)
        progress.update(note="decoding: " + ", ".join(f"{row['clip']} {row['decode_ms']:.2f} core-ms, "
                                                       f"{row['decode_skip_ms']:.2f} skipping the loop filter"
                                                       for row in decoding["rows"]))
        runs, cases, peer = _scenarios(options, ws, cache, engine, standin, (fast, slow), progress)
        media, note = ws.media["street.mp4"].parent, (lambda text: progress.update(note=text))
        analytics = page = layouts = None
        if options.analytics:
            from edged.bench.analytics import run_analytics

            analytics = _section("analytics", lambda: run_analytics(media, cache, engine, bare.fps, options.warmup,
                                                                    options.seconds, note))
        if options.page:
            from edged.bench.page import run_page

            page = _section("page", lambda: run_page(media, cache, engine, options.warmup, options.seconds, note))
        if options.layouts:
            from edged.bench.layouts import run_layouts

            layouts = _section("layouts", lambda: run_layouts(media, cache, engine, options.warmup,
                                                              options.seconds / 2, note))
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()},
        "model": f"YOLOv3-tiny 416 {options.precision.upper()}, float layers {policy.precision}",
        "precision_policy": policy.reason,
        "bare_engine": bare.__dict__, "benchmark_app": app.__dict__ if app else None,
        "engine_sizes": {str(size): fps for size, fps in tried.items()},
        "engine_cases": cases,
        "runs": [{**r.row(), "latencies_ms": r.latencies_ms} for r in runs],
        "peer": peer,
        "decoding": decoding,
        "analytics": analytics,
        "page": page,
        "layouts": layouts,
    }
    result["cpu_budget"] = cpu_budget(result)
    result["targets"] = targets(result)
    result["notes"] = notes(result)
    return result


def _scenarios(options: BenchOptions, ws: Workspace, cache: Path, engine: dict[str, Any], standin: Path,
               engine_cases: tuple[EngineCase | None, ...], progress: Progress,
               ) -> tuple[list[RunFigures], list[dict[str, Any]], dict[str, Any] | None]:
    """Every daemon scenario, against one broker and one RTSP server."""
    from edged.bench.sizes import USUAL

    runs: list[RunFigures] = []
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edged-bench-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker").start()
        stream = ws.long_clip("street-720p30.mp4")
        streams = max([*options.cameras, 8 if options.peer else 1])
        server = RtspServer({f"cam{i}": stream for i in range(streams)}).start()
        clip = ws.long_clip("street.mp4")

        def files(k: int, settings: dict[str, Any] | None = None) -> dict[str, Any]:
            chosen = {**EVERY_FRAME, **COUNTING} if settings is None else settings
            return {f"file{i}": {"url": str(clip), "loop": True, "realtime": False, **chosen} for i in range(k)}

        def measure(name: str, cameras: dict[str, Any], engine_config: dict[str, Any],
                    recorded: Path | None = None) -> RunFigures:
            config = _config(name.replace(".", "-"), broker.port, cameras, engine_config)
            figures = measure_daemon(name, config, broker.port, work, cache, options.warmup, options.seconds,
                                     standin=recorded)
            progress.update(note=f"{name} {figures.processed_fps:.1f} fps")
            return figures

        def bracketed(name: str, model: str) -> Bracketed:
            config = OpenVinoConfig(**{**engine, "model": model})
            before = bare_engine(config, cache, options.seconds / 2).fps
            figures = measure(name, files(4), {**engine, "model": model})
            return Bracketed(figures, before, bare_engine(config, cache, options.seconds / 2).fps)

        try:
            runs += [measure(f"standin-{k}", files(k), engine, standin) for k in options.cameras]
            if 4 in options.cameras:  # beside standin-4, the row the issue's goal is set on
                runs.append(measure("standin-4-default", files(4, COUNTING), engine, standin))
            for k in options.cameras:
                if k != 4:
                    runs.append(measure(f"files-{k}", files(k), engine))
                    continue
                usual = bracketed("files-4", engine["model"])
                runs.append(usual.run)
                cases += [usual.row(case.kind, USUAL, engine["model"]) for case in engine_cases
                          if case is not None and case.size == USUAL]
            for case in engine_cases:
                if case is not None and case.size != USUAL:
                    done = bracketed(f"{case.kind}-files-4", case.model)
                    runs.append(done.run)
                    cases.append(done.row(case.kind, case.size, case.model))
            for k in options.cameras:
                runs.append(measure(f"rtsp-{k}", {f"cam{i}": {"url": server.url(f"cam{i}"), "fps": 10, **EVERY_FRAME,
                                                               **COUNTING} for i in range(k)}, engine))
            runs.append(measure("rtsp-1-unthrottled", {"cam0": {"url": server.url("cam0"), **EVERY_FRAME, **COUNTING}},
                                engine))
            peer = None
            if options.peer:
                try:
                    peer = _peer(options, ws, cache, broker.port, work, progress, server)
                except (EdgedError, RuntimeError) as exc:  # keep every other figure
                    log.error("the Ultralytics comparison failed: %s", exc)
                    peer = {"error": str(exc), "rows": []}
        finally:
            server.stop()
            broker.stop()
    return runs, cases, peer


def _section(name: str, measure: Any) -> dict[str, Any]:
    """One optional section's figures; where it fails, its error instead, and every other figure is kept."""
    try:
        return dict(measure())
    except (EdgedError, RuntimeError, OSError) as exc:
        log.error("the %s rows failed: %s", name, exc)
        return {"error": str(exc)}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _peer(options: BenchOptions, ws: Workspace, cache: Path, broker: int, work: Path,
          progress: Progress, server: RtspServer) -> dict[str, Any]:
    """Ultralytics' loop against edged on the same streams of frames, precision read back on both sides.

    Rows: the same exported model at OpenVINO's defaults on both sides; the same model pinned to f32
    on both sides; edged's default policy (INT8 where installed, the gated float precision) against
    Ultralytics' OpenVINO export at Ultralytics' defaults; and against Ultralytics' own default (PyTorch).
    """
    from edged.bench.harness import precision_of
    from edged.bench.peer import export_yolov8n, peer_python, predict_fps
    from edged.tools.calibration import CalibrationSet, capture
    from edged.tools.int8 import Int8Options, make_int8

    imgsz = 640
    python = peer_python(ws.cache)
    models = export_yolov8n(python, ws.cache / "peer-models", imgsz)
    video = ws.media["street.mp4"]
    ov_default = predict_fps(python, models.openvino_dir, video, 4, imgsz, work)
    ov_f32 = predict_fps(python, models.openvino_dir, video, 4, imgsz, work, precision="f32")
    torch = predict_fps(python, models.pt, video, 1, imgsz, work)
    progress.update(note=f"Ultralytics OpenVINO {ov_default.fps:.1f} fps at {ov_default.precision}, "
                         f"{ov_f32.fps:.1f} at {ov_f32.precision}; PyTorch {torch.fps:.1f} fps")
    cameras = {f"file{i}": {"url": str(video), "loop": True, "realtime": False, **EVERY_FRAME} for i in range(4)}

    def edged(name: str, engine: dict[str, Any]) -> tuple[float, str, float]:
        run = measure_daemon(name, _config(name, broker, cameras, engine, events=False), broker, work, cache,
                             options.warmup, options.seconds)
        used = precision_of(run.engine) or engine.get("inference_precision", "")
        bare = bare_engine(OpenVinoConfig(**{**engine, "inference_precision": used or "f32"}), cache,
                           options.seconds / 2).fps
        progress.update(note=f"edged {name} {run.processed_fps:.1f} fps at {used}")
        return run.processed_fps, used, bare

    same = {"backend": "openvino", "model": str(models.openvino_xml), "precision": "fp32"}
    default_fps, default_used, default_bare = edged(
        "peer-same-default", {**same, "inference_precision": plain_precision(ov_default.precision)})
    f32_fps, f32_used, f32_bare = edged("peer-same-f32", {**same, "inference_precision": "f32"})
    # edged's own default: its export of the same weights at the size Ultralytics' PyTorch loop
    # letterboxes to (the long side 640, the other padded to 32), INT8 installed, auto float precision.
    rect = rect_size(video, imgsz)
    built = export(source_for(str(models.onnx), name="yolov8n-bench", imgsz=rect), cache)
    if not built.has("int8"):
        frames: CalibrationSet = capture({"street": CameraConfig(url=str(video))}, cache / "calibration-v8", 60, 30)
        make_int8(built, frames, cache, Int8Options(force=True))  # random weights: agreement means nothing
    policy_fps, policy_used, policy_bare = edged("peer-policy", engine_section("auto", "yolov8n-bench", "auto"))

    def row(name: str, peer: Any, peer_precision: str, fps: float, used: str, bare: float,
            goal: float) -> dict[str, Any]:
        return {"name": name, "peer_fps": peer.fps, "peer_precision": peer_precision, "edged_fps": fps,
                "edged_precision": used, "ratio": fps / peer.fps, "goal": goal, "bare_fps": bare,
                "ceiling": bare / peer.fps}

    live = [_peer_live(k, options, python, models.openvino_dir, same, plain_precision(ov_default.precision),
                       imgsz, broker, work, cache, server, progress) for k in (4, 8)]
    return {"imgsz": imgsz, "rect": str(rect), "ultralytics_openvino_fps": ov_default.fps, "live": live,
            "ultralytics_pytorch_fps": torch.fps, "rows": [
        row(f"same Ultralytics-exported FP32 model ({imgsz}x{imgsz}), both at OpenVINO's defaults", ov_default,
            plain_precision(ov_default.precision), default_fps, default_used, default_bare, 1.0),
        row(f"same Ultralytics-exported FP32 model ({imgsz}x{imgsz}), both pinned to f32", ov_f32,
            plain_precision(ov_f32.precision), f32_fps, f32_used, f32_bare, 1.0),
        row(f"edged's default policy (INT8 YOLOv8n at {rect}) vs Ultralytics' OpenVINO export at its defaults",
            ov_default, plain_precision(ov_default.precision), policy_fps, f"INT8, {policy_used}", policy_bare, 2.0),
        row(f"edged's default policy (INT8 YOLOv8n at {rect}) vs Ultralytics' default (PyTorch, letterboxed to "
            f"{rect})", torch, torch.precision, policy_fps, f"INT8, {policy_used}", policy_bare, 5.0),
    ]}


def _peer_live(k: int, options: BenchOptions, python: Path, openvino_dir: Path, same: dict[str, Any],
               precision: str, imgsz: int, broker: int, work: Path, cache: Path, server: RtspServer,
               progress: Progress) -> dict[str, Any]:
    """K live 720p30 RTSP streams, unthrottled: Ultralytics' streams loop against edged, same model and precision."""
    from edged.bench.harness import percentile, precision_of
    from edged.bench.peer import predict_live

    urls = [server.url(f"cam{i}") for i in range(k)]
    peer = predict_live(python, openvino_dir, urls, options.seconds, imgsz, work, precision=precision)
    name = f"peer-live-{k}"
    cameras = {f"cam{i}": {"url": url, **EVERY_FRAME} for i, url in enumerate(urls)}
    run = measure_daemon(name, _config(name, broker, cameras, {**same, "inference_precision": precision},
                                       events=False), broker, work, cache, options.warmup, options.seconds)
    rates = list(run.per_camera_fps.values())
    progress.update(note=f"live {k}: Ultralytics {min(peer.per_camera_fps):.1f}-{max(peer.per_camera_fps):.1f}/s "
                         f"per camera, edged {min(rates):.1f}-{max(rates):.1f}/s")
    return {"cameras": k, "precision": precision,
            "peer": {"per_camera_fps": [round(v, 2) for v in peer.per_camera_fps],
                     "precision": plain_precision(peer.precision),
                     "age_ms_p50": percentile(peer.ages_ms, 50), "age_ms_p95": percentile(peer.ages_ms, 95),
                     "cpu_percent": peer.cpu_percent},
            "edged": {"per_camera_fps": rates, "precision": precision_of(run.engine),
                      "age_ms_p50": run.latency_ms_p50, "age_ms_p95": run.latency_ms_p95,
                      "cpu_percent": run.cpu_percent}}


def main_bench(options: BenchOptions, cache_dir: Path | None = None) -> int:
    from edged.bench.summary import summary

    return summary(run_bench(options, cache_dir), options.out, options.readme)
