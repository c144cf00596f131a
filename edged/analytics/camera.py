"""One camera's analytics as one object: ``step`` takes a frame's detections and returns what came of it.

The chain, in order: object masks, the tracker (which sees the low-score detections too), zones and lines, the
crossing totals (kept across restarts by ``Tallies``), object events, the counts that changed, and what the camera
wants next (``Demand``: frames while a new object waits to be confirmed). No threads, no I/O but the tallies' file,
no payloads: the result stage hands the ``FrameOutcome`` to its sinks, and the bench calls the same ``step``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edged.analytics.events import EventBuilder, ObjectEvent
from edged.analytics.looked import PENDING, REJECTED, UNVERIFIED, Look
from edged.analytics.stays import StayFigures
from edged.analytics.tallies import Tallies
from edged.analytics.tracker import Track, Tracker, TrackUpdate
from edged.analytics.zones import ALL, CameraAreas, Crossing, ZoneChange, drop_masked
from edged.config.models import CameraConfig, EventsConfig
from edged.models.heads.common import empty
from edged.models.yolo import Detections
from edged.sources.demand import Demand

CONFIRM_S = 1.0  # how long the gate lets frames through for an object that waits to be confirmed


@dataclass(frozen=True)
class Counted:
    """What a camera counts: zone (or ``all``) -> labels, line -> labels, and the zones whose stays are timed
    (every named zone) and whose speeds are measured (for Home Assistant's discovery)."""

    zones: Mapping[str, frozenset[str]]
    lines: Mapping[str, frozenset[str]]
    speeds: frozenset[str] = frozenset()
    looked: frozenset[str] = frozenset()  # labels a classifier or the colours look at (a ``look`` topic each)

    @property
    def labels(self) -> frozenset[str]:
        return frozenset().union(*self.zones.values(), *self.lines.values())


@dataclass(frozen=True)
class Retained:
    """A retained topic's new value: ``<camera>/<zone>/<label>`` (a count), ``<camera>/<line>/<label>/<in|out>``
    (a crossing total), ``<camera>/<zone>/<label>/<dwell|speed>`` (the last stays' figures); ``value`` None clears
    the topic."""

    levels: tuple[str, ...]
    value: int | Mapping[str, float | int] | None  # a count or total; a zone's stay figures (JSON)


@dataclass
class FrameOutcome:
    camera: str
    seq: int
    ts: float  # the frame's wall-clock capture time
    detections: Detections  # at or above the camera's min_score (the rest were for the tracker)
    track_ids: list[int] | None  # the track of each detection; None: no analytics for this camera
    update: TrackUpdate = field(default_factory=TrackUpdate)
    tracks: Sequence[Track] = ()
    changes: Sequence[ZoneChange] = ()
    crossings: Sequence[Crossing] = ()
    events: list[ObjectEvent] = field(default_factory=list)
    retained: list[Retained] = field(default_factory=list)  # counts and totals that changed
    age_ms: float = 0.0  # capture to here (set by the result stage)
    stopped: bool = False  # the camera stopped: no frame, its objects ended


class CameraAnalytics:
    def __init__(self, name: str, config: CameraConfig, events: EventsConfig, publish_events: bool,
                 detect_labels: Sequence[str], labels: Sequence[str], tallies: Tallies, demand: Demand) -> None:
        self.name = name
        self.labels = labels
        self.tallies = tallies
        self.demand = demand
        self.tracker = Tracker(events.iou, events.min_hits, events.max_missed, events.lost_s)
        self.areas = CameraAreas(config, detect_labels)
        self.events = EventBuilder(events.update_s) if publish_events else None
        self.counts: dict[str, dict[str, int]] = {}  # what was published last
        self.last_seq = 0
        self.stays = StayFigures({name: zone.stays for name, zone in config.zones.items()})
        # label index -> how long a new object waits for the verifier's verdict before it is published unverified
        self.verify = {labels.index(label): v.timeout_s for label, v in config.verify.items() if label in labels}
        self.looking = bool(config.verify or config.classify or config.colors)
        self.looked = frozenset(label for look in config.classify for label in (look.labels or detect_labels or labels))
        self.looked |= frozenset(config.colors.labels) if config.colors is not None else frozenset()
        self.look_topics: set[str] = set()  # labels whose look topic was published (cleared when the camera goes)

    def start(self) -> list[Retained]:
        """Every count as it stands (stale ones cleared or zeroed) and every line's totals from the state file."""
        return self._count_changes(restart=True) + self._totals()

    def set_areas(self, config: CameraConfig, detect_labels: Sequence[str]) -> list[Retained]:
        """New zones, lines and masks (a reload): objects keep their identities, counts start over."""
        self.areas = CameraAreas(config, detect_labels)
        self.stays = StayFigures({name: zone.stays for name, zone in config.zones.items()})
        for track in self.tracker.tracks:
            track.zones = set()
        return self.start()

    def step(self, seq: int, ts: float, detections: Detections, min_score: float,
             region: tuple[float, float, float, float] | None, now: float) -> FrameOutcome:
        self.last_seq = seq
        dets = drop_masked(detections, self.areas.masks)
        update = self.tracker.update(dets, ts, min_score, region)
        live = self.tracker.tracks
        looked: list[Track] = []
        retained_looks: list[Retained] = []
        if self.looking:
            looked = self._held(update, live, now)
            retained_looks = [self._look(track, ts) for track in looked]
        changes, crossings = self.areas.step(live, update.ended, self.labels, ts)
        retained = [self._crossed(c) for c in crossings] + retained_looks
        events = self.events.events(update, live, ts, seq, changes, crossings, looked) \
            if self.events is not None else []
        if update.started or update.ended or changes:
            retained += self._count_changes()
            retained += [Retained((self.name, *levels), figures)
                         for levels, figures in self.stays.left(changes, self.labels)]
        if any(not track.confirmed for track in live):
            self.demand.want_until("confirm", now + CONFIRM_S)
        if self.verify:
            _hide(update.ids, live)
        shown, ids = at_least(dets, update.ids, min_score)
        return FrameOutcome(self.name, seq, ts, shown, ids, update, live, changes, crossings, events, retained)

    def _held(self, update: TrackUpdate, live: Sequence[Track], now: float) -> list[Track]:
        """The second look's part: new objects of a verified label wait for the verdict (``Look.hidden``) and are
        announced when it comes, or unverified when no look answered in time (the looks are behind; an object a
        look did not find waits for the next look); a hidden object's end is no event; objects whose sub-label or
        colours changed get an ``update`` event (returned)."""
        if update.ended:
            update.ended = [t for t in update.ended if t.look is None or not t.look.hidden]
        for track in update.started:
            if track.cls in self.verify and track.look is None:
                track.look = Look(verdict=PENDING, since=now)
            elif track.cls in self.verify and not track.look.verdict:  # type: ignore[union-attr]
                track.look.verdict, track.look.since = PENDING, now  # type: ignore[union-attr]
        started = [t for t in update.started if t.look is None or not t.look.hidden]
        looked = []
        for track in live:
            look = track.look
            if look is None:
                continue
            if look.verdict == PENDING and not look.doubted and now - look.since >= self.verify.get(track.cls, 0.0):
                look.verdict, look.released = UNVERIFIED, True
            if look.released:
                look.released = look.changed = False
                if track.confirmed and track not in started:
                    started.append(track)
            elif look.changed and track.public and track not in started:
                look.changed = False
                looked.append(track)
        update.started = started
        return looked

    def stop(self, now_ts: float, forget: bool) -> FrameOutcome:
        """The camera stops: every object it followed has gone (``end`` events); counts go to 0, or, when it left
        the config (``forget``), its count topics are cleared."""
        ended = [t for t in self.tracker.flush() if t.look is None or not t.look.hidden]
        events: list[ObjectEvent] = []
        stays: list[Retained] = []
        if ended:
            changes, _ = self.areas.step([], ended, self.labels, now_ts)
            if self.events is not None:
                events = self.events.events(TrackUpdate(ended=ended), [], now_ts, self.last_seq, changes)
            if not forget:
                stays = [Retained((self.name, *levels), figures) for levels, figures in self.stays.left(changes,
                                                                                                      self.labels)]
        if forget:
            retained = [Retained((self.name, *topic.split("/")), None)
                        for topic in sorted(self.tallies.count_topics(self.name))]
            retained += [Retained((self.name, label, "look"), None) for label in sorted(self.look_topics)]
            self.tallies.set_count_topics(self.name, set())
        else:
            retained = self._count_changes() + stays
        return FrameOutcome(self.name, self.last_seq, now_ts, empty(), None, TrackUpdate(ended=ended), (), (), (),
                            events, retained, stopped=True)

    def counted(self) -> Counted:
        return Counted({zone: frozenset(labels) for zone, labels in self.counts.items()},
                       {line: frozenset(labels) for line, labels in self.line_labels().items()},
                       frozenset(name for name, zone in self.areas.zones.items() if zone.metres is not None),
                       self.looked)

    def _look(self, track: Track, ts: float) -> Retained:
        """The retained ``<camera>/<label>/look``: what a second look made of this object, now the latest."""
        label = self.labels[track.cls]
        self.look_topics.add(label)
        look = track.look
        assert look is not None
        return Retained((self.name, label, "look"), {"track": track.id, "ts": round(ts, 3), **look.fields()})

    def line_labels(self) -> dict[str, set[str]]:
        """Each line's labels: those it counts, and those it has totals for (kept across restarts)."""
        totals = self.tallies.line_totals(self.name)
        return {line: set(config.labels) | set(totals.get(line, {})) for line, config in self.areas.lines.items()}

    # -- counts and totals -----------------------------------------------------------

    def _count_changes(self, restart: bool = False) -> list[Retained]:
        """The counts that changed; ``restart``: all of them, and the topics no longer counted cleared (a zone
        gone) or zeroed (a label once seen)."""
        out: list[Retained] = []
        counts = self.areas.counts(self.tracker.tracks, self.labels)
        topics = {f"{zone}/{label}" for zone, labels in counts.items() for label in labels}
        if restart:
            for stale in sorted(self.tallies.count_topics(self.name) - topics):
                zone, _, label = stale.partition("/")
                if zone == ALL or zone in counts:
                    counts.setdefault(zone, {})[label] = 0
                    topics.add(stale)
                else:
                    out.append(Retained((self.name, zone, label), None))
            self.counts = {}
        else:
            topics |= self.tallies.count_topics(self.name)
        for zone, labels in counts.items():
            before = self.counts.get(zone, {})
            for label, value in labels.items():
                if before.get(label) != value:
                    out.append(Retained((self.name, zone, label), value))
            for label in set(before) - set(labels):
                if before[label]:
                    out.append(Retained((self.name, zone, label), 0))
                    labels[label] = 0
        self.counts = counts
        self.tallies.set_count_topics(self.name, topics)
        return out

    def _totals(self) -> list[Retained]:
        self.tallies.forget_lines(self.name, set(self.areas.lines))
        totals = self.tallies.line_totals(self.name)
        return [Retained((self.name, line, label, direction),
                         totals.get(line, {}).get(label, {}).get(direction, 0))
                for line, labels in self.line_labels().items() for label in sorted(labels)
                for direction in ("in", "out")]

    def _crossed(self, crossing: Crossing) -> Retained:
        label = self.labels[crossing.track.cls]
        total = self.tallies.add_crossing(self.name, crossing.line, label, crossing.direction)
        return Retained((self.name, crossing.line, label, crossing.direction), total)


def _hide(ids: np.ndarray, live: Sequence[Track]) -> None:
    """Detections of objects the verifier holds back carry no track id (-1: rejected, not published; 0: waiting)."""
    for track in live:
        if track.look is not None and track.look.hidden:
            ids[ids == track.id] = -1 if track.look.verdict == REJECTED else 0


def at_least(dets: Detections, ids: np.ndarray | None, min_score: float) -> tuple[Detections, list[int] | None]:
    """The detections at or above ``min_score`` and their track ids (the rest were decoded for the tracker); those of
    objects the verifier rejected (id -1) are not published."""
    keep = dets.scores >= min_score
    if ids is not None and len(ids) and ids.min() < 0:
        keep &= ids >= 0
    if keep.all():
        return dets, None if ids is None else ids.tolist()
    index = np.flatnonzero(keep)
    shown = dets.take(index)
    return shown, None if ids is None else ids[index].tolist()
