"""What ``edged bench`` does once it has measured: judge the figures again from ``bench.json`` (``--report-only``),
and print the run's summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edged.bench.report import write
from edged.bench.verdicts import notes, targets
from edged.errors import InputError


def report_only(out: Path, readme: Path | None) -> int:
    """Judge the figures of ``out/bench.json`` again (targets, notes) and rewrite the reports from them."""
    import json

    source = out / "bench.json"
    if not source.is_file():
        raise InputError(f"{source}: no such file; run edged bench first")
    result = json.loads(source.read_text())
    result["targets"] = targets(result)
    result["notes"] = notes(result)
    for path in write(result, out, readme):
        print(f"written: {path}")
    return 0


def summary(result: dict[str, Any], out: Path, readme: Path | None) -> int:
    """Write the reports and print the figures and the targets."""
    for path in write(result, out, readme):
        print(f"written: {path}")
    print()
    bare = result["bare_engine"]
    print(f"bare engine: {bare['fps']:.1f} frames/s, latency p50 {bare['latency_ms_p50']:.1f} ms")
    if result["benchmark_app"]:
        app = result["benchmark_app"]
        print(f"benchmark_app: {app['fps']:.1f} frames/s, latency p50 {app['latency_ms_p50']:.1f} ms")
    for run in result["runs"]:
        print(f"  {run['name']:20} {run['processed_fps']:6.1f} frames/s  x{run['processed_fps'] / bare['fps']:.2f}  "
              f"latency p95 {run['latency_ms_p95']:6.1f} ms  rss {run['rss_mb']:4.0f} MB")
    for target in result["targets"]:
        print(f"  [{'met' if target['met'] else 'MISSED'}] {target['target']}: {target['figure']}")
    return 0
