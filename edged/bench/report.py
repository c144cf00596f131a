"""The bench's outputs: JSON with every figure, a Markdown table, PNG plots, README section."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _f(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _precision(engine: str) -> str:
    """The float precision in a daemon's engine line, as the compiled model reported it."""
    from edged.bench.harness import precision_of

    return precision_of(engine) or "n/a"


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    bare = result["bare_engine"]
    app = result.get("benchmark_app")
    lines = [
        f"Measured {result['when']} on {m['cpu']} ({m['cores']} cores), Python {m['python']}, "
        f"OpenVINO {bare['settings'].get('version')}; model {result['model']} "
        f"{'(' + result['precision_policy'] + ') ' if result.get('precision_policy') else ''}"
        f"({bare['settings'].get('precision')} inference, {bare['settings'].get('streams')} streams, "
        f"{bare['settings'].get('requests')} requests). `edged bench` regenerates this section.",
        "",
        _power_line(result),
        "",
        f"Bare engine (every request busy on random input): **{_f(bare['fps'])} frames/s**, "
        f"latency p50 {_f(bare['latency_ms_p50'])} ms, p95 {_f(bare['latency_ms_p95'])} ms."
        + (f" OpenVINO's `benchmark_app` on the same IR and hint ({app['settings'].get('requests')} requests, "
           f"float input without edged's fused pre-processing): {_f(app['fps'])} frames/s, latency p50 "
           f"{_f(app['latency_ms_p50'])} ms." if app else ""),
        "",
        "| scenario | cameras | precision (read back) | frames/s | x bare | per camera | dropped | "
        "latency p50 / p95 / p99 ms | age p95 ms | RSS MB | CPU % | first detection s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        per = run["per_camera_fps"]
        spread = f"{min(per.values()):.1f}-{max(per.values()):.1f}" if per else "n/a"
        lines.append(
            f"| {run['name']} | {run['cameras']} | {_precision(run.get('engine', ''))} | {_f(run['processed_fps'])} | "
            f"{_f(run['processed_fps'] / bare['fps'], 2)} | {spread} | {run['frames_dropped']} | "
            f"{_f(run['latency_ms_p50'])} / {_f(run['latency_ms_p95'])} / {_f(run['latency_ms_p99'])} | "
            f"{_f(run['age_ms_p95'])} | {_f(run['rss_mb'], 0)} | {_f(run['cpu_percent'], 0)} | "
            f"{_f(run['first_detection_s'], 2)} |"
        )
    peer = result.get("peer")
    if peer and peer.get("error"):
        lines += ["", f"The Ultralytics comparison failed: {peer['error']}"]
    elif peer:
        lines += ["", "Against the Ultralytics loop (`YOLO(...).predict(stream=True)`), YOLOv8n built from its "
                  "YAML (random weights), the same street clip, four cameras' worth of frames:", "",
                  "| | Ultralytics frames/s (precision read back) | edged frames/s (precision read back) | "
                  "edged / Ultralytics | bare engine frames/s (its ratio: the ceiling) |", "|---|---|---|---|---|"]
        for row in peer["rows"]:
            ceiling = f"{_f(row['bare_fps'])} ({_f(row['ceiling'], 2)})" if "bare_fps" in row else "n/a"
            lines.append(f"| {row['name']} | {_f(row['peer_fps'])} ({row.get('peer_precision', '?')}) | "
                         f"{_f(row['edged_fps'])} ({row.get('edged_precision', '?')}) | "
                         f"**{_f(row['ratio'], 2)}** | {ceiling} |")
    lines += _pipeline_table(result) + _cases_table(result) + _live_table(result)
    if result.get("decoding"):
        from edged.bench.decoding import markdown as decoding_markdown

        lines += decoding_markdown(result["decoding"])
    from edged.bench.analytics import markdown as analytics_markdown
    from edged.bench.layouts import markdown as layouts_markdown
    from edged.bench.page import markdown as page_markdown

    for key, section_markdown in (("analytics", analytics_markdown), ("page", page_markdown),
                                  ("layouts", layouts_markdown)):
        section = result.get(key)
        if section and section.get("error"):
            lines += ["", f"The {key} rows failed in this run: {section['error']}"]
        elif section:
            lines += section_markdown(section)
    lines += ["", "| target | figure | |", "|---|---|---|"]
    for target in result["targets"]:
        lines.append(f"| {target['target']} | {target['figure']} | {'met' if target['met'] else '**missed**'} |")
    for note in result.get("notes", []):
        lines += ["", note]
    return "\n".join(lines)


STAGES = ("decode", "letterbox", "box_decode", "appearance", "track_events", "pictures", "snapshots", "serialise",
          "publish", "scheduling", "mqtt_network", "event_loop", "spool", "jpeg", "crops", "looks", "engine_handoff",
          "other_python")


def _pipeline_table(result: dict[str, Any]) -> list[str]:
    """Core-ms per frame by stage: the stand-in runs (the pipeline alone), then the real engine's runs."""
    from edged.bench.harness import outside_engine

    runs = [r for r in result["runs"] if r.get("stage_core_ms")]
    if not runs:
        return []
    stages = [s for s in STAGES if any(r["stage_core_ms"].get(s) for r in runs)]
    lines = ["", "Where a frame's CPU goes, in core-ms per published frame, from the daemon's own per-thread CPU "
             "times (`edged_cpu_seconds_total` on /metrics). `standin-K`: the pipeline alone, K file cameras on a "
             "stand-in engine that returns the model's recorded outputs at once, so frames/s is the pipeline's "
             "ceiling; the other rows run the real engine, whose own threads are the `engine` column.", "",
             "| scenario | frames/s | core-ms per frame, total | outside the engine | "
             + " | ".join(s.replace("_", " ") for s in stages) + " | engine |",
             "|---|---|---|---|" + "---|" * (len(stages) + 1)]
    for run in runs:
        per = run["stage_core_ms"]
        outside = outside_engine(per)
        lines.append(f"| {run['name']} | {_f(run['processed_fps'])} | {_f(run.get('core_ms_per_frame'), 2)} | "
                     f"**{_f(outside, 2)}** | " + " | ".join(_f(per.get(s, 0.0), 3) for s in stages)
                     + f" | {_f(per.get('engine_and_native', 0.0), 2)} |")
    return lines


def _cases_table(result: dict[str, Any]) -> list[str]:
    cases = result.get("engine_cases") or []
    if not cases:
        return []
    sizes = ", ".join(f"{size}: {_f(fps)}" for size, fps in (result.get("engine_sizes") or {}).items())
    lines = ["", f"Engine cases: the same detector at the input size whose bare engine runs >= 200 frames/s on this "
             f"machine (fast) and <= 60 (slow); bare engine frames/s by input size: {sizes}. Four file cameras each; "
             f"the bare engine measured just before and just after the edged run.", "",
             "| case | input | bare frames/s (before / after) | edged frames/s | x bare | core-ms per frame outside "
             "the engine |", "|---|---|---|---|---|---|"]
    for case in cases:
        lines.append(f"| {case['case']} | {case['size']} | {_f(case['bare_before'])} / {_f(case['bare_after'])} | "
                     f"{_f(case['edged_fps'])} | **{_f(case['ratio'], 2)}** | "
                     f"{_f(case.get('core_ms_outside_engine'), 2)} |")
    return lines


def _live_table(result: dict[str, Any]) -> list[str]:
    from edged.bench.harness import plain_precision

    live = (result.get("peer") or {}).get("live") or []
    if not live:
        return []
    lines = ["", "Live streams, unthrottled: Ultralytics' `predict(source=<streams file>, stream=True)` against edged, "
             "the same 720p30 RTSP streams, the same Ultralytics-exported YOLOv8n OpenVINO model at the same "
             "precision. Frame age: from the frame's capture to the result (Ultralytics: in its loop; edged: at an "
             "MQTT subscriber).", "",
             "| cameras | | per camera frames/s | frame age p50 / p95 ms | CPU % |", "|---|---|---|---|---|"]
    for row in live:
        for who, label in (("peer", "Ultralytics"), ("edged", "edged")):
            side = row[who]
            rates = side["per_camera_fps"] or [0.0]
            precision = plain_precision(side.get("precision") or row["precision"])
            lines.append(f"| {row['cameras']} | {label} ({precision}) | "
                         f"{min(rates):.1f}-{max(rates):.1f} | {_f(side['age_ms_p50'])} / {_f(side['age_ms_p95'])} | "
                         f"{_f(side['cpu_percent'], 0)} |")
    return lines


def plots(result: dict[str, Any], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'edged[bench]'); no plots")
        return []
    def finish(fig: Any, ax: Any, xlabel: str, ylabel: str, title: str, path: Path) -> Path:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    made = []
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for kind, style in (("files", "o-"), ("rtsp", "s-")):
        runs = [r for r in result["runs"] if r["name"] == f"{kind}-{r['cameras']}"]  # not rtsp-1-unthrottled
        if runs:
            ax.plot([r["cameras"] for r in runs], [r["processed_fps"] for r in runs], style,
                    label={"files": "files, unthrottled", "rtsp": "RTSP 720p30, 10 detections/s each"}[kind])
        if kind == "rtsp" and runs:
            cameras = [r["cameras"] for r in runs]
            ax.plot(cameras, [10 * k for k in cameras], ":", color="C1", label="RTSP: asked for (10/s each)")
    ax.axhline(result["bare_engine"]["fps"], color="grey", linestyle="--", label="bare engine")
    made.append(finish(fig, ax, "cameras", "processed frames/s",
                       f"edged on {result['machine']['cores']} cores, {result['model']}", out / "fps_vs_cameras.png"))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run in result["runs"]:
        values = sorted(run.get("latencies_ms") or [])
        if values and run["name"].startswith("rtsp-"):
            ax.plot(values, [i / len(values) for i in range(1, len(values) + 1)], label=run["name"])
    made.append(finish(fig, ax, "capture -> subscriber latency, ms", "share of detections",
                       "Latency distribution (RTSP cameras)", out / "latency_cdf.png"))
    return made


def check_readme(readme: Path) -> str | None:
    """Why ``readme`` cannot take the figures, or None."""
    if not readme.is_file():
        return f"{readme}: no such file"
    text = readme.read_text()
    if START not in text or END not in text or text.index(START) > text.index(END):
        return f"{readme}: no performance section to rewrite; add the lines {START} and {END} where it goes"
    return None


def write(result: dict[str, Any], out: Path, readme: Path | None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2, default=str))
    table = markdown(result)
    (out / "bench.md").write_text(table + "\n")
    written = [out / "bench.json", out / "bench.md", *plots(result, out)]
    if readme is not None and readme.is_file():
        text = readme.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            readme.write_text(f"{head}{START}\n{table}\n{END}{tail}")
            written.append(readme)
    return written


def _power_line(result: dict[str, Any]) -> str:
    """Frames per watt beside frames per second where the machine reports power (RAPL: the CPU packages), per run;
    else the line that says there is none."""
    rows = [(run["name"], run["processed_fps"] / run["extra"]["package_watts"]) for run in result.get("runs", [])
            if run.get("extra", {}).get("package_watts")]
    if not rows:
        return "Power: no power reading on this device (no RAPL under /sys/class/powercap), so no frames per watt."
    return "Frames per watt (CPU packages, RAPL, over each measured window): " + ", ".join(
        f"{name} {value:.2f}" for name, value in rows) + "."
