"""Pieces every benchmark shares: a workspace with the model and clips, the bare engine,
a daemon run measured by an MQTT subscriber, process sampling, percentiles.

Benchmarks print figures and ratios measured in the same run; they never pass or
fail on time.
"""

from __future__ import annotations

import logging
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edged.artifacts.info import load_model_info
from edged.config.models import AnyEngineConfig, OpenVinoConfig
from edged.engines.registry import create_engine
from edged.paths import default_cache_dir
from edged.telemetry.power import Rapl
from edged.testing.daemon_process import DaemonProcess
from edged.testing.media import long_clip, prepare_media
from edged.testing.subscriber import Subscriber
from edged.tools.enginebench import throughput
from edged.tools.export import build_catalogue

log = logging.getLogger(__name__)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Workspace:
    cache: Path
    media: dict[str, Path]
    out: Path

    def long_clip(self, name: str) -> Path:
        return long_clip(self.media[name])


def workspace(out: Path, cache: Path | None = None, model: str = "yolov3-tiny") -> Workspace:
    """The cache (default: the user's) with the model built and the sample clips made; ``out`` created."""
    cache = cache if cache is not None else default_cache_dir(dict(os.environ))
    build_catalogue(model, cache)
    out.mkdir(parents=True, exist_ok=True)
    return Workspace(cache, prepare_media(cache / "media"), out)


@dataclass
class EngineFigures:
    fps: float
    latency_ms_p50: float
    latency_ms_p95: float
    frames: int
    settings: dict[str, Any]


def bare_engine(config: AnyEngineConfig, cache: Path, seconds: float, rounds: int = 1) -> EngineFigures:
    """The engine alone, the device's optimal number of requests kept busy on random input.

    That is what benchmark_app does; edged itself keeps one request more in flight
    (being letterboxed), which would only add queueing to the bare latency.
    """
    info = load_model_info(config, cache)
    engine = create_engine(config, info, cache)
    engine.start()
    try:
        in_flight = getattr(engine, "optimal_requests", None)
        runs = [throughput(engine, seconds / rounds, in_flight) for _ in range(rounds)]
        settings = engine.describe()
    finally:
        engine.close()
    return EngineFigures(statistics.median(r.fps for r in runs), statistics.median(r.latency_ms_p50 for r in runs),
                         statistics.median(r.latency_ms_p95 for r in runs), sum(r.frames for r in runs), settings)


def benchmark_app(config: OpenVinoConfig, cache: Path, seconds: float) -> EngineFigures | None:
    """OpenVINO's own ``benchmark_app`` on the same IR, hint and precision (None where it is missing).

    It feeds the model's raw float input, so edged's fused u8 pre-processing is not in
    its figure; it picks its own number of requests.
    """
    import re
    import sys

    app = Path(sys.executable).with_name("benchmark_app")
    if not app.exists():
        return None
    info = load_model_info(config, cache)
    cmd = [str(app), "-m", str(info.path), "-d", config.device, "-hint", config.performance_hint,
           "-t", str(max(1, round(seconds))), "-shape", f"[{config.batch},3,{info.height},{info.width}]"]
    if config.inference_precision != "auto":
        cmd += ["-infer_precision", config.inference_precision]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    fps = re.search(r"Throughput:\s+([\d.]+) FPS", done.stdout)
    median = re.search(r"Median:\s+([\d.]+) ms", done.stdout)
    requests = re.search(r"OPTIMAL_NUMBER_OF_INFER_REQUESTS: (\d+)", done.stdout)
    count = re.search(r"Count:\s+(\d+) iterations", done.stdout)
    if done.returncode != 0 or fps is None or median is None:
        log.warning("benchmark_app failed: %s", (done.stdout + done.stderr).strip().splitlines()[-1:])
        return None
    return EngineFigures(float(fps.group(1)), float(median.group(1)), float("nan"),
                         int(count.group(1)) * config.batch if count else 0,
                         {"tool": "benchmark_app", "requests": int(requests.group(1)) if requests else None})


@dataclass
class ProcessSample:
    t: float
    rss_mb: float
    cpu_s: float
    threads: int
    fds: int


def sample_process(pid: int) -> ProcessSample:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    threads = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads:"))
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(stat[11]) + int(stat[12])) / ticks
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return ProcessSample(time.monotonic(), rss_kb / 1024, cpu, threads, fds)


