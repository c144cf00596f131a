"""The analytics figures of ``edged bench``: gating misses nothing, regions find small objects, the tracker
holds identities, tamper alerts are right. Each compares two settings on the same frames (``replay``).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from edged.models.agreement import box_iou
from edged.models.yolo import Detections
from edged.pipeline.gate import CameraGate
from edged.pipeline.results import CONFIRM_S
from edged.pipeline.tracker import Tracker, TrackUpdate
from edged.testing.media import (
    COMPOSITE_CLIP,
    composite_4k,
    fixed_clip,
    long_clip,
    still_clip,
    stills_and_traffic_clip,
    stop_and_go_clip,
    tamper_clip,
    walk_in_clip,
)
from edged.tools.bench.greedy_tracker import Tracker as GreedyTracker
from edged.tools.bench.replay import Detector, camera, frames, tamper_run

MIN_SCORE = 0.4
ANNOTATION = Path(__file__).resolve().parents[3] / "bench" / "annotations" / "bikes-tracks.json"


def _high(dets: Detections) -> Detections:
    keep = dets.scores >= MIN_SCORE
    return Detections(dets.boxes[keep], dets.scores[keep], dets.classes[keep], dets.finite)


def _new_tracker() -> Callable[[Detections, float], TrackUpdate]:
    tracker = Tracker()
    return lambda dets, ts: tracker.update(dets, ts, MIN_SCORE)


def _old_tracker() -> Callable[[Detections, float], TrackUpdate]:
    tracker = GreedyTracker()
    return lambda dets, ts: tracker.update(_high(dets), ts)


# -- tamper ---------------------------------------------------------------------------------------------------


def tamper_case(media: Path, normal_s: float = 600.0) -> dict[str, Any]:
    """Each tamper clip (normal, then tampered from 20 s to 35 s, then normal) and ``normal_s`` of normal footage."""
    out: dict[str, Any] = {"clips": {}, "normal": {}}
    for kind, expected in (("covered", "covered"), ("blurred", "defocused"), ("moved", "moved")):
        found = tamper_run(tamper_clip(media, kind, 20.0, 35.0, 60.0))
        fired = [(t, x) for t, x in found if x.firing]
        resolved = [(t, x) for t, x in found if not x.firing]
        out["clips"][kind] = {
            "expected": f"camera_{expected}", "raised": [f"camera_{x.kind}" for _, x in fired],
            "fired_after_s": round(fired[0][0] - 20.0, 1) if fired else None,
            "resolved_after_s": round(resolved[0][0] - 35.0, 1) if resolved else None,
            "reason": fired[0][1].reason if fired else "",
            "right": [x.kind for _, x in fired] == [expected] and len(resolved) == 1,
        }
    for name, clip in (("fixed street camera", fixed_clip(media, normal_s)),
                       ("still scene (zidane.jpg, sensor noise)", still_clip(media, "zidane.jpg", 120.0)),
                       ("traffic stopping and going", stop_and_go_clip(media)),
                       ("a walker passing a parked bicycle", walk_in_clip(media))):
        started = time.process_time()
        found = tamper_run(clip)
        seconds = _duration(clip)
        out["normal"][name] = {"seconds": round(seconds), "alerts": [f"camera_{x.kind}" for _, x in found if x.firing],
                               "cpu_s": round(time.process_time() - started, 1)}
    return out


def _duration(clip: Path) -> float:
    import av

    with av.open(str(clip)) as container:
        return float(container.duration or 0) / 1e6


# -- the gate's cost on the camera thread ----------------------------------------------------------------------


def gate_cost_case(media: Path, frames_n: int = 300) -> dict[str, Any]:
    """CPU per 720p frame of the camera's gate (grey copy from the luma plane, motion, tamper twice a second),
    against the colour conversion a gated frame saves; decoded by PyAV as the daemon does."""
    import av

    from edged.pipeline.motion import grey_shape
    from edged.sources.pyav import luma_into

    gate = CameraGate("cost", camera(), lambda _c, _t: None)
    grey = np.empty(grey_shape(1280, 720, 320), np.uint8)
    bgr = np.empty((720, 1280, 3), np.uint8)
    spent = {"grey": 0.0, "gate": 0.0, "colour": 0.0}
    n = 0
    clock = time.thread_time
    with av.open(str(long_clip(media / "street-720p30.mp4"))) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        for n, frame in enumerate(container.decode(stream), start=1):
            started = clock()
            luma_into(frame, grey)
            grey_done = clock()
            gate.decide(grey, n / 30.0)
            gate.after(grey, n / 30.0)
            gate_done = clock()
            converted: Any = frame.reformat(format="bgr24").planes[0]
            rows = np.frombuffer(converted, np.uint8).reshape(720, converted.line_size)
            np.copyto(bgr, rows[:, : 1280 * 3].reshape(720, 1280, 3))
            spent["grey"] += grey_done - started
            spent["gate"] += gate_done - grey_done
            spent["colour"] += clock() - gate_done
            if n >= frames_n:
                break
    return {"frames": n, **{f"{step}_ms": round(1e3 * seconds / n, 3) for step, seconds in spent.items()}}


# -- gating: nothing missed -----------------------------------------------------------------------------------


@dataclass
class _Found:
    """A confirmed object: its label, when it was first detected, its published boxes by frame."""

    cls: int
    first_ts: float
    boxes: dict[int, np.ndarray] = field(default_factory=dict)


def _run(detector: Detector, clip: Path, fps: float, gated: bool, limit_s: float | None) -> tuple[
        dict[int, _Found], int, int]:
    """Confirmed objects of one replay, frames inferred, frames in all."""
    gate = CameraGate("replay", camera(), lambda _c, _t: None)
    tracker = Tracker()
    found: dict[int, _Found] = {}
    inferred = total = 0
    for frame in frames(clip, fps, limit_s=limit_s):
        total += 1
        verdict = gate.decide(frame.grey, frame.ts)
        if gated and verdict is None:
            continue
        inferred += 1
        dets = detector.detect(frame.bgr(), MIN_SCORE)
        update = tracker.update(dets, frame.ts, MIN_SCORE)
        if any(not t.confirmed for t in tracker.tracks):
            gate.look_until(frame.ts + CONFIRM_S)
        for track in update.started:
            found.setdefault(track.id, _Found(track.cls, track.first_ts))
        for index, track_id in enumerate(update.ids.tolist()):
            if track_id:
                found[track_id].boxes[frame.index] = dets.boxes[index]
    return found, inferred, total


def _same(a: _Found, b: _Found) -> bool:
    """Two runs' objects are the same object: same label, overlapping (IoU >= 0.5) in a frame both saw."""
    if a.cls != b.cls:
        return False
    for index in a.boxes.keys() & b.boxes.keys():
        if box_iou(a.boxes[index][None], b.boxes[index][None])[0, 0] >= 0.5:
            return True
    return False


