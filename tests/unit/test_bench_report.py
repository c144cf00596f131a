"""The bench's judgement of its own figures and the files it writes (no timing here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edged.bench.report import END, START, markdown, write
from edged.bench.verdicts import cpu_budget, notes, targets


def run(name: str, fps: float, cameras: int = 1, p95: float = 100.0, age95: float = 90.0, rss: float = 300.0,
        per: dict[str, float] | None = None, first: float | None = 1.5) -> dict[str, Any]:
    return {"name": name, "cameras": cameras, "seconds": 20.0, "processed_fps": fps,
            "per_camera_fps": per if per is not None else {f"c{i}": fps / cameras for i in range(cameras)},
            "latency_ms_p50": p95 / 2, "latency_ms_p95": p95, "latency_ms_p99": p95 * 1.2,
            "age_ms_p50": age95 / 2, "age_ms_p95": age95, "infer_ms_p50": 30.0, "frames_dropped": 3,
            "rss_mb": rss, "cpu_percent": 180.0, "first_detection_s": first, "latencies_ms": [p95 / 2, p95],
            "read_fps": 30.0 * cameras}


def result(runs: list[dict[str, Any]], peer: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"when": "2026-11-22 10:00", "machine": {"cpu": "Test CPU", "cores": 2, "python": "3.11"},
           "model": "YOLOv3-tiny 416 INT8",
           "bare_engine": {"fps": 50.0, "latency_ms_p50": 40.0, "latency_ms_p95": 45.0, "frames": 1000,
                           "settings": {"version": "2026.4", "precision": "f32", "streams": 2, "requests": 2}},
           "runs": runs, "peer": peer}
    out["targets"] = targets(out)
    return out


def verdicts(res: dict[str, Any]) -> dict[str, bool]:
    return {t["target"].split(":")[0]: t["met"] for t in res["targets"]}


def test_targets_met_and_missed_by_the_figures() -> None:
    eight = run("rtsp-8", 80.0, 8, age95=30.0, rss=290.0, per={f"c{i}": 9.9 for i in range(8)})
    eight["frames_dropped"] = 0
    files = run("files-4", 46.0, 4)
    files["stage_core_ms"] = {"engine_and_native": 15.0, "decode": 0.6, "track_events": 0.3}
    good = result([files, run("rtsp-1-unthrottled", 30.0, p95=79.0), eight])
    assert all(verdicts(good).values()), good["targets"]
    bad_files = run("files-4", 44.0, 4)
    bad_files["stage_core_ms"] = {"engine_and_native": 15.0, "decode": 1.2, "track_events": 0.4}
    bad = result([bad_files, run("rtsp-1-unthrottled", 30.0, p95=81.0),
                  run("rtsp-8", 70.0, 8, age95=36.0, rss=310.0, per={**{f"c{i}": 9.9 for i in range(7)}, "c7": 9.7},
                      first=3.2)])
    assert not any(verdicts(bad).values()), bad["targets"]
    assert len(bad["targets"]) == len(good["targets"]) == 8


def test_peer_ratios_are_judged_against_their_own_goals() -> None:
    peer = {"imgsz": 640, "rows": [
        {"name": "same model", "peer_fps": 10.0, "edged_fps": 16.0, "ratio": 1.6, "goal": 1.5},
        {"name": "default", "peer_fps": 4.0, "edged_fps": 19.0, "ratio": 4.75, "goal": 5.0}]}
    res = result([], peer)
    assert [t["met"] for t in res["targets"]] == [True, False]


def test_markdown_table_has_a_row_per_run_and_the_ratio_to_the_bare_engine() -> None:
    text = markdown(result([run("files-1", 25.0), run("rtsp-2", 20.0, 2, per={"a": 9.0, "b": 11.0})]))
    rows = [line for line in text.splitlines() if line.startswith(("| files-1", "| rtsp-2"))]
    assert len(rows) == 2
    assert "| 0.50 |" in rows[0]  # 25 / 50
    assert "9.0-11.0" in rows[1]
    assert "Test CPU (2 cores)" in text


def test_readme_section_is_replaced_between_the_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# edged\n\nintro\n\n{START}\nold figures\n{END}\n\n## after\n")
    written = write(result([run("files-1", 25.0)]), tmp_path / "out", readme)
    text = readme.read_text()
    assert readme in written
    assert "old figures" not in text
    assert text.startswith("# edged\n\nintro\n\n" + START) and text.endswith(END + "\n\n## after\n")
    assert "| files-1 |" in text
    saved = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert saved["runs"][0]["name"] == "files-1"


def test_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# edged\n")
    written = write(result([run("files-1", 25.0)]), tmp_path / "out", readme)
    assert readme not in written
    assert readme.read_text() == "# edged\n"


def test_bench_refuses_a_readme_it_cannot_write_before_measuring(tmp_path: Path, capsys: Any) -> None:
    from edged.cli import main

    readme = tmp_path / "README.md"
    readme.write_text(f"# edged\n{END}\n{START}\n")  # markers out of order
    assert main(["bench", "--readme", str(readme), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--readme" in err and str(readme) in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert main(["bench", "--cameras", "0", "--out", str(tmp_path / "out")]) == 2
    assert "--cameras" in capsys.readouterr().err


def test_the_cpu_budget_is_fitted_from_the_rtsp_runs_and_explains_a_miss() -> None:
    decode, infer = 0.25, 3.5  # per cent of a core per frame; the runs below follow exactly that
    runs = []
    for name, cameras, fps in (("rtsp-1", 1, 10.0), ("rtsp-4", 4, 40.0), ("rtsp-1-unthrottled", 1, 30.0),
                               ("rtsp-8", 8, 40.0)):
        row = run(name, fps, cameras, per={f"c{i}": fps / cameras for i in range(cameras)})
        row["cpu_percent"] = decode * row["read_fps"] + infer * fps
        runs.append(row)
    runs.append(run("files-4", 55.0, 4))  # another clip: not part of the fit
    res = result(runs)
    budget = cpu_budget(res)
    assert budget is not None
    assert abs(budget["decode_pct_per_fps"] - decode) < 1e-6 and abs(budget["infer_pct_per_fps"] - infer) < 1e-6
    res["cpu_budget"] = budget
    why = [note for note in notes(res) if note.startswith("Eight")]  # (the unthrottled row has its own note)
    assert len(why) == 1 and f"would need {240 * decode + 80 * infer:.0f} % CPU" in why[0]
    assert "CPU is the limit" in why[0] and "of the 200 %" in why[0]


def test_eight_cameras_short_of_their_rate_with_cpu_to_spare_is_not_blamed_on_the_machine() -> None:
    slow = run("rtsp-8", 75.0, 8, per={**{f"c{i}": 9.9 for i in range(7)}, "c7": 8.0})
    slow["cpu_percent"] = 140.0
    res = result([slow])
    res["bare_engine"]["fps"] = 240.0
    (target,) = [t for t in res["targets"] if t["target"].startswith("8 RTSP 720p30 cameras: each")]
    assert not target["met"] and "slowest camera 8.0/s at 140 % CPU" in target["figure"]
    (why,) = notes(res)
    assert "neither CPU nor the engine explains" in why and "tops out" not in why
    res["bare_engine"]["fps"] = 60.0
    assert "tops out at 60.0 frames/s, under the 80" in notes(res)[0]


def test_eight_cameras_are_judged_on_drops_as_well_as_rates() -> None:
    steady = run("rtsp-8", 80.0, 8, per={f"c{i}": 9.9 for i in range(8)})
    steady["frames_dropped"] = 0
    (target,) = [t for t in result([steady])["targets"] if "no frame due is dropped" in t["target"]]
    assert target["met"] and notes(result([steady])) == []
    steady["frames_dropped"] = 12
    res = result([steady])
    (target,) = [t for t in res["targets"] if "no frame due is dropped" in t["target"]]
    assert not target["met"] and target["figure"].startswith("12 dropped")
    assert len(notes(res)) == 1  # a drop is explained even when every camera kept its rate


def test_drops_with_every_camera_at_its_rate_are_explained_as_frames_replaced() -> None:
    steady = run("rtsp-8", 80.0, 8, age95=28.6, per={f"c{i}": 10.0 for i in range(8)})
    steady["cpu_percent"], steady["frames_dropped"] = 136.0, 9
    res = result([steady])
    res["bare_engine"]["fps"] = 267.0
    (why,) = notes(res)
    assert "no due look was missed" in why and "the 9 dropped" in why and "frame age p95 28.6 ms" in why
    assert "neither CPU nor the engine" not in why


def test_resident_memory_over_its_goal_is_fitted_per_camera() -> None:
    rows = [run(f"rtsp-{k}", 10.0 * k, k, rss=200.0 + 15.0 * k) for k in (1, 2, 4, 8)]
    for row in rows:
        row["frames_dropped"] = 0
    res = result(rows)
    (target,) = [t for t in res["targets"] if "resident memory" in t["target"]]
    assert not target["met"]
    (why,) = notes(res)
    assert "200 MB whatever the cameras" in why and "plus 15.0 MB a 720p camera" in why
    assert "would need 12.5 MB a camera" in why
    rows[-1]["rss_mb"] = 295.0
    assert notes(result(rows)) == []  # met: nothing to explain


def test_a_slow_unthrottled_camera_is_explained_from_its_inference_and_age() -> None:
    one = run("rtsp-1-unthrottled", 30.0, p95=95.0, age95=80.0)
    one["stage_core_ms"] = {"decode": 2.5}
    (why,) = notes(result([one]))
    assert "p95 95.0 ms against 2 x 40.0" in why and "took 30.0 ms at the median" in why
    assert "2.50 core-ms a frame" in why and "80.0 ms at p95" in why
    assert notes(result([run("rtsp-1-unthrottled", 30.0, p95=79.0)])) == []


def test_the_pipeline_cost_and_the_engine_cases_are_judged_against_their_goals() -> None:
    standin = run("standin-4", 1700.0, 4)
    standin["core_ms_per_frame"] = 0.94
    files = run("files-4", 210.0, 4)
    files["stage_core_ms"] = {"engine_and_native": 9.0, "decode": 0.6}  # E / (E + 1.0) = 0.9
    res = {**result([standin, files]), "engine_cases": [
        {"case": "fast", "size": 416, "model": "m", "run": "files-4", "bare_before": 220.0, "bare_after": 230.0,
         "bare_fps": 225.0, "edged_fps": 210.0, "ratio": 210 / 225, "core_ms_outside_engine": 1.1},
        {"case": "slow", "size": 832, "model": "m", "run": "slow-files-4", "bare_before": 55.0, "bare_after": 57.0,
         "bare_fps": 56.0, "edged_fps": 53.0, "ratio": 53 / 56, "core_ms_outside_engine": 1.3}]}
    found = {t["target"].split(":")[0]: t for t in targets(res)}
    assert found["pipeline cost, 4 file cameras on the stand-in engine, everything on"]["met"]
    assert found["4 file cameras on the fast engine (input 416)"]["met"]  # 0.933 >= 0.90
    assert ">= 0.90 x bare (E / (E + 1.0))" in found["4 file cameras on the fast engine (input 416)"]["target"]
    assert not found["4 file cameras on the slow engine (input 832)"]["met"]  # 0.946 < 0.97
    assert "bare 55.0 before, 57.0 after" in found["4 file cameras on the slow engine (input 832)"]["figure"]
    assert not any(t["target"].startswith("4 file cameras, unthrottled") for t in targets(res))
    standin["core_ms_per_frame"] = 1.2
    assert not {t["target"].split(":")[0]: t for t in targets(res)}[
        "pipeline cost, 4 file cameras on the stand-in engine, everything on"]["met"]
    table = markdown({**res, "targets": targets(res)})
    assert "| fast | 416 | 220.0 / 230.0 | 210.0 | **0.93** | 1.10 |" in table


def test_a_peer_goal_beyond_the_bare_engine_is_explained() -> None:
    peer = {"rows": [{"name": "default", "peer_fps": 16.0, "edged_fps": 60.0, "ratio": 3.75, "goal": 5.0,
                      "bare_fps": 62.0, "ceiling": 62.0 / 16.0},
                     {"name": "reachable", "peer_fps": 10.0, "edged_fps": 14.0, "ratio": 1.4, "goal": 1.5,
                      "bare_fps": 20.0, "ceiling": 2.0}]}
    why = notes(result([run("files-4", 46.0, 4)], peer))
    assert len(why) == 1 and why[0].startswith("default: the bare engine") and "3.88 x" in why[0]
    assert "| 62.0 (3.88) |" in markdown(result([run("files-4", 46.0, 4)], peer))


def counting(counted_in: int = 17, doubled: int = 0, per_visit: float = 1.2) -> dict[str, Any]:
    row = {"in": counted_in, "out": 14, "hand_in": 17, "hand_out": 14, "total_error": 0.0, "matched": 31,
           "missed": 0, "double_counted": doubled, "false": 0, "returns": 7, "returns_kept": 3, "person_tracks": 90,
           "track_life_s_median": 2.0, "core_ms_per_frame": 0.3, "tracks_per_visit": per_visit,
           "take_ups": {"same": 72, "other": 23, "unclear": 25, "not_judged": 4}}
    return {"frames": 795, "seconds": 79.4, "hand_crossings": 31, "people_per_frame": 5.1, "how": "by eye",
            "colour_us_per_object": 12.0, "objects_per_frame": 9.0, "rows": {"before": row, "after": row},
            "identity_pairs": 160, "visits": 19, "colour_cue": {"same": 91, "other": 35, "auc": 0.908}}


def analytics(moving: float = 9.8, still: float = 0.4, ratio: float = 1.0, right: bool = True,
              counted: dict[str, Any] | None = None) -> dict[str, Any]:
    capacity = {name: {"moving_min_fps": moving if name == "gating-on" else 10.0, "still_max_fps": still,
                       "still_mean_fps": still, "inferred_fps": 30.0, "engine_load": 0.2, "cpu_percent": 90.0,
                       "read_fps": 240.0, "per_camera_fps": {}} for name in ("gating-off", "gating-on")}
    missed = {"street": {"objects_ungated": 50, "objects_gated": 50, "found": round(50 * ratio), "ratio": ratio,
                         "delay_s_median": 0.0, "delay_s_max": 0.1, "frame_interval_s": 0.1, "inferred_ungated": 600,
                         "inferred_gated": 400, "frames": 600}}
    tamper = {"clips": {kind: {"expected": f"camera_{kind}", "raised": [f"camera_{kind}"], "fired_after_s": 3.0,
                               "resolved_after_s": 3.5, "reason": "r", "right": right}
                        for kind in ("covered", "blurred", "moved")},
              "normal": {"fixed": {"seconds": 600, "alerts": [], "cpu_s": 30.0}}}
    return {"capacity": capacity, "missed": missed, "tamper": tamper, "counting": counted or counting(),
            "regions": {"frames": 50, "people_per_frame": {"whole": 0.02, "regions": 0.3}, "gain": 15.0,
                        "frames_with_people": {"whole": 1, "regions": 12}, "regions_looked": {},
                        "cpu_ms_per_frame": {"whole": 16.0, "regions": 17.0}}}


def test_the_analytics_figures_are_judged_and_reported_again_from_the_json(tmp_path: Path) -> None:
    from edged.bench.summary import report_only

    good = {**result([]), "analytics": analytics()}
    (tmp_path / "bench.json").write_text(json.dumps(good))
    assert report_only(tmp_path, None) == 0
    written = json.loads((tmp_path / "bench.json").read_text())
    judged = {t["target"].split(":")[0]: t["met"] for t in written["targets"]}
    assert judged and all(judged.values()), written["targets"]
    assert "**Motion gating, 8 RTSP 720p30 cameras" in (tmp_path / "bench.md").read_text()
    assert "**Counting against a hand count**" in (tmp_path / "bench.md").read_text()
    assert "| 3 of 7 |" in (tmp_path / "bench.md").read_text()  # the same track on a return
    # tracks per visit (judged: at most 1.2), take-ups judged by the identity pairs
    assert "| 90 | **1.2** | 2.0 | 72 / 23 / 25 / 4 | 0.3 |" in (tmp_path / "bench.md").read_text()
    assert "under the ROC curve of **0.908**" in (tmp_path / "bench.md").read_text()
    bad = {**result([]), "analytics": analytics(moving=9.2, still=1.4, ratio=0.9, right=False,
                                                counted=counting(counted_in=19, doubled=1, per_visit=1.3))}
    (tmp_path / "bench.json").write_text(json.dumps(bad))
    report_only(tmp_path, None)
    missed = [t for t in json.loads((tmp_path / "bench.json").read_text())["targets"] if not t["met"]]
    # moving rate, still rate, objects found, tamper clips, the line's in total (19 against 17), a double count,
    # 1.3 tracks per visit
    assert len(missed) == 7, missed


def test_frames_per_watt_where_the_machine_reports_power_and_a_line_where_it_does_not() -> None:
    from edged.bench.report import _power_line

    runs = [{"name": "files-4", "processed_fps": 60.0, "extra": {"package_watts": 30.0}},
            {"name": "rtsp-1", "processed_fps": 10.0, "extra": {}}]
    assert _power_line({"runs": runs}) == \
        "Frames per watt (CPU packages, RAPL, over each measured window): files-4 2.00."
    assert _power_line({"runs": runs[1:]}).startswith("Power: no power reading on this device")


def test_a_pipeline_over_its_budget_is_explained_stage_by_stage() -> None:
    standin = run("standin-4", 900.0, 4)
    standin["core_ms_per_frame"] = 1.07
    standin["stage_core_ms"] = {"decode": 0.6, "track_events": 0.3, "letterbox": 0.17, "engine_and_native": 0.0}
    res = result([standin])
    res["decoding"] = {"rows": [{"clip": "street", "decode_ms": 0.4, "convert_ms": 0.08}]}
    (why,) = notes(res)
    assert why.startswith("standin-4: 1.07 core-ms a frame outside the engine against a goal of 1")
    assert "decode 0.60, track events 0.30, letterbox 0.17" in why and "0.40 + 0.08 core-ms" in why
    standin["stage_core_ms"] = {"decode": 0.5, "track_events": 0.3}
    assert notes(result([standin])) == []


def test_a_section_that_failed_is_reported_and_the_rest_kept() -> None:
    res = {**result([run("files-1", 25.0)]), "layouts": {"error": "model 'bench-x' has no INT8 variant yet"},
           "analytics": {"error": "no footage"}}
    res["targets"] = targets(res)
    text = markdown(res)
    assert "The layouts rows failed in this run: model 'bench-x' has no INT8 variant yet" in text
    assert "The analytics rows failed in this run: no footage" in text and "| files-1 |" in text
