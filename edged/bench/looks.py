"""A second look at each object, on real fixed-camera footage: the plaza clip (``vtest.avi``: people at 20 to 90
pixels, two vans parked in a corner) at 10 frames/s through the real detector once; the same detections then go
through ``CameraAnalytics`` without and with second looks (the verifier on people and vehicles, colours of people
and vehicles, and a classifier on every object: ``dominant_channel``, a real ONNX graph with a known right answer,
standing in for a user's ResNet). Each frame's answers come back before the next frame (``Looks.settle``), so the
figures do not depend on this machine's speed.

What it reports: objects published per label without and with the verifier, the tracks it rejected (where and
when, for the hand check in ``studies/annotations/plaza-looks.json``), the colours of people against the hand
labels there, and the cost: crops a second, ms per crop and per batch of each model, the looks thread's CPU per
crop, and the scheduler thread's CPU per frame for cropping and applying answers.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edged.analytics import CameraAnalytics, Tallies
from edged.bench.replay import Detector, frames
from edged.config.models import Config
from edged.looks import Looks
from edged.models.yolo import Detections
from edged.sources.demand import Demand
from edged.sources.slot import FrameInfo
from edged.testing.classifiers import LABELS, dominant_channel
from edged.testing.plaza import plaza_clip

ANNOTATION = Path(__file__).resolve().parents[2] / "studies" / "annotations" / "plaza-looks.json"
MIN_SCORE = 0.4
VEHICLES = ["car", "truck", "bus"]
Sighting = tuple[float, int, str, list[float]]  # (clip time, track id, label, box): a published object in a frame


@dataclass
class _Picture:
    image: np.ndarray


@dataclass
class _Framed:
    info: FrameInfo
    picture: _Picture | None


# Every second look, as a camera of this footage would ask (people 12 to 40 pixels wide: small min_size).
LOOKS: dict[str, Any] = {"verify": {label: {} for label in ["person", *VEHICLES]},
                         "colors": {"labels": ["person", *VEHICLES], "min_size": 8},
                         "classify": [{"classifier": "dominant", "min_score": 0.34, "min_size": 16}]}


def classifiers(path: Path) -> dict[str, Any]:
    """The ``classifiers:`` section for the dominant-channel classifier at ``path``."""
    return {"dominant": {"model": str(path), "labels": list(LABELS), "mean": [0, 0, 0], "std": [1, 1, 1]}}


def _config(classifier: Path, looks: bool) -> Config:
    camera: dict[str, Any] = {"url": "plaza.mp4", "detect": {"labels": ["person", *VEHICLES]}, **(LOOKS if looks
                                                                                                  else {})}
    return Config(engine={"model": "yolov3-tiny"}, cameras={"plaza": camera}, classifiers=classifiers(classifier))


def _run(sampled: list[tuple[float, np.ndarray, Detections]], labels: tuple[str, ...], cache: Path,
         classifier: Path, looks_on: bool) -> tuple[dict[str, Any], list[Sighting]]:
    """The clip through the analytics, with or without every look: the row, and (with looks) every frame's
    published objects for the judge."""
    config = _config(classifier, looks_on)
    camera = config.cameras["plaza"]
    wanted = camera.detect.labels or list(labels)
    analytics = CameraAnalytics("plaza", camera, config.events, True, wanted, labels, Tallies(None), Demand())
    analytics.start()
    cpu = {"crops": 0.0}
    looks = Looks(config, labels, cache, lambda _name: None, cpu) if looks_on else None
    if looks is not None:
        looks.start()
        looks.add_camera("plaza", config)
        looks.cameras["plaza"].answers = []
        looks.clock = lambda: clip_now[0]
    clip_now = [0.0]
    published: Counter[str] = Counter()
    objects: dict[int, dict[str, Any]] = {}
    sightings: list[Sighting] = []
    doubted: dict[int, dict[str, Any]] = {}  # objects a look did not find: where, when
    doubts_seen = 0
    step_s = 0.0
    started = time.perf_counter()
    try:
        for seq, (ts, image, dets) in enumerate(sampled, start=1):
            clip_now[0] = ts
            clock = time.thread_time()
            if looks is not None:
                looks.before("plaza", analytics.tracker.tracks)
                answered = looks.cameras["plaza"].answers or []
                for track_id, confirmed, _score in answered[doubts_seen:]:
                    track = next((t for t in analytics.tracker.tracks if t.id == track_id), None)
                    if not confirmed and track is not None and track_id not in doubted:
                        doubted[track_id] = {"t": round(ts, 1), "label": labels[track.cls],
                                             "box": [round(float(v), 3) for v in track.box]}
                doubts_seen = len(answered)
            outcome = analytics.step(seq, ts, dets, MIN_SCORE, None, ts)
            step_s += time.thread_time() - clock
            if looks is not None:
                height, width = image.shape[:2]
                looks(_Framed(FrameInfo(seq, ts, ts, width, height), _Picture(image)), outcome)
                looks.settle()
            if looks is not None:
                sightings += [(round(ts, 1), t.id, labels[t.cls], [float(v) for v in t.box]) for t in outcome.tracks
                              if t.public and t.last_ts == ts]
            for track in outcome.update.started:
                published[labels[track.cls]] += 1
                objects[track.id] = {"id": track.id, "t": round(ts, 1), "label": labels[track.cls],
                                     "box": [round(float(v), 3) for v in track.box]}
            for track in analytics.tracker.tracks:
                look = track.look
                if track.id in objects and look is not None:
                    objects[track.id]["colors"] = list(look.colors)
                    objects[track.id]["sub_label"] = look.sub_label
        wall = time.perf_counter() - started
        stats = looks.stats() if looks is not None else {}
    finally:
        if looks is not None:
            looks.stop()
    # Objects the verifier kept from being published: a look did not find them, and none did later.
    removed = [where for track_id, where in doubted.items() if track_id not in objects]
    out: dict[str, Any] = {"published": dict(published), "objects": list(objects.values()), "rejected": removed,
                           "doubted_then_confirmed": sum(1 for track_id in doubted if track_id in objects),
                           "step_core_ms_per_frame": round(step_s * 1e3 / len(sampled), 3)}
    if looks is not None:
        out["looks"] = stats
        out["looks_core_ms_per_frame"] = round(cpu["crops"] * 1e3 / len(sampled), 3)
        out["crops_per_s_of_clip"] = {name: round(s["crops"] / sampled[-1][0], 2)
                                      for name, s in stats["stations"].items()}
        out["replay_s"] = round(wall, 1)
        out["verdicts"] = looks.cameras["plaza"].answers
    return out, sightings


def _judge(run: dict[str, Any], sightings: list[Sighting], truth: dict[str, Any]) -> dict[str, Any]:
    """The verifier's rejections against the hand check; people's colours against the hand labels."""
    checked = {(r["t"], r["label"]): r["truth"] for r in truth.get("rejected", [])}
    verdicts = [checked.get((r["t"], r["label"])) for r in run["rejected"]]
    colours = []
    coloured = {o["id"]: o["colors"] for o in run["objects"] if o.get("colors")}
    for hand in truth.get("colors", []):
        # The object edged followed there and then (the labels were made where objects were first published; a
        # track that holds longer may have started earlier): its colours at the end of the clip.
        near = [track for t, track, label, box in sightings if label == hand["label"] and track in coloured
                and abs(t - hand["t"]) <= 0.05 and _iou(box, hand["box"]) >= 0.3]
        if near:
            colours.append(([hand["color"], *hand.get("also", [])], coloured[near[0]]))
    return {"rejected_false": verdicts.count("false"), "rejected_true": verdicts.count("true"),
            "rejected_unchecked": verdicts.count(None),
            "colour_labels": len(truth.get("colors", [])), "colour_matched": len(colours),
            "colour_first": sum(1 for hand, seen in colours if seen[0] == hand[0]),
            "colour_first_accepted": sum(1 for hand, seen in colours if seen[0] in hand),
            "colour_named": sum(1 for hand, seen in colours if hand[0] in seen)}


def _iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def looks_case(detector: Detector, media: Path, cache: Path, limit_s: float | None = None) -> dict[str, Any]:
    clip = plaza_clip(media)
    sampled = []
    for frame in frames(clip, 10.0, limit_s=limit_s):
        image = frame.bgr()
        sampled.append((frame.ts, image, detector.detect(image, MIN_SCORE)))
    truth = json.loads(ANNOTATION.read_text()) if ANNOTATION.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="edged-looks-") as tmp:
        classifier = dominant_channel(Path(tmp) / "dominant.onnx")
        without, _ = _run(sampled, detector.labels, cache, classifier, False)
        with_looks, sightings = _run(sampled, detector.labels, cache, classifier, True)
    rows = {"without": without, "with": with_looks}
    judged = _judge(with_looks, sightings, truth)
    return {"frames": len(sampled), "seconds": round(sampled[-1][0], 1), "rows": rows, "judged": judged,
            "how": truth.get("how", "")}


def live_case(measure: Callable[..., Any], media: Path, work: Path, cameras: int = 2) -> dict[str, Any]:
    """The daemon on ``cameras`` plaza cameras at 10/s (every frame inferred), without and with every second look:
    what a subscriber sees of the detections' latency, and where the CPU goes."""
    clip = plaza_clip(media)
    classifier = dominant_channel(work / "dominant.onnx")
    base = {"url": str(clip), "loop": True, "fps": 10, "motion": {"enabled": False},
            "detect": {"labels": ["person", *VEHICLES]}}
    rows = {}
    for name, extra in (("looks-off", {}), ("looks-on", LOOKS)):
        figures = measure(name, {f"plaza{i}": {**base, **extra} for i in range(cameras)},
                          classifiers=classifiers(classifier))
        stages = figures.stage_core_ms
        rows[name] = {"latency_ms_p50": round(figures.latency_ms_p50, 1),
                      "latency_ms_p95": round(figures.latency_ms_p95, 1), "age_ms_p95": round(figures.age_ms_p95, 1),
                      "processed_fps": round(figures.processed_fps, 1),
                      "core_ms_per_frame": round(figures.core_ms_per_frame, 2),
                      "crops_core_ms": round(stages.get("crops", 0.0), 3),
                      "looks_core_ms": round(stages.get("looks", 0.0), 3)}
    return {"cameras": cameras, "rows": rows}