def missed_case(detector: Detector, media: Path, fps: float = 10.0) -> dict[str, Any]:
    """Objects found with gating against without, on moving real footage; the extra delay of a first detection."""
    rows = {}
    for name, clip, limit in (("street montage (cuts, traffic, people)", long_clip(media / "street-720p30.mp4"), 60.0),
                              ("still scenes cut with traffic", stills_and_traffic_clip(media), None),
                              ("the same camera, traffic stopping and going", stop_and_go_clip(media), None),
                              ("a walker passing a parked bicycle (the camera drifts)", walk_in_clip(media), None)):
        every, inferred_all, total = _run(detector, clip, fps, False, limit)
        gated, inferred_gated, _ = _run(detector, clip, fps, True, limit)
        delays = []
        matched = 0
        for obj in every.values():
            twin = next((g for g in gated.values() if _same(obj, g)), None)
            if twin is not None:
                matched += 1
                delays.append(twin.first_ts - obj.first_ts)
        rows[name] = {
            "objects_ungated": len(every), "objects_gated": len(gated), "found": matched,
            "ratio": round(matched / len(every), 3) if every else None,
            "delay_s_median": round(statistics.median(delays), 3) if delays else None,
            "delay_s_max": round(max(delays), 3) if delays else None,
            "frame_interval_s": round(1 / fps, 3),
            "inferred_ungated": inferred_all, "inferred_gated": inferred_gated, "frames": total,
        }
    return rows


# -- regions: small objects in 4K ----------------------------------------------------------------------------


