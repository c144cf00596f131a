"""Counts a user can trust: the tracker and a counting line on real fixed-camera footage, against a hand count.

The footage is OpenCV's ``vtest.avi`` (``edged.testing.plaza``): a campus plaza, people walking alone and in
groups, crossing and passing each other, at 20 to 90 pixels tall. Every frame (10/s) goes through the real
detector once; the same detections then go through ``CameraAnalytics`` twice:

- *before*: the tracker without the colour cue and without taking up lost objects (stage 4), and a line that counts
  every move of the footpoint over it (no hysteresis); the rest of the tracker is today's (its prediction horizon,
  its unextrapolated sizes, its twin rule and its order, new tracks matched last, help this row too);
- *after*: the tracker with the colour cue and stage 4, and the line's default hysteresis.

Against the hand count (``studies/annotations/plaza-crossings.json``: 31 crossings of one line, counted by eye):
counted crossings are paired with hand-counted ones of the same direction within ``MATCH_S``, as many pairs as can be
made (``_pairs``); an unpaired counted crossing near a hand-counted one is a double count, one near none is false.
Identity: five people cross more than once (C, D, I, Q, Y: 7 returns, 2.8 to 15.4 s apart, through the groups and
past the lamp post); a return is *kept* when the same track counted both crossings. Also: person tracks started, and
per visit (``studies/annotations/plaza-visits.json``: 19 visits of people to the picture, counted by eye), how long
they lived, take-ups after a gap judged by ``edged.bench.identity``, the cost of the step per frame and of the
colours per object.
"""

from __future__ import annotations

import json
import statistics
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from edged.analytics import CameraAnalytics, Tallies, Tracker
from edged.bench import identity
from edged.bench.replay import Detector, frames
from edged.config.models import CameraConfig, EventsConfig, LineConfig
from edged.models.yolo import Detections
from edged.sources.demand import Demand
from edged.testing.plaza import plaza_clip

ANNOTATION = Path(__file__).resolve().parents[2] / "studies" / "annotations" / "plaza-crossings.json"
VISITS = ANNOTATION.with_name("plaza-visits.json")  # every person's visits to the picture, counted by eye
MIN_SCORE = 0.4
MATCH_S = 1.5


def _run(sampled: list[tuple[float, Detections]], labels: tuple[str, ...], line: dict[str, Any],
         after: bool) -> dict[str, Any]:
    """The detections through ``CameraAnalytics`` (before: the tracker and line as they were; after: as they are)."""
    events = EventsConfig()
    settings = line if after else {**line, "hysteresis": 0.0, "hysteresis_s": 0.0}
    config = CameraConfig(url="plaza.mp4", detect={"labels": ["person"]},
                          lines={"count": LineConfig(**settings)})
    analytics = CameraAnalytics("plaza", config, events, True, ["person"], labels, Tallies(None), Demand())
    if not after:
        analytics.tracker = Tracker(events.iou, events.min_hits, events.max_missed, events.lost_s, reacquire=False)
    analytics.start()
    crossings: list[tuple[float, str, int]] = []
    gaps = identity.Gaps(labels.index("person"))
    started = 0
    lives: list[float] = []
    cpu = 0.0
    for seq, (ts, dets) in enumerate(sampled, start=1):
        shown = dets if after else Detections(dets.boxes, dets.scores, dets.classes, dets.finite)
        clock = time.thread_time()
        outcome = analytics.step(seq, ts, shown, MIN_SCORE, None, ts)
        cpu += time.thread_time() - clock
        gaps.after(analytics.tracker, ts)
        started += sum(1 for t in outcome.update.started if labels[t.cls] == "person")
        lives += [t.last_ts - t.first_ts for t in outcome.update.ended if labels[t.cls] == "person"]
        crossings += [(ts, c.direction, c.track.id) for c in outcome.crossings]
    end = analytics.stop(sampled[-1][0], forget=False)
    lives += [t.last_ts - t.first_ts for t in end.update.ended if labels[t.cls] == "person"]
    return {"crossings": crossings, "person_tracks": started, "take_ups": gaps.take_ups,
            "track_life_s_median": round(statistics.median(lives), 2) if lives else None,
            "core_ms_per_frame": round(cpu * 1e3 / len(sampled), 3)}