def markdown(section: dict[str, Any]) -> list[str]:
    """The second looks' figures as README lines."""
    replay, live = section.get("replay"), section.get("live")
    lines: list[str] = []
    if replay:
        judged, off, on = replay["judged"], replay["rows"]["without"], replay["rows"]["with"]
        lines += ["", f"**A second look** on the plaza clip ({replay['frames']} frames at 10/s, every frame through "
                  f"the real detector once, then without and with second looks: the verifier on people and vehicles, "
                  f"colours, and a classifier on every object; hand check in "
                  f"`studies/annotations/plaza-looks.json`):", "",
                  "| | objects published | removed by the verifier: false / true (hand check) | "
                  "colours: first name = hand label | tracker+zones core-ms per frame | crops+answers core-ms "
                  "per frame (scheduler thread) |", "|---|---|---|---|---|---|",
                  f"| without | {_counts(off['published'])} | | | {off['step_core_ms_per_frame']} | |",
                  f"| with | {_counts(on['published'])} | {judged['rejected_false']} / {judged['rejected_true']}"
                  f"{' (' + str(judged['rejected_unchecked']) + ' unchecked)' if judged['rejected_unchecked'] else ''}"
                  f" | {judged['colour_first']} of {judged['colour_matched']} (a name edged gave: "
                  f"{judged['colour_named']}) | {on['step_core_ms_per_frame']} | {on['looks_core_ms_per_frame']} |",
                  "", "| look | crops | crops per s of clip | batches, largest | ms per batch | ms per crop | "
                  "looks thread CPU ms per crop |", "|---|---|---|---|---|---|---|"]
        for name, row in on["looks"]["stations"].items():
            lines.append(f"| {name} | {row['crops']} | {on['crops_per_s_of_clip'][name]} | {row['batches']}, "
                         f"{row['largest_batch']} | {row['ms_per_batch']} | {row['ms_per_crop']} | "
                         f"{row['cpu_ms_per_crop']} |")
    if live:
        lines += ["", f"The daemon on {live['cameras']} plaza cameras at 10/s, every frame inferred, without and with "
                  f"every second look (same run):", "",
                  "| | detections /s | capture to subscriber p50 / p95 ms | age p95 ms | core-ms per frame | crops "
                  "(scheduler thread) | looks thread |", "|---|---|---|---|---|---|---|"]
        for name, row in live["rows"].items():
            lines.append(f"| {name} | {row['processed_fps']} | {row['latency_ms_p50']} / {row['latency_ms_p95']} | "
                         f"{row['age_ms_p95']} | {row['core_ms_per_frame']} | {row['crops_core_ms']} | "
                         f"{row['looks_core_ms']} |")
    return lines


def _counts(published: dict[str, int]) -> str:
    return ", ".join(f"{count} {label}" for label, count in sorted(published.items(), key=lambda kv: -kv[1]))