def regions_case(detector: Detector, media: Path, fps: float = 5.0) -> dict[str, Any]:
    """People found per frame in the footage placed in a 4K picture: motion regions against whole-frame letterbox."""
    clip = composite_4k(media)
    x, y, w, h = COMPOSITE_CLIP
    inside = (x / 3840, y / 2160, (x + w) / 3840, (y + h) / 2160)
    person = detector.labels.index("person")
    gate = CameraGate("replay", camera(), lambda _c, _t: None)
    counts: dict[str, list[int]] = {"whole": [], "regions": []}
    cpu = {"whole": 0.0, "regions": 0.0}
    looked = {"crop": 0, "whole": 0, "held": 0}
    held = 0
    for frame in frames(clip, fps):
        image = frame.bgr()
        started = time.process_time()
        whole = detector.detect(image, MIN_SCORE)
        cpu["whole"] += time.process_time() - started
        counts["whole"].append(_people(whole, person, inside))
        started = time.process_time()
        verdict = gate.decide(frame.grey, frame.ts)
        if verdict is None:
            looked["held"] += 1  # nothing moved: what was found stays (the tracker holds it)
        else:
            crop = detector.crop(image, verdict.motion)
            looked["crop" if crop is not None else "whole"] += 1
            held = _people(detector.detect(image, MIN_SCORE, crop), person, inside)
        cpu["regions"] += time.process_time() - started
        counts["regions"].append(held)
    n = len(counts["whole"])
    per_frame = {mode: round(sum(values) / n, 2) for mode, values in counts.items()}
    return {
        "frames": n, "people_per_frame": per_frame,
        "gain": round(per_frame["regions"] / per_frame["whole"], 2) if per_frame["whole"] else None,
        "frames_with_people": {mode: sum(1 for v in values if v) for mode, values in counts.items()},
        "regions_looked": looked,
        "cpu_ms_per_frame": {mode: round(1e3 * seconds / n, 1) for mode, seconds in cpu.items()},
    }


def _people(dets: Detections, person: int, inside: tuple[float, float, float, float]) -> int:
    centre_x = (dets.boxes[:, 0] + dets.boxes[:, 2]) / 2
    centre_y = (dets.boxes[:, 1] + dets.boxes[:, 3]) / 2
    ok = ((dets.classes == person) & (dets.scores >= MIN_SCORE) & (centre_x >= inside[0]) & (centre_x <= inside[2])
          & (centre_y >= inside[1]) & (centre_y <= inside[3]))
    return int(np.count_nonzero(ok))


# -- the tracker, against annotated footage -------------------------------------------------------------------


def tracker_case(detector: Detector, media: Path, rates: Iterable[float] = (5.0, 10.0)) -> dict[str, Any]:
    """Identity switches and tracks per real object, the old greedy tracker against the new one, at each rate.

    Each shot of the montage is footage of a different camera: both trackers start afresh at each cut.
    """
    truth = json.loads(ANNOTATION.read_text())
    objects = [(o["name"], {int(f): np.array(b) for f, b in o["boxes"].items()}) for o in truth["objects"]]
    shots = [tuple(span) for span in truth["scenes"].values()]
    rows = {}
    for rate in rates:
        sampled = [(f.index, f.ts, detector.detect(f.bgr(), MIN_SCORE)) for f in frames(media / "bikes.mp4", rate)]
        for name, make in (("old", _old_tracker), ("new", _new_tracker)):
            per_shot = [_score(make(), [s for s in sampled if lo <= s[0] <= hi], objects) for lo, hi in shots]
            rows[f"{name} at {rate:g}/s"] = _total(per_shot)
    clip = [(f.ts, detector.detect(f.bgr(), MIN_SCORE))
            for f in frames(long_clip(media / "street.mp4"), 10.0, limit_s=60.0)]
    per_minute = {}
    for name, make in (("old", _old_tracker), ("new", _new_tracker)):
        update = make()
        started = sum(len(update(dets, ts).started) for ts, dets in clip)
        per_minute[name] = started
    return {"objects": len(objects), "annotated_boxes": sum(len(b) for _, b in objects), "rows": rows,
            "how": truth["how"], "demo_clip_tracks_per_minute": per_minute}


def _total(shots: list[dict[str, Any]]) -> dict[str, Any]:
    objects = sum(s["objects_followed"] for s in shots)
    tracks = sum(s["tracks"] for s in shots)
    visible = sum(s["visible"] for s in shots)
    return {
        "identity_switches": sum(s["identity_switches"] for s in shots),
        "tracks_per_object": round(tracks / objects, 2) if objects else None, "objects_followed": objects,
        "coverage": round(sum(s["matched"] for s in shots) / visible, 3) if visible else None,
        "tracks_confirmed": sum(s["tracks_confirmed"] for s in shots),
        "tracks_on_no_object": sum(s["tracks_on_no_object"] for s in shots),
    }


