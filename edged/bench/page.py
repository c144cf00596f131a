"""What the people-facing parts cost: snapshots, the page's live pictures, and a burst of HTTP requests.

Four runs of the daemon on the same 4 RTSP 720p30 street cameras at 10/s (motion gating
on, as shipped), each measured like every other scenario (``measure_daemon``):

- ``off``: snapshots, the page and Home Assistant discovery off: the baseline;
- ``snapshots``: snapshots on (as shipped), nobody looking at the page;
- ``page open``: snapshots on and the page open: a client asks every camera's live
  picture each second and the state every 2 s, as the page's script does;
- ``burst``: snapshots on and 16 clients asking for live pictures, the state, the
  page and events as fast as they can.

Figures: CPU by stage per inferred frame (the picture copies on the scheduler's
thread, the best-frame and live copies in the result stage, the JPEG thread), JPEG
encodes and the encoder's CPU per encode, detections a second in each run and the
ratio burst / snapshots, requests served a second in the burst.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from edged.testing.daemon_process import DaemonProcess

CAMERAS = 4
BURST_CLIENTS = 16
PATHS = ("/api/cameras/{camera}/live.jpg", "/api/state", "/", "/api/events", "/api/history")


def _get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def page_open(proc: DaemonProcess, until: float) -> dict[str, float]:
    """What the page's script asks for: every camera's live picture each second, the state every 2 s."""
    port = proc.http_port()
    assert port is not None
    served = 0
    tick = 0
    while time.monotonic() < until:
        started = time.monotonic()
        for index in range(CAMERAS):
            served += _get(port, f"/api/cameras/cam{index}/live.jpg") in (200, 204)
        if tick % 2 == 0:
            served += _get(port, "/api/state") == 200
        tick += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return {"requests": served}


def burst(proc: DaemonProcess, until: float) -> dict[str, float]:
    """``BURST_CLIENTS`` clients, flat out, over the page's paths."""
    port = proc.http_port()
    assert port is not None
    started = time.monotonic()

    def client(index: int) -> tuple[int, int]:
        ok = refused = 0
        while time.monotonic() < until:
            path = PATHS[index % len(PATHS)].format(camera=f"cam{index % CAMERAS}")
            status = _get(port, path)
            if status in (200, 204):
                ok += 1
            else:
                refused += 1
        return ok, refused

    with ThreadPoolExecutor(BURST_CLIENTS) as pool:
        results = list(pool.map(client, range(BURST_CLIENTS)))
    elapsed = time.monotonic() - started
    return {"requests_per_s": round(sum(r[0] for r in results) / elapsed, 1),
            "refused_per_s": round(sum(r[1] for r in results) / elapsed, 1)}


def run_page(media: Path, cache: Path, engine: dict[str, Any], warmup: float, seconds: float,
             note: Callable[[str], None]) -> dict[str, Any]:
    import tempfile

    from edged.bench.harness import measure_daemon
    from edged.testing.broker import Mosquitto
    from edged.testing.media import fixed_clip
    from edged.testing.rtsp import RtspServer

    clip = fixed_clip(media, 60.0)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edged-bench-page-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker").start()
        server = RtspServer({f"cam{i}": clip for i in range(CAMERAS)}).start()
        try:
            cameras = {f"cam{i}": {"url": server.url(f"cam{i}"), "fps": 10} for i in range(CAMERAS)}
            off = {"snapshots": {"enabled": False}, "http": {"listen": "127.0.0.1:0", "page": False},
                   "homeassistant": {"enabled": False}}
            for name, extra, during in (("off", off, None), ("snapshots", {}, None), ("page open", {}, page_open),
                                        ("burst", {}, burst)):
                config = {"device_id": f"page-{name.replace(' ', '-')}",
                          "mqtt": {"host": "127.0.0.1", "port": broker.port}, "engine": engine,
                          "telemetry": {"interval_s": 10}, "cameras": cameras, **extra}
                figures = measure_daemon(name.replace(" ", "-"), config, broker.port, work, cache, warmup, seconds,
                                         during=during)
                runs[name] = _row(figures)
                note(f"page bench {name}: {figures.processed_fps:.1f} detections/s at {figures.cpu_percent:.0f} % CPU")
        finally:
            server.stop()
            broker.stop()
    snap, burst_run = runs["snapshots"], runs["burst"]
    return {"cameras": CAMERAS, "seconds": seconds, "runs": runs,
            "burst_ratio": round(burst_run["detections_per_s"] / snap["detections_per_s"], 3)
            if snap["detections_per_s"] else None}


def _row(figures: Any) -> dict[str, Any]:
    stages = figures.stage_core_ms
    extra = figures.extra
    encoded = extra.get("encodes_snapshot", 0.0) + extra.get("encodes_live", 0.0)
    frames = figures.processed_fps * figures.seconds
    jpeg_ms = stages.get("jpeg", 0.0) * frames / encoded if encoded else None
    return {
        "detections_per_s": round(figures.processed_fps, 2), "cpu_percent": round(figures.cpu_percent, 1),
        "core_ms_per_frame": round(figures.core_ms_per_frame, 3),
        "pictures_ms_per_frame": round(stages.get("pictures", 0.0), 4),
        "snapshots_ms_per_frame": round(stages.get("snapshots", 0.0), 4),
        "jpeg_ms_per_frame": round(stages.get("jpeg", 0.0), 4),
        "snapshots_per_s": round(extra.get("encodes_snapshot", 0.0) / figures.seconds, 2),
        "live_per_s": round(extra.get("encodes_live", 0.0) / figures.seconds, 2),
        "live_reused_per_s": round(extra.get("encodes_live_reused", 0.0) / figures.seconds, 2),
        "jpeg_ms_per_encode": round(jpeg_ms, 2) if jpeg_ms is not None else None,
        "age_ms_p95": round(figures.age_ms_p95, 1),
        **{k: v for k, v in extra.items() if not k.startswith("encodes_")},
    }


def markdown(section: dict[str, Any]) -> list[str]:
    runs = section["runs"]
    lines = ["", f"**Snapshots, the page, a request burst**: {section['cameras']} RTSP 720p30 street cameras at 10/s "
             f"(gated), {section['seconds']:g} s each, the same run. CPU per inferred frame by stage: `pictures` "
             "(copies of frames taken at letterbox time, here 640x360, only while wanted), `snapshots` (best-frame and "
             "live copies in the result stage), `jpeg` (the one encoding thread):", "",
             "| run | detections/s | CPU % | core-ms/frame | pictures | snapshots | jpeg | snapshots/s | live/s "
             "(reused/s) | ms per encode | age p95 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in runs.items():
        per_encode = row["jpeg_ms_per_encode"]
        lines.append(f"| {name} | {row['detections_per_s']} | {row['cpu_percent']} | {row['core_ms_per_frame']} | "
                     f"{row['pictures_ms_per_frame']} | {row['snapshots_ms_per_frame']} | {row['jpeg_ms_per_frame']} | "
                     f"{row['snapshots_per_s']} | {row['live_per_s']} ({row['live_reused_per_s']}) | "
                     f"{per_encode if per_encode is not None else '-'} | {row['age_ms_p95']} |")
    burst_run = runs.get("burst", {})
    if section.get("burst_ratio") is not None:
        lines += ["", f"During the burst ({BURST_CLIENTS} clients flat out: {burst_run.get('requests_per_s')} "
                  f"requests/s served, {burst_run.get('refused_per_s')}/s refused) detections ran at "
                  f"{section['burst_ratio']:.2f} x the rate without it; encodes stay within `snapshots.max_per_s`, "
                  "the rest of the live pictures are served again."]
    return lines