def _near(counted: list[tuple[float, str, int]], truth: list[dict[str, Any]]) -> list[list[int]]:
    """For each counted crossing, the hand-counted ones it may be (same direction, within ``MATCH_S``), nearest
    in time first."""
    return [sorted((i for i, c in enumerate(truth) if c["direction"] == direction and abs(c["t"] - ts) <= MATCH_S),
                   key=lambda i: abs(truth[i]["t"] - ts)) for ts, direction, _ in counted]


def _pairs(near: list[list[int]]) -> dict[int, int]:
    """Hand-counted crossing -> the counted one it is matched to: as many pairs as can be made (augmenting paths,
    each counted crossing trying its ``near`` ones in order). A greedy match in time order would let a crossing
    counted late (the track took its person up again on the other side) take a neighbour's hand-counted crossing
    and call the neighbour's own count a double."""
    owner: dict[int, int] = {}

    def augment(k: int, seen: set[int]) -> bool:
        for i in near[k]:
            if i not in seen:
                seen.add(i)
                if i not in owner or augment(owner[i], seen):
                    owner[i] = k
                    return True
        return False

    for k in range(len(near)):
        augment(k, set())
    return owner


def _judge(counted: list[tuple[float, str, int]], truth: list[dict[str, Any]]) -> dict[str, Any]:
    near = _near(counted, truth)
    owner = _pairs(near)
    taken = {i: counted[k][2] for i, k in owner.items()}  # hand-counted crossing -> the track that counted it
    paired = set(owner.values())
    matched = len(owner)
    unpaired = [k for k in range(len(counted)) if k not in paired]
    doubled = sum(1 for k in unpaired if near[k])  # near a hand-counted crossing another count took
    false = len(unpaired) - doubled
    returns = kept = 0
    people: dict[str, list[int]] = {}
    for index, crossing in enumerate(truth):
        people.setdefault(crossing["who"], []).append(index)
    for crossed in people.values():
        for first, then in pairwise(crossed):
            # Kept: the track that counted the first crossing counted one at the second (two who walk together,
            # as C and D, may be told apart in either order).
            again = truth[then]
            returns += 1
            kept += first in taken and any(track == taken[first] and direction == again["direction"]
                                           and abs(ts - again["t"]) <= MATCH_S for ts, direction, track in counted)
    totals = {d: sum(1 for _, direction, _ in counted if direction == d) for d in ("in", "out")}
    hand = {d: sum(1 for c in truth if c["direction"] == d) for d in ("in", "out")}
    return {"in": totals["in"], "out": totals["out"], "hand_in": hand["in"], "hand_out": hand["out"],
            "total_error": round((totals["in"] + totals["out"]) / (hand["in"] + hand["out"]) - 1, 3),
            "matched": matched, "missed": len(truth) - len(taken), "double_counted": doubled, "false": false,
            "returns": returns, "returns_kept": kept}


def _verdicts(counts: dict[str, int]) -> str:
    return " / ".join(str(counts[k]) for k in ("same", "other", "unclear", "not_judged"))


def _people_per_frame(sampled: list[tuple[float, Detections]]) -> float:
    """Published people (class 0 at ``MIN_SCORE`` or more) a frame, on average."""
    return round(float(np.mean([np.sum((d.scores >= MIN_SCORE) & (d.classes == 0)) for _, d in sampled])), 2)