def _score(update: Callable[[Detections, float], TrackUpdate], sampled: list[tuple[int, float, Detections]],
           objects: list[tuple[str, dict[int, np.ndarray]]]) -> dict[str, Any]:
    seen: dict[str, list[int]] = {name: [] for name, _ in objects}  # the track ids matched to each object, in order
    visible = matched_frames = 0
    confirmed_ids: set[int] = set()
    used_ids: set[int] = set()
    for index, ts, dets in sampled:
        result = update(dets, ts)
        published = [(int(i), dets.boxes[k]) for k, i in enumerate(result.ids.tolist())
                     if i and dets.scores[k] >= MIN_SCORE]
        confirmed_ids.update(i for i, _ in published)
        present = [(name, boxes[index]) for name, boxes in objects if index in boxes]
        visible += len(present)
        if not present or not published:
            continue
        overlap = box_iou(np.stack([b for _, b in present]), np.stack([b for _, b in published]))
        objects_taken: set[int] = set()
        boxes_taken: set[int] = set()
        for flat in np.argsort(-overlap, axis=None):
            o, p = divmod(int(flat), overlap.shape[1])
            if overlap[o, p] < 0.3:
                break
            if o in objects_taken or p in boxes_taken:
                continue
            objects_taken.add(o)
            boxes_taken.add(p)
            track_id = published[p][0]
            seen[present[o][0]].append(track_id)
            used_ids.add(track_id)
            matched_frames += 1
    found = [ids for ids in seen.values() if ids]
    return {
        "identity_switches": sum(sum(1 for a, b in pairwise(ids) if a != b) for ids in found),
        "tracks": sum(len(set(ids)) for ids in found), "objects_followed": len(found),
        "matched": matched_frames, "visible": visible,
        "tracks_confirmed": len(confirmed_ids), "tracks_on_no_object": len(confirmed_ids - used_ids),
    }


# -- capacity: eight cameras, six of them still ----------------------------------------------------------------

STILL_CAMERAS = 6


def capacity_case(measure: Callable[[str, dict[str, Any]], Any], media: Path, rtsp_url: Callable[[str], str],
                  bare_fps: float) -> dict[str, Any]:
    """8 RTSP 720p30 cameras at 10/s (six still scenes, two street footage), gated against ungated, same run.

    ``measure(name, cameras)`` runs the daemon and returns its RunFigures."""
    rows = {}
    for name, motion in (("gating-off", {"enabled": False}), ("gating-on", {})):
        cameras = {f"still{i}": {"url": rtsp_url(f"still{i}"), "fps": 10, "motion": motion}
                   for i in range(STILL_CAMERAS)}
        cameras |= {f"street{i}": {"url": rtsp_url(f"street{i}"), "fps": 10, "motion": motion} for i in range(2)}
        run = measure(f"capacity-8-{name}", cameras)
        per = run.per_camera_fps
        still = [per.get(f"still{i}", 0.0) for i in range(STILL_CAMERAS)]
        moving = [per.get(f"street{i}", 0.0) for i in range(2)]
        rows[name] = {
            "moving_min_fps": min(moving), "still_max_fps": max(still), "still_mean_fps": round(sum(still) / 6, 2),
            "inferred_fps": round(run.processed_fps, 1), "engine_load": round(run.processed_fps / bare_fps, 3),
            "cpu_percent": round(run.cpu_percent, 0), "read_fps": round(run.read_fps, 1),
            "per_camera_fps": per,
        }
    return rows


def capacity_sources(media: Path) -> dict[str, Path]:
    """The RTSP server's streams for ``capacity_case``: still scenes from the photos (with sensor noise), and the
    street footage."""
    stills = [still_clip(media, "zidane.jpg", 120.0), still_clip(media, "bus.jpg", 120.0)]
    street = long_clip(media / "street-720p30.mp4")
    sources = {f"still{i}": stills[i % 2] for i in range(STILL_CAMERAS)}
    return sources | {f"street{i}": street for i in range(2)}


