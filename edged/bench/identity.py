"""Identity through gaps, judged by hand: when the tracker takes up an object it had lost, is it the same object?

``studies/annotations/plaza-identity.json`` holds pairs of person boxes on the plaza clip: where a track was last
seen (``a``) and the box it was taken up by after a gap (``b``), each judged by eye as the same person, someone else,
or not to be told. The pairs are facts about the footage, so they serve twice:

- *take-ups* (``Gaps``): a tracker run's take-ups after a gap of ``GAP_S`` or more are looked up among the pairs
  (both boxes IoU >= ``SAME_BOX`` at the same frames) and counted as judged same, other, unclear, or not judged (a
  take-up the pairs do not hold: another tracker, other detections);
- *the colour cue*: the colours edged reads for each judged pair's two boxes (``appearance.colours`` on the
  detector's input, as the daemon reads them) and their similarity; how well it tells the same person from
  someone else is the area under the ROC curve (1: always, 0.5: a coin).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edged.analytics import Tracker, similarity
from edged.models.agreement import box_iou

ANNOTATION = Path(__file__).resolve().parents[2] / "studies" / "annotations" / "plaza-identity.json"
GAP_S = 0.3  # a take-up after a gap at least this long (shorter ones are the detector missing a frame or two)
SAME_BOX = 0.5  # a take-up's boxes overlap a judged pair's this much (IoU) to be judged by it
SAME_FRAME_S = 0.05


@dataclass(frozen=True)
class TakeUp:
    """A confirmed track matched again after ``b_t - a_t`` seconds unseen: last seen at ``a_box``, now at ``b_box``."""

    track: int
    a_t: float
    a_box: np.ndarray
    b_t: float
    b_box: np.ndarray


@dataclass
class Gaps:
    """Watches a tracker through its gaps, from its tracks after every update (``after``): a confirmed track of
    ``cls`` unseen at one update is *gone* until it is matched again (while the tracker keeps it); one matched again
    after ``GAP_S`` or more is a take-up (``take_ups``)."""

    cls: int
    take_ups: list[TakeUp] = field(default_factory=list)
    _gone: dict[int, tuple[float, np.ndarray]] = field(default_factory=dict)

    def after(self, tracker: Tracker, ts: float) -> None:
        followed = [t for t in tracker.tracks if t.cls == self.cls and t.confirmed]
        for track in followed:
            if track.missed:
                self._gone[track.id] = (track.last_ts, track.box)
                continue
            gone = self._gone.pop(track.id, None)
            if gone is not None and track.last_ts == ts and ts - gone[0] >= GAP_S - 1e-6:
                self.take_ups.append(TakeUp(track.id, *gone, ts, track.box))
        kept = {t.id for t in followed}
        self._gone = {k: v for k, v in self._gone.items() if k in kept}


def load() -> list[dict[str, Any]]:
    pairs: list[dict[str, Any]] = json.loads(ANNOTATION.read_text())["pairs"]
    return pairs


def judge(found: list[TakeUp], pairs: list[dict[str, Any]]) -> dict[str, int]:
    """How many take-ups the pairs judge the same person, someone else, unclear; and how many they do not hold (the
    first pair with both boxes at the same frames, each overlapping by ``SAME_BOX``, judges)."""
    counts = {"same": 0, "other": 0, "unclear": 0, "not_judged": 0}
    verdicts = {True: "same", False: "other", None: "unclear"}
    ends = {end: (np.array([p[end]["t"] for p in pairs]), np.array([p[end]["box"] for p in pairs], np.float32))
            for end in ("a", "b")}
    for take in found:
        hit = np.ones(len(pairs), bool)
        for end, t, box in (("a", take.a_t, take.a_box), ("b", take.b_t, take.b_box)):
            times, boxes = ends[end]
            hit &= (np.abs(times - t) <= SAME_FRAME_S) & (box_iou(box[None].astype(np.float32), boxes)[0] >= SAME_BOX)
        first = np.flatnonzero(hit)
        counts[verdicts[pairs[int(first[0])]["same"]] if first.size else "not_judged"] += 1
    return counts


def frame_boxes(pairs: list[dict[str, Any]]) -> dict[int, list[tuple[int, str]]]:
    """A frame's time in tenths of a second (round(t x 10)) -> the (pair index, 'a' or 'b') boxes on it, for reading
    their colours."""
    wanted: dict[int, list[tuple[int, str]]] = {}
    for index, pair in enumerate(pairs):
        for end in ("a", "b"):
            wanted.setdefault(round(pair[end]["t"] * 10), []).append((index, end))
    return wanted


def cue_auc(colours: dict[tuple[int, str], np.ndarray], pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """The colour cue's AUC over the pairs judged same or other (unclear ones left out)."""
    same: list[float] = []
    other: list[float] = []
    for index, pair in enumerate(pairs):
        if pair["same"] is None:
            continue
        score = float(similarity(colours[(index, "a")][None], colours[(index, "b")][None])[0, 0])
        (same if pair["same"] else other).append(score)
    return {"same": len(same), "other": len(other), "auc": round(auc(same, other), 3) if same and other else None}


def auc(positive: list[float], negative: list[float]) -> float:
    """Area under the ROC curve: the chance that a positive scores above a negative (ties count half)."""
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))
