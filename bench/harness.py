"""Pieces the benchmarks share: the bare engine loop, a daemon run measured by a
subscriber, process sampling, percentiles. Benchmarks print figures; they never
pass or fail on time.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edged.config.models import OpenVinoConfig
from edged.engines.registry import create_engine
from edged.models.info import load_model_info
from tests.support.daemon import DaemonProcess
from tests.support.subscriber import Subscriber


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class EngineFigures:
    fps: float
    latency_ms_p50: float
    latency_ms_p95: float
    frames: int
    settings: dict[str, Any]


def bare_engine(config: OpenVinoConfig, cache: Path, seconds: float) -> EngineFigures:
    """The engine alone: every slot kept busy with random input, as benchmark_app does."""
    info = load_model_info(config, cache)
    engine = create_engine(config, info, cache)
    engine.start()
    rng = np.random.default_rng(0)
    for slot in range(engine.num_slots):
        engine.input_buffer(slot)[:] = rng.integers(0, 255, engine.input_spec.shape, dtype=np.uint8)
    latencies: list[float] = []
    lock = threading.Condition()
    count = [0]
    stop_at = time.monotonic() + seconds

    def launch(slot: int) -> None:
        started = time.perf_counter()

        def done(_: Any) -> None:
            with lock:
                latencies.append((time.perf_counter() - started) * 1e3)
                count[0] += 1
                lock.notify_all()
            if time.monotonic() < stop_at:
                launch(slot)

        engine.submit(slot, done)

    began = time.monotonic()
    for slot in range(engine.num_slots):
        launch(slot)
    with lock:
        lock.wait_for(lambda: time.monotonic() >= stop_at, timeout=seconds + 30)
    time.sleep(0.5)  # let the last requests land
    elapsed = time.monotonic() - began
    settings = engine.describe()
    engine.close()
    frames = count[0] * engine.input_spec.batch
    return EngineFigures(frames / elapsed, percentile(latencies, 50), percentile(latencies, 95), frames, settings)


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
    per_camera_fps: dict[str, float]
    latency_ms_p50: float  # capture -> received by an MQTT subscriber
    latency_ms_p95: float
    latency_ms_p99: float
    age_ms_p50: float  # capture -> published, as the daemon reports it
    age_ms_p95: float
    infer_ms_p50: float
    rss_mb: float
    cpu_percent: float
    first_detection_s: float | None
    samples: list[dict[str, float]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("samples")
        return out


def measure_daemon(name: str, config: dict[str, Any], broker_port: int, workdir: Path, cache: Path,
                   warmup: float, seconds: float) -> RunFigures:
    """Run ``edged run`` as a process; a subscriber measures what a consumer receives."""
    prefix = f"edged/{config['device_id']}"
    sub = Subscriber(broker_port, f"{prefix}/+/detections")
    started = time.monotonic()
    started_wall = time.time()
    proc = DaemonProcess(config, workdir / name, cache).start()
    assert proc.process is not None
    pid = proc.process.pid
    first: float | None = None
    try:
        deadline = started + 120
        while not sub.messages and time.monotonic() < deadline:
            if proc.process.poll() is not None:
                raise RuntimeError(f"{name}: the daemon exited:\n{proc.log()[-2000:]}")
            time.sleep(0.02)
        if not sub.messages:
            raise RuntimeError(f"{name}: no detections within 120 s:\n{proc.log()[-2000:]}")
        first = sub.messages[0].received - started_wall
        time.sleep(warmup)
        mark = len(sub.messages)
        before = sample_process(pid)
        samples = [before]
        window_start = time.time()
        while time.time() - window_start < seconds:
            time.sleep(min(1.0, seconds / 10))
            samples.append(sample_process(pid))
        window_end = time.time()
        after = samples[-1]
        msgs = [m for m in sub.messages[mark:] if m.received <= window_end]
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)
        sub.close()
    payloads = [m.json() for m in msgs]
    latency = [(m.received - p["frame_ts"]) * 1e3 for m, p in zip(msgs, payloads)]
    ages = [p["timing_ms"]["age"] for p in payloads]
    infer = [p["timing_ms"]["infer"] for p in payloads]
    elapsed = window_end - window_start
    per_camera: dict[str, float] = {}
    for p in payloads:
        per_camera[p["camera"]] = per_camera.get(p["camera"], 0) + 1 / elapsed
    return RunFigures(
        name=name, cameras=len(config["cameras"]), seconds=round(elapsed, 1),
        processed_fps=len(msgs) / elapsed,
        per_camera_fps={k: round(v, 2) for k, v in sorted(per_camera.items())},
        latency_ms_p50=percentile(latency, 50), latency_ms_p95=percentile(latency, 95),
        latency_ms_p99=percentile(latency, 99),
        age_ms_p50=percentile(ages, 50), age_ms_p95=percentile(ages, 95),
        infer_ms_p50=statistics.median(infer) if infer else float("nan"),
        rss_mb=max(s.rss_mb for s in samples),
        cpu_percent=100 * (after.cpu_s - before.cpu_s) / (after.t - before.t),
        first_detection_s=first,
        samples=[asdict(s) for s in samples],
    )
