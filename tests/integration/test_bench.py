"""``edged bench`` end to end on real parts: the engine, mosquitto, the RTSP server, the daemon.

Short windows and FP32 (no calibration) keep it quick; the figures are not judged
here, only that every scenario was measured and reported consistently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from edged.bench.report import END, START


def test_bench_measures_every_scenario_and_writes_its_reports(tmp_path: Path, cache_dir: Path,
                                                             built_model: Any, media: dict[str, Path]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# edged\n\n## Performance\n\n{START}\nold\n{END}\n\n## Next\n")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "edged.cli", "bench", "--cache-dir", str(cache_dir), "--cameras", "1",
         "--seconds", "3", "--warmup", "1", "--precision", "fp32", "--no-peer", "--no-engine-cases", "--no-analytics",
         "--no-layouts",
         "--out", str(out),
         "--readme", str(readme)],
        capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "bench.json").read_text())
    assert result["bare_engine"]["fps"] > 0 and result["bare_engine"]["frames"] > 0
    runs = {r["name"]: r for r in result["runs"]}
    assert set(runs) == {"standin-1", "files-1", "rtsp-1", "rtsp-1-unthrottled"}
    for name, r in runs.items():
        assert r["processed_fps"] > 0, name
        assert list(r["per_camera_fps"]) == (["cam0"] if name.startswith("rtsp") else ["file0"]), name
        assert 0 < r["latency_ms_p50"] <= r["latency_ms_p95"] <= r["latency_ms_p99"], name
        assert r["frames_dropped"] >= 0, f"{name}: /metrics not read"
        assert 50 < r["rss_mb"] < 4000 and r["cpu_percent"] > 0, name
        assert r["first_detection_s"] is not None and r["first_detection_s"] > 0, name
        assert len(r["latencies_ms"]) >= 1, name
    decoding = {row["clip"]: row for row in result["decoding"]["rows"]}
    assert set(decoding) == {"street", "street-720p30"}
    for row in decoding.values():
        assert row["decode_ms"] > 0 and row["decode_skip_ms"] > 0 and row["convert_ms"] > 0, row
        assert row["frames_detected"] >= 20 and 0 <= row["map50"] <= 1, row
    assert "**Decoding**" in (out / "bench.md").read_text()
    assert {t["target"].split(":")[0] for t in result["targets"]} >= {
        "one 720p30 RTSP camera", "start to first published detection <= 3 s (warm model cache)"}
    # The stand-in engine measures the pipeline alone: no engine threads' time, and every stage accounted for.
    standin, real = runs["standin-1"]["stage_core_ms"], runs["files-1"]["stage_core_ms"]
    assert standin["decode"] > 0 and standin["letterbox"] > 0 and standin["box_decode"] > 0, standin
    assert standin["engine_and_native"] < 0.2 * real["engine_and_native"], (standin, real)
    assert abs(sum(standin.values()) - runs["standin-1"]["core_ms_per_frame"]) < 0.25 * sum(standin.values())
    assert "stand-in" in runs["standin-1"]["engine"] and "openvino" in runs["files-1"]["engine"]
    for png in ("fps_vs_cameras.png", "latency_cdf.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    table = (out / "bench.md").read_text()
    text = readme.read_text()
    assert table.strip() in text and "old" not in text and text.endswith(f"{END}\n\n## Next\n")
    assert "x1." in done.stdout or "x0." in done.stdout  # ratios to the bare engine, printed