def counting_case(detector: Detector, media: Path, with_tiles: bool = True) -> dict[str, Any]:
    """The hand count against edged's, before and after, on every frame of the plaza clip; ``with_tiles``: also
    after, detecting on two tiles (``tiles: true``: the frame, 768x576, is less than twice the 416 input)."""
    truth = json.loads(ANNOTATION.read_text())
    pairs = identity.load()
    visits = json.loads(VISITS.read_text())["visits"]
    wanted = identity.frame_boxes(pairs)
    pair_colours: dict[tuple[int, str], np.ndarray] = {}
    clip = plaza_clip(media)
    colour_s, coloured = 0.0, 0  # of the whole-frame detections
    sampled, tiled = [], []
    for frame in frames(clip, 10.0):
        image = frame.bgr()
        ends = wanted.get(round(frame.ts * 10), [])
        if ends:  # the judged pairs' boxes on this frame
            read = detector.colours_of(image, np.array([pairs[i][end]["box"] for i, end in ends], np.float32))
            pair_colours.update(zip(ends, read, strict=True))
        seconds, objects = detector.colour_s, detector.coloured
        sampled.append((frame.ts, detector.detect(image, MIN_SCORE)))
        colour_s, coloured = colour_s + detector.colour_s - seconds, coloured + detector.coloured - objects
        if with_tiles:
            tiled.append((frame.ts, detector.tiled(image, MIN_SCORE)))
    rows = {}
    runs = [("before", sampled, False), ("after", sampled, True)] + [("after, two tiles", tiled, True)] * with_tiles
    for name, detections, after in runs:
        run = _run(detections, detector.labels, truth["line"], after)
        take_ups = identity.judge(run.pop("take_ups"), pairs)
        rows[name] = {**_judge(run.pop("crossings"), truth["crossings"]), **run,
                      "tracks_per_visit": round(run["person_tracks"] / len(visits), 2), "take_ups": take_ups}
    return {"frames": len(sampled), "seconds": round(sampled[-1][0], 1), "hand_crossings": len(truth["crossings"]),
            "people_per_frame": _people_per_frame(sampled),
            "people_per_frame_tiles": _people_per_frame(tiled) if tiled else None,
            "rows": rows, "how": truth["how"], "identity_pairs": len(pairs), "visits": len(visits),
            "colour_cue": identity.cue_auc(pair_colours, pairs),
            "colour_us_per_object": round(colour_s * 1e6 / max(coloured, 1), 1),
            "objects_per_frame": round(coloured / len(sampled), 2)}


def markdown(section: dict[str, Any]) -> list[str]:
    lines = ["", f"**Counting against a hand count**: OpenCV's `vtest.avi` (a fixed camera over a campus plaza, "
             f"{section['frames']} frames at 10/s, {section['people_per_frame']} people detected per frame), one "
             f"line, {section['hand_crossings']} crossings counted by eye "
             f"(`studies/annotations/plaza-crossings.json`); counted crossings are paired with hand-counted ones "
             f"of the same direction within {MATCH_S:g} s, as many pairs as can be made; 'before' is the tracker "
             f"without colours and without taking up lost objects, and the line without hysteresis:", "",
             "| | in / out (hand) | total error | matched | missed | counted twice | false | same track on a return | "
             f"person tracks | tracks per visit ({section['visits']} by eye) | median track life s | "
             "take-ups after a gap: same / other / unclear / not judged | tracker+zones core-ms per frame |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in section["rows"].items():
        lines.append(f"| {name} | {row['in']} / {row['out']} ({row['hand_in']} / {row['hand_out']}) | "
                     f"{100 * row['total_error']:+.0f} % | {row['matched']} | {row['missed']} | "
                     f"{row['double_counted']} | {row['false']} | {row['returns_kept']} of {row['returns']} | "
                     f"{row['person_tracks']} | **{row['tracks_per_visit']}** | {row['track_life_s_median']} | "
                     f"{_verdicts(row['take_ups'])} | {row['core_ms_per_frame']} |")
    cue = section["colour_cue"]
    lines += ["", f"Visits (`studies/annotations/plaza-visits.json`): a person from coming into view to leaving it, "
                  f"out of view for 2 s at most in between, counted by eye; a tracker that followed every visit in "
                  f"one track would have 1.0 tracks per visit. Take-ups: a person track matched again after "
                  f"{identity.GAP_S:g} s or more unseen, judged by the "
                  f"{section['identity_pairs']} pairs of boxes judged by eye "
                  f"(`studies/annotations/plaza-identity.json`: same person, someone else, or not to be told; "
                  f"'not judged': a take-up no pair holds, as most of the tiles' are: other boxes). The colour "
                  f"signature tells the {cue['same']} judged-same pairs from the {cue['other']} judged-other ones with "
                  f"an area under the ROC curve of **{cue['auc']}** (1: always, 0.5: a coin).",
              "", f"The colours cost {section['colour_us_per_object']} µs of CPU per object read "
                  f"({section['objects_per_frame']} a frame: the detections at the camera's min_score or more; the "
                  f"low-score ones the tracker also uses are matched by overlap alone and not read)."]
    if section.get("people_per_frame_tiles") is not None:
        lines[-1] += (f" Two tiles (`tiles: true`, two inferences a frame) find {section['people_per_frame_tiles']} "
                      f"people per frame against {section['people_per_frame']} on the whole frame.")
    return lines