def markdown(section: dict[str, Any]) -> list[str]:
    """The analytics figures as README lines."""
    lines = ["", "**Motion gating, 8 RTSP 720p30 cameras at 10/s** (six still scenes with sensor noise, two street "
             "footage), the same run:", "",
             "| | moving cameras, slowest /s | still cameras, fastest /s | inferred /s (all) | engine load | CPU % |",
             "|---|---|---|---|---|---|"]
    for name, row in section.get("capacity", {}).items():
        lines.append(f"| {name} | {row['moving_min_fps']:.1f} | {row['still_max_fps']:.2f} | {row['inferred_fps']} | "
                     f"{100 * row['engine_load']:.0f} % | {row['cpu_percent']:.0f} |")
    cost = section.get("gate_cost")
    if cost:
        lines += ["", f"The gate's CPU per 1280x720 frame on the camera's thread ({cost['frames']} frames of the "
                  f"street footage): grey copy from the decoder's luma {cost['grey_ms']} ms, motion and tamper "
                  f"{cost['gate_ms']} ms; the colour conversion and copy a held-back frame saves: "
                  f"{cost['colour_ms']} ms."]
    missed = section.get("missed", {})
    if missed:
        lines += ["", "**Nothing missed**: objects (confirmed tracks) found with gating / without, on real footage "
                  "at 10 frames/s; the extra delay of an object's first detection:", "",
                  "| footage | found / without | ratio | extra delay median / max s | frames inferred with / without |",
                  "|---|---|---|---|---|"]
        for name, row in missed.items():
            lines.append(f"| {name} | {row['found']} / {row['objects_ungated']} | {row['ratio']} | "
                         f"{row['delay_s_median']} / {row['delay_s_max']} | {row['inferred_gated']} / "
                         f"{row['inferred_ungated']} |")
    regions = section.get("regions")
    if regions:
        pp, cpu = regions["people_per_frame"], regions["cpu_ms_per_frame"]
        lines += ["", f"**Small objects**: the street footage placed at a quarter of the width in a 3840x2160 "
                  f"picture, {regions['frames']} frames at 5/s: people found per frame {pp['regions']} with motion "
                  f"regions against {pp['whole']} letterboxing the whole frame (x{regions['gain']}); frames with "
                  f"a person found {regions['frames_with_people']['regions']} against "
                  f"{regions['frames_with_people']['whole']}; CPU per frame {cpu['regions']} ms against "
                  f"{cpu['whole']} ms (pre-processing and inference, one request)."]
    tracker = section.get("tracker")
    if tracker:
        lines += ["", f"**Tracker** on {tracker['objects']} real objects annotated by hand "
                  f"(`bench/annotations/bikes-tracks.json`, {tracker['annotated_boxes']} boxes), old greedy IoU "
                  f"tracker against the new one:", "",
                  "| | identity switches | tracks per object | objects followed | coverage | confirmed tracks | "
                  "tracks on no object |", "|---|---|---|---|---|---|---|"]
        for name, row in tracker["rows"].items():
            lines.append(f"| {name} | {row['identity_switches']} | {row['tracks_per_object']} | "
                         f"{row['objects_followed']} | {row['coverage']} | {row['tracks_confirmed']} | "
                         f"{row['tracks_on_no_object']} |")
        per_minute = tracker["demo_clip_tracks_per_minute"]
        lines += ["", f"Tracks started in a minute of the demo's street clip at 10/s: {per_minute['old']} (old), "
                  f"{per_minute['new']} (new)."]
    tamper = section.get("tamper")
    if tamper:
        lines += ["", "**Tamper** (clips made from the fixed street camera, tampered from 20 s to 35 s):", "",
                  "| clip | raised | fired after s | resolved after s | right |", "|---|---|---|---|---|"]
        for kind, row in tamper["clips"].items():
            lines.append(f"| {kind} | {', '.join(row['raised']) or 'none'} | {row['fired_after_s']} | "
                         f"{row['resolved_after_s']} | {'yes' if row['right'] else '**no**'} |")
        normal = "; ".join(f"{name}, {row['seconds']} s: {', '.join(row['alerts']) or 'no alert'}"
                           for name, row in tamper["normal"].items())
        lines += ["", f"Normal footage: {normal}."]
    return lines


