"""Multi-object tracking per camera, ByteTrack-style, robust to low and uneven frame rates.

Each track has a Kalman filter on its box: the centre moves at a constant velocity (in
fractions of the frame per *second*, so a gap of 0.1 s or 5 s is predicted alike), the
width and height are only smoothed, never extrapolated (a small person's box changes
height by a fifth from one frame to the next: a size velocity drove predicted sizes to
nothing or to ten times the object within a second of losing it, and no detection was
then near enough in size to take it up again). A track is predicted up to
``MAX_PREDICT_S`` after it was last seen and no further: an object not seen for long is
assumed to have stopped. Each update, per class:

1. confirmed tracks are matched to *high* detections (score >= the camera's ``min_score``)
   by IoU with their predicted box, best first;
2. confirmed tracks still unmatched that were seen at the last look are matched to *low*
   detections (``LOW_SHARE`` of ``min_score`` up to it; decoded for the tracker, not
   published) at a stricter IoU: an occluded or blurred object keeps its identity
   instead of ending and starting again (ByteTrack's idea);
3. at low rates a moving object may no longer overlap its prediction: those still
   unmatched that were seen at the last look are matched to high detections whose
   centre is within the track's size of the predicted centre, with a similar height;
4. a confirmed object lost for a while (missed by the detector, hidden by a passer-by)
   is taken up again by a high detection near where it was predicted to be: the reach
   grows with the time it has been lost (``LOST_REACH`` track sizes a second), the height
   must be similar (not the width: a stride, a bag), and so must its colours where known;
5. new (not yet confirmed) tracks get what is left (by IoU, then by nearness), as in
   ByteTrack: a spare box on someone followed starts a new track, and were it matched with
   the confirmed ones it would take the next box from the track it sprang from, which then
   starved and ended (the plaza's person tracks, 19 visits counted by eye: 43 -> 27).

Where detections carry colours (``analytics.appearance``: a colour histogram of the
object's box), every stage orders its candidate pairs by how well they fit times how alike
their colours are, so two people who cross keep their own identities; a lost object is
never taken up by a detection in clearly different colours.

Stages 3 to 5 take no detection that overlaps one already matched in this update by
``TWIN_IOU`` or more, and a new track starts from a high detection only, not from one
lying inside an object already followed (the detector's second box on a part of it) nor
from one overlapping it by ``TWIN_IOU``: small people are boxed twice, a few pixels apart,
every few frames, and a second box is how a spare track was born and how a lost one
wandered onto a passer-by (``analytics.twins``).
A new track is confirmed after ``min_hits`` consecutive updates, and a confirmed track
ends once it has gone ``max_missed`` updates *and* ``lost_s`` seconds without a match (at
10 updates a second a van passing in front of a cyclist for a second must not end him; at
one update a second five misses are five seconds), or ``LOST_LOOKS`` updates whatever the
time. Updates that looked only at a crop (motion regions) do not count against tracks
outside it. Frames the motion gate held back never reach the tracker.

No library: supervision's ByteTrack pulls in matplotlib, scipy, requests and pillow, tracks class-agnostically and
counts time in frames; ``trackers`` needs opencv-python (a second OpenCV); norfair pins numpy<2, has no low stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edged.analytics.appearance import SIZE, similarity
from edged.analytics.looked import Look
from edged.analytics.twins import not_parts, untwinned
from edged.models.agreement import box_iou
from edged.models.yolo import Detections

MAX_PREDICT_S = 1.0  # a lost track is predicted this long after it was last seen, no longer
LOW_SHARE = 0.5  # low detections: from this share of the camera's min_score up to it


def decode_floor(min_score: float) -> float:
    """Decode down to this score: the tracker uses the detections under ``min_score`` (never published)."""
    return min_score * LOW_SHARE
LOW_IOU = 0.5  # stage 2: a low-score detection must overlap well
LOST_LOOKS = 50  # ...or this many looks, however short: a camera pulled as fast as it goes keeps no ghosts
LOST_REACH = 1.0  # stage 4: a lost object may come back this many of its sizes further away per second lost
COLOUR_FLOOR = 0.3  # a pair's order weight is COLOUR_FLOOR + (1 - COLOUR_FLOOR) x colour similarity
ALIKE = 0.3  # stages 3 and 4: colours at least this similar (where both are known)
EMA = 0.3  # a track's colours follow its detections' at this rate
# Kalman noise, as variances in units of the object's height squared (per second for the process).
_P0, _V0 = 0.1**2, 1.0**2  # a new track: where it is, how fast it moves (unknown)
_Q_POS, _Q_VEL, _R = 0.05**2, 0.5**2, 0.05**2  # the motion's noise (position, velocity); a detection's box's


@dataclass
class Track:
    id: int
    cls: int
    box: np.ndarray  # the last matched detection, normalised xyxy
    score: float
    first_ts: float
    last_ts: float
    hits: int = 1
    missed: int = 0
    confirmed: bool = False
    last_reported: float = 0.0
    zones: set[str] = field(default_factory=set)  # the zones its footpoint is in (set by the zone step)
    look: Look | None = None  # what a second look made of it (edged.looks)

    @property
    def public(self) -> bool:
        """Confirmed, and not held back by the verifier (waiting for its verdict, or rejected)."""
        return self.confirmed and (self.look is None or not self.look.hidden)

    @classmethod
    def begin(cls, track_id: int, dets: Detections, index: int, ts: float, min_hits: int,
              out: TrackUpdate) -> Track:
        """A new track from detection ``index``; confirmed at once (and reported) when ``min_hits`` is 1."""
        track = cls(track_id, int(dets.classes[index]), dets.boxes[index].copy(), float(dets.scores[index]), ts, ts)
        if min_hits <= 1:
            track.confirmed = True
            out.started.append(track)
            out.ids[index] = track.id
        return track

    def seen(self, dets: Detections, index: int, ts: float, min_hits: int, out: TrackUpdate) -> None:
        """Matched to detection ``index``: take its box and score, confirm after ``min_hits``, report its id."""
        self.box, self.score, self.last_ts = dets.boxes[index].copy(), float(dets.scores[index]), ts
        self.hits += 1
        self.missed = 0
        if not self.confirmed and self.hits >= min_hits:
            self.confirmed = True
            out.started.append(self)
        if self.confirmed:
            out.ids[index] = self.id


@dataclass
class TrackUpdate:
    started: list[Track] = field(default_factory=list)  # confirmed in this frame
    ended: list[Track] = field(default_factory=list)  # confirmed tracks that are gone
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per detection; 0: no confirmed track


def _xywh(boxes: np.ndarray) -> np.ndarray:
    """Centre and size of xyxy boxes (one box, or rows of them)."""
    return np.concatenate([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], axis=-1)


class Tracker:
    def __init__(self, iou: float = 0.3, min_hits: int = 2, max_missed: int = 5, lost_s: float = 2.0,
                 reacquire: bool = True) -> None:
        self.iou = iou
        self.reacquire = reacquire  # stage 4 (False: the tracker as it was before it; the bench compares both)
        self.min_hits = min_hits
        self.max_missed = max_missed
        self.lost_s = lost_s
        self.tracks: list[Track] = []
        self._next_id = 1
        # Kalman state, one row per track in self.tracks' order: centre x, y, width, height and the centre's velocity
        # (per second); the covariance (position, cross, velocity); the time each was predicted to.
        self._mean = np.zeros((0, 6))
        self._cov = np.zeros((0, 3))
        self._at = np.zeros(0)
        self._seen = np.zeros(0)  # when each was last matched (Track.last_ts)
        self._cls = np.zeros(0, np.int64)
        self._last = np.zeros((0, 4), np.float32)  # each track's last matched box (Track.box), normalised xyxy
        self._colour = np.zeros((0, SIZE), np.float32)  # per track; rows of zeros: not known yet
        self._coloured = np.zeros(0, bool)

    # -- Kalman ----------------------------------------------------------------------

    # The four coordinates are independent filters (the centre's at a constant velocity, the size's without one)
    # with the same noise, scaled by the object's height: one 2x2 covariance per track, in units of height^2,
    # serves all four, and every track is predicted and corrected at once (a handful of array operations per
    # update, whatever the number of objects).

    def _predict(self, ts: float) -> None:
        if not self.tracks:
            return
        # Up to MAX_PREDICT_S after the track was last seen, not further: at every update while it is lost its
        # velocity would otherwise carry it on, step after step, out of reach.
        horizon = np.minimum(self._seen + MAX_PREDICT_S, ts)
        dt = np.maximum(horizon - self._at, 0.0)
        np.maximum(self._at, horizon, out=self._at)
        mean, cov = self._mean, self._cov
        mean[:, :2] += mean[:, 4:] * dt[:, None]
        # In this order each line reads the previous values it needs: p00 (p01, p11), then p01 (p11), then p11.
        cov[:, 0] += dt * (2 * cov[:, 1] + dt * cov[:, 2] + _Q_POS)
        cov[:, 1] += dt * cov[:, 2]
        cov[:, 2] += _Q_VEL * dt

    def _correct(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        cov = self._cov[rows]
        p00, p01, p11 = cov[:, 0], cov[:, 1], cov[:, 2]  # views: each line below reads what it needs first
        s = p00 + _R
        k0, k1 = p00 / s, p01 / s
        mean = self._mean[rows]
        innovation = _xywh(boxes) - mean[:, :4]
        mean[:, :4] += k0[:, None] * innovation
        mean[:, 4:] += k1[:, None] * innovation[:, :2]
        self._mean[rows] = mean
        cov[:, 2] = p11 - k1 * p01
        k0 = 1 - k0
        cov[:, 1] = k0 * p01
        cov[:, 0] = k0 * p00
        self._cov[rows] = cov

    def _predicted_boxes(self) -> np.ndarray:
        centre, size = self._mean[:, :2], self._mean[:, 2:4]
        return np.concatenate([centre - size / 2, centre + size / 2], axis=1)

    # -- association -----------------------------------------------------------------

    def update(self, dets: Detections, ts: float, high_score: float = 0.0,
               region: tuple[float, float, float, float] | None = None) -> TrackUpdate:
        """Match ``dets`` (decoded down to ``LOW_SHARE`` of ``high_score``; those >= it are high) at time ``ts``.

        ``region``: the part of the frame the detector looked at (normalised xyxy); None: all of it.
        """
        out = TrackUpdate(ids=np.zeros(len(dets), np.int64))
        self._predict(ts)
        matched: dict[int, int] = {}  # track index -> detection index
        high = dets.scores >= high_score
        # Which detections' colours were read (a row of zeros: not read, as for a low-score detection): not known.
        read: np.ndarray | None = None if dets.colours is None else np.any(dets.colours, axis=1)
        count = len(self.tracks)
        if count and len(dets):
            lost = np.fromiter((t.missed > 0 for t in self.tracks), bool, count)
            same = self._cls[:, None] == dets.classes[None, :]
            alike = self._alike(dets, read)
            # One IoU call for the predicted and the last seen boxes: a lost object may have stood still where it was.
            overlap = box_iou(np.concatenate([self._predicted_boxes(), self._last]), dets.boxes)
            overlap, last = overlap[:count], overlap[count:]
            np.maximum(overlap, last, out=overlap, where=lost[:, None])
            # Nor does a lost object come back as someone in other colours.
            fit = same if alike is None else same & (~lost[:, None] | (alike >= ALIKE))
            overlap *= fit
            weight = None if alike is None else COLOUR_FLOOR + (1 - COLOUR_FLOOR) * alike
            confirmed = np.fromiter((t.confirmed for t in self.tracks), bool, count)
            self._stage(overlap, confirmed, high, self.iou, matched, weight)
            # Stages 2 to 5 (the module's docstring): confirmed tracks first, new ones get what is left.
            recent = ~lost & confirmed
            if len(matched) < count and not high.all():
                self._stage(overlap, recent, ~high, max(self.iou, LOW_IOU), matched, weight)
            free_high = untwinned(dets, high, matched) if len(matched) < count else None
            if free_high is not None and free_high.any():
                gone = np.minimum(ts - self._seen, self.lost_s)
                near = self._nearness(dets, np.where(lost, 1.0 + LOST_REACH * gone, 1.0))
                near *= same if alike is None else same & (alike >= ALIKE)
                self._stage(near, recent, free_high, 0.5, matched, weight)
                if self.reacquire:
                    self._stage(near, lost & confirmed, free_high, 0.5, matched, weight)
                if not confirmed.all():  # new tracks: what is left, by overlap, then (low rates) by nearness
                    left = untwinned(dets, high, matched)
                    self._stage(overlap, ~confirmed, left, self.iou, matched, weight)
                    self._stage(near, ~confirmed, left, 0.5, matched, weight)
        if matched:
            rows = np.fromiter(matched.keys(), np.int64, len(matched))
            columns = np.fromiter(matched.values(), np.int64, len(matched))
            self._correct(rows, dets.boxes[columns])
            self._last[rows] = dets.boxes[columns]
            self._at[rows] = self._seen[rows] = ts
            self._remember_colours(rows, columns, dets.colours, read)
            for ti, di in matched.items():
                self.tracks[ti].seen(dets, di, ts, self.min_hits, out)
        self._keep(self._survivors(matched, region, ts, out))
        taken = set(matched.values())
        fresh = [index for index in np.flatnonzero(high).tolist() if index not in taken]
        for index in not_parts(dets, fresh, sorted(taken)):
            self._new(dets, index, ts, out, read)
        return out

    def _alike(self, dets: Detections, read: np.ndarray | None) -> np.ndarray | None:
        """[T, D] colour similarity, 1 where the track's or the detection's are not known; None: none to compare."""
        if dets.colours is None or read is None or not self._coloured.any():
            return None
        return np.where(self._coloured[:, None] & read[None, :], similarity(self._colour, dets.colours), 1.0)

    def _remember_colours(self, rows: np.ndarray, columns: np.ndarray, colours: np.ndarray | None,
                          read: np.ndarray | None) -> None:
        if colours is None or read is None:
            return
        kept = read[columns]
        rows, seen = rows[kept], colours[columns[kept]]
        known = self._coloured[rows]
        self._colour[rows] = np.where(known[:, None], (1 - EMA) * self._colour[rows] + EMA * seen, seen)
        self._coloured[rows] = True

    def _stage(self, score: np.ndarray, rows: np.ndarray | None, columns: np.ndarray, floor: float,
               matched: dict[int, int], weight: np.ndarray | None) -> None:
        """Match still-free tracks (among ``rows``; None: all) to still-free detections among ``columns`` whose
        ``score`` reaches ``floor``, the best first (by score, times ``weight``: how alike their colours are)."""
        ok = score >= floor
        ok &= columns[None, :]
        if rows is not None:
            ok &= rows[:, None]
        if matched:
            ok[list(matched)] = False
            ok[:, list(matched.values())] = False
        pairs_r, pairs_c = np.nonzero(ok)
        if not len(pairs_r):
            return
        values = score[pairs_r, pairs_c] if weight is None else score[pairs_r, pairs_c] * weight[pairs_r, pairs_c]
        taken_rows: set[int] = set()
        taken_columns: set[int] = set()
        pairs = list(zip(pairs_r.tolist(), pairs_c.tolist(), strict=True))
        for k in np.argsort(-values, kind="stable").tolist():
            r, c = pairs[k]
            if r in taken_rows or c in taken_columns:
                continue
            taken_rows.add(r)
            taken_columns.add(c)
            matched[r] = c

    def _nearness(self, dets: Detections, reach: np.ndarray) -> np.ndarray:
        """1 at the predicted centre, 0.5 at ``reach`` track sizes away; 0 for a height off by 2x (widths vary)."""
        pc, psize = self._mean[:, :2], self._mean[:, 2:4]  # the predicted centres, the sizes (never extrapolated)
        detected = _xywh(dets.boxes)
        dc, dsize = detected[:, :2], np.maximum(detected[:, 2:], 1e-4)
        distance = np.linalg.norm(pc[:, None, :] - dc[None, :, :], axis=2) / (np.max(psize, axis=1) * reach)[:, None]
        ratio = np.abs(np.log(psize[:, None, 1] / dsize[None, :, 1]))
        near: np.ndarray = np.where(ratio < np.log(2.0), 1.0 / (1.0 + distance), 0.0)
        return near

    def _survivors(self, matched: dict[int, int], region: tuple[float, float, float, float] | None, ts: float,
                   out: TrackUpdate) -> np.ndarray:
        """Which tracks live on (a mask over self.tracks); ended confirmed ones go to ``out.ended``."""
        keep = np.ones(len(self.tracks), bool)
        for index, track in enumerate(self.tracks):
            if index in matched:
                continue
            if region is not None and not _inside(self._mean[index, :2], region):
                continue  # the detector did not look there this time
            track.missed += 1
            if not track.confirmed:
                keep[index] = False  # a tentative track must be seen in consecutive updates
            elif track.missed > self.max_missed and (ts - track.last_ts > self.lost_s
                                                     or track.missed > LOST_LOOKS):
                out.ended.append(track)
                keep[index] = False
        return keep

    def _keep(self, keep: np.ndarray) -> None:
        if keep.all():
            return
        self.tracks = [track for track, alive in zip(self.tracks, keep.tolist()) if alive]
        self._mean, self._cov = self._mean[keep], self._cov[keep]
        self._at, self._seen = self._at[keep], self._seen[keep]
        self._cls, self._last = self._cls[keep], self._last[keep]
        self._colour, self._coloured = self._colour[keep], self._coloured[keep]

    def _new(self, dets: Detections, di: int, ts: float, out: TrackUpdate, read: np.ndarray | None) -> None:
        track = Track.begin(self._next_id, dets, di, ts, self.min_hits, out)
        self._next_id += 1
        self.tracks.append(track)
        self._mean = np.vstack([self._mean, np.concatenate([_xywh(dets.boxes[di]), np.zeros(2)])])
        self._cov = np.vstack([self._cov, [_P0, 0.0, _V0]])
        self._at = np.append(self._at, ts)
        self._seen = np.append(self._seen, ts)
        self._cls = np.append(self._cls, track.cls)
        self._last = np.vstack([self._last, dets.boxes[di]])
        colours = dets.colours
        self._colour = np.vstack([self._colour, colours[di] if colours is not None else np.zeros(SIZE, np.float32)])
        self._coloured = np.append(self._coloured, read is not None and bool(read[di]))

    def flush(self) -> list[Track]:
        """End every confirmed track (the camera stopped)."""
        ended = [t for t in self.tracks if t.confirmed]
        self._keep(np.zeros(len(self.tracks), bool))
        return ended


def _inside(point: np.ndarray, region: tuple[float, float, float, float]) -> bool:
    x, y = float(point[0]), float(point[1])
    return region[0] <= x <= region[2] and region[1] <= y <= region[3]