@dataclass
class RunFigures:
    name: str
    cameras: int
    seconds: float
    processed_fps: float
    read_fps: float  # frames received from the cameras (each one decoded), all cameras
    per_camera_fps: dict[str, float]
    latency_ms_p50: float  # capture -> received by an MQTT subscriber
    latency_ms_p95: float
    latency_ms_p99: float
    age_ms_p50: float  # capture -> published, as the daemon reports it
    age_ms_p95: float
    infer_ms_p50: float
    frames_dropped: int
    rss_mb: float
    cpu_percent: float
    first_detection_s: float | None
    core_ms_per_frame: float = float("nan")  # process CPU per published frame (engine included, unless stand-in)
    stage_core_ms: dict[str, float] = field(default_factory=dict)  # the same, by pipeline stage
    engine: str = ""  # the daemon's own line: backend, device, precision read back from the compiled model, ...
    extra: dict[str, float] = field(default_factory=dict)  # JPEG encodes in the window, what ``during`` measured
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    samples: list[dict[str, float]] = field(default_factory=list, repr=False)

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("samples")
        out.pop("latencies_ms")
        return out


_COUNTERS = ("frames_dropped", "frames_read")


def read_metrics(proc: DaemonProcess) -> str:
    """One read of the daemon's /metrics ('' where it serves none)."""
    import urllib.request

    port = proc.http_port()
    if port is None:
        return ""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def _camera_totals(text: str) -> dict[str, int]:
    """Per-camera counters summed over cameras (-1 each where the metrics are missing)."""
    import re

    if not text:
        return dict.fromkeys(_COUNTERS, -1)
    return {counter: int(sum(float(v) for v in re.findall(rf"^edged_camera_{counter}_total\{{[^}}]*\}} (\S+)$",
                                                             text, re.M)))
            for counter in _COUNTERS}


def stage_cpu(text: str) -> dict[str, float]:
    """CPU seconds by pipeline stage, from the daemon's edged_cpu_seconds_total."""
    import re

    return {stage: float(value) for stage, value in
            re.findall(r'^edged_cpu_seconds_total\{stage="([^"]+)"\} (\S+)$', text, re.M)}


def encodes(text: str) -> dict[str, float]:
    """JPEG encodes by kind, from the daemon's edged_jpeg_encodes_total."""
    import re

    return {kind: float(value) for kind, value in
            re.findall(r'^edged_jpeg_encodes_total\{kind="([^"]+)"\} (\S+)$', text, re.M)}


During = Callable[[DaemonProcess, float], dict[str, float]]