def run_analytics(media: Path, cache: Path, engine: dict[str, Any], bare_fps: float, warmup: float,
                  seconds: float, note: Callable[[str], None]) -> dict[str, Any]:
    """Every analytics figure: capacity (the daemon, a broker, an RTSP server), then the replays."""
    import tempfile

    from edged.config.models import OpenVinoConfig
    from edged.testing.broker import Mosquitto
    from edged.testing.rtsp import RtspServer
    from edged.tools.bench.harness import measure_daemon

    section: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edged-bench-analytics-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker").start()
        server = RtspServer(capacity_sources(media)).start()
        try:
            def measure(name: str, cameras: dict[str, Any]) -> Any:
                config = {"device_id": name, "mqtt": {"host": "127.0.0.1", "port": broker.port}, "engine": engine,
                          "telemetry": {"interval_s": 10}, "cameras": cameras}
                figures = measure_daemon(name, config, broker.port, work, cache, warmup, seconds)
                note(f"{name}: {figures.processed_fps:.1f} inferred/s at {figures.cpu_percent:.0f} % CPU")
                return figures

            section["capacity"] = capacity_case(measure, media, server.url, bare_fps)
        finally:
            server.stop()
            broker.stop()
    section["gate_cost"] = gate_cost_case(media)
    note(f"gate: {section['gate_cost']['grey_ms'] + section['gate_cost']['gate_ms']:.2f} ms per 720p frame")
    detector = Detector(OpenVinoConfig(**engine), cache)
    try:
        section["missed"] = missed_case(detector, media)
        note("nothing missed: " + ", ".join(f"{r['ratio']}" for r in section["missed"].values()))
        section["regions"] = regions_case(detector, media)
        note(f"regions: x{section['regions']['gain']} people per frame")
        section["tracker"] = tracker_case(detector, media)
        note("tracker: identity switches " + ", ".join(f"{k} {v['identity_switches']}"
                                                       for k, v in section["tracker"]["rows"].items()))
    finally:
        detector.close()
    section["tamper"] = tamper_case(media)
    clips = section["tamper"]["clips"]
    note("tamper: " + ", ".join(f"{kind} {'right' if row['right'] else 'WRONG'}" for kind, row in clips.items()))
    return section


MOVING_RATE = 9.5  # of 10 detections/s asked of each moving camera
STILL_RATE = 1.0  # inferences per second at most for a still camera
FOUND_RATIO = 0.98


def targets(section: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, figure, met) for the analytics figures."""
    out = []
    gated = section.get("capacity", {}).get("gating-on")
    if gated:
        out.append((f"motion gating, 8 RTSP 720p30 cameras at 10/s: each moving camera >= {MOVING_RATE}/s inferred",
                    f"slowest {gated['moving_min_fps']:.2f}/s", gated["moving_min_fps"] >= MOVING_RATE))
        out.append((f"motion gating: each still camera <= {STILL_RATE:g} inference/s",
                    f"fastest {gated['still_max_fps']:.2f}/s", gated["still_max_fps"] <= STILL_RATE))
    for name, row in section.get("missed", {}).items():
        moving = "still scenes" not in name
        if row["ratio"] is None:
            continue
        out.append((f"nothing missed, {name}: objects found gated / ungated >= {FOUND_RATIO}"
                    + ("" if moving else " (not only moving footage)"),
                    f"{row['found']} / {row['objects_ungated']} = {row['ratio']}", row["ratio"] >= FOUND_RATIO))
        out.append((f"nothing missed, {name}: extra delay of a first detection, median <= one frame interval",
                    f"{row['delay_s_median']} s (interval {row['frame_interval_s']} s)",
                    row["delay_s_median"] is not None and row["delay_s_median"] <= row["frame_interval_s"]))
    regions = section.get("regions")
    if regions:
        out.append(("small objects in 4K: people found per frame, regions / whole frame > 1",
                    f"x{regions['gain']}", (regions["gain"] or 0) > 1))
    tamper = section.get("tamper")
    if tamper:
        wrong = [kind for kind, row in tamper["clips"].items() if not row["right"]]
        out.append(("tamper clips raise the right alert and resolve it", "all right" if not wrong else
                    f"wrong: {', '.join(wrong)}", not wrong))
        raised = {name: row["alerts"] for name, row in tamper["normal"].items() if row["alerts"]}
        seconds = sum(row["seconds"] for row in tamper["normal"].values())
        out.append(("normal footage raises no tamper alert", f"{seconds} s: "
                    + ("none" if not raised else "; ".join(f"{k}: {v}" for k, v in raised.items())), not raised))
    return out