def measure_daemon(name: str, config: dict[str, Any], broker_port: int, workdir: Path, cache: Path,
                   warmup: float, seconds: float, standin: Path | None = None,
                   during: During | None = None) -> RunFigures:
    """Run ``edged run`` as a process; a subscriber measures what a consumer receives.

    ``standin``: recorded engine outputs; the daemon runs on the stand-in engine that returns them.
    ``during``: run on another thread through the measured window (the daemon and the window's end, monotonic);
    what it returns goes into ``extra``, with the window's JPEG encodes by kind (``encodes_<kind>``)."""
    prefix = f"edged/{config['device_id']}"
    config.setdefault("http", {"listen": "127.0.0.1:0"})
    config.setdefault("log", {"level": "info"})
    sub = Subscriber(broker_port, f"{prefix}/+/detections")
    started_wall = time.time()
    entry = ("-m", "edged.bench.standin", str(standin)) if standin is not None else ("-m", "edged", "run")
    proc = DaemonProcess(config, workdir / name, cache, entry=entry).start()
    assert proc.process is not None
    pid = proc.process.pid
    first: float | None = None
    try:
        deadline = time.monotonic() + 120
        while not sub.messages and time.monotonic() < deadline:
            if proc.process.poll() is not None:
                raise RuntimeError(f"{name}: the daemon exited:\n{proc.log()[-2000:]}")
            time.sleep(0.02)
        if not sub.messages:
            raise RuntimeError(f"{name}: no detections within 120 s:\n{proc.log()[-2000:]}")
        first = sub.messages[0].received - started_wall
        time.sleep(warmup)
        mark = len(sub.messages)
        text = read_metrics(proc)
        totals_before, cpu_before, encodes_before = _camera_totals(text), stage_cpu(text), encodes(text)
        samples = [sample_process(pid)]
        power = Rapl()  # the CPU packages' energy over the window, where the kernel exposes RAPL
        power.watts()
        window_start = time.time()
        side = None
        if during is not None:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(1)
            side = pool.submit(during, proc, time.monotonic() + seconds)
        while time.time() - window_start < seconds:
            time.sleep(min(1.0, seconds / 10))
            samples.append(sample_process(pid))
        window_end = time.time()
        text = read_metrics(proc)
        totals, cpu_after = _camera_totals(text), stage_cpu(text)
        extra = {f"encodes_{kind}": count - encodes_before.get(kind, 0.0) for kind, count in encodes(text).items()}
        watts = power.watts()
        if watts:
            extra["package_watts"] = round(watts, 2)
        if side is not None:
            extra.update(side.result())
            pool.shutdown()
        change = {c: totals[c] - totals_before[c] if min(totals[c], totals_before[c]) >= 0 else -1
                  for c in _COUNTERS}
        dropped, read = change["frames_dropped"], change["frames_read"]
        msgs = [m for m in sub.messages[mark:] if m.received <= window_end]
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)
        sub.close()
    payloads = [m.json() for m in msgs]
    latency = [(m.received - p["frame_ts"]) * 1e3 for m, p in zip(msgs, payloads, strict=True)]
    ages = [p["timing_ms"]["age"] for p in payloads]
    infer = [p["timing_ms"]["infer"] for p in payloads]
    elapsed = window_end - window_start
    per_camera: dict[str, float] = {}
    for p in payloads:
        per_camera[p["camera"]] = per_camera.get(p["camera"], 0) + 1 / elapsed
    before, after = samples[0], samples[-1]
    cpu_percent = 100 * (after.cpu_s - before.cpu_s) / (after.t - before.t)
    frames = len(msgs)
    stages = {stage: round((cpu_after[stage] - cpu_before.get(stage, 0.0)) * 1e3 / frames, 4)
              for stage in cpu_after} if frames else {}
    return RunFigures(
        name=name, cameras=len(config["cameras"]), seconds=round(elapsed, 1),
        processed_fps=len(msgs) / elapsed, read_fps=read / elapsed if read >= 0 else float("nan"),
        per_camera_fps={k: round(v, 2) for k, v in sorted(per_camera.items())},
        latency_ms_p50=percentile(latency, 50), latency_ms_p95=percentile(latency, 95),
        latency_ms_p99=percentile(latency, 99), age_ms_p50=percentile(ages, 50), age_ms_p95=percentile(ages, 95),
        infer_ms_p50=statistics.median(infer) if infer else float("nan"), frames_dropped=dropped,
        rss_mb=max(s.rss_mb for s in samples),
        cpu_percent=cpu_percent, core_ms_per_frame=cpu_percent * 10 / (frames / elapsed) if frames else float("nan"),
        stage_core_ms=stages, first_detection_s=first, engine=engine_line(proc.log()), latencies_ms=latency,
        samples=[asdict(s) for s in samples], extra=extra,
    )


def engine_line(log_text: str) -> str:
    """What the daemon says it runs on ('openvino 2026.4.1 on CPU, bf16, 2 streams, ...')."""
    import re

    found = re.search(r"running \d+ camera\(s\) on (.+)$", log_text, re.M)
    return found.group(1).strip() if found else ""


def precision_of(engine: str) -> str:
    """The float precision in a daemon's engine line (f32, bf16, f16), or ''."""
    import re

    found = re.search(r", (f32|bf16|f16|f64),", engine)
    return found.group(1) if found else ""


def plain_precision(name: str) -> str:
    """OpenVINO prints element types as 'f32', 'bf16' or '<Type: 'float32'>'-like strings; edged's names."""
    lowered = name.lower()
    for plain, spellings in (("bf16", ("bf16", "bfloat16")), ("f16", ("f16", "float16")), ("f32", ("f32", "float32"))):
        if any(spelling in lowered for spelling in spellings):
            return plain
    return "f32"


def outside_engine(stages: dict[str, float]) -> float | None:
    """Core-ms per frame spent outside the engine (every stage but the engine's own threads)."""
    from edged.pipeline import NATIVE

    return round(sum(v for k, v in stages.items() if k != NATIVE), 3) if stages else None
