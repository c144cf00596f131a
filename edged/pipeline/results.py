"""The result stage: one place where a decoded frame becomes what subscribers get.

For each result, in the order the scheduler delivers them: the frame's age, object
masks, the camera's tracker (which sees the low-score detections too), zones and lines,
object events, retained counts and crossing totals, the detections payload (the
detections at or above the camera's ``min_score``), then hand-off to the outlet (the
MQTT publisher).

It runs on the scheduler's thread, not the event loop (a hop to the loop per frame
costs more than the work); cameras are added and removed from the loop, so one lock
covers each result and each change of cameras.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edged.config.models import CameraConfig, EventsConfig
from edged.models.yolo import Detections
from edged.pipeline.events import EventBuilder
from edged.pipeline.jpeg import JpegEncoder
from edged.pipeline.pictures import LiveFrame, PictureRing
from edged.pipeline.scheduler import Result
from edged.pipeline.snapshots import BestFrames
from edged.pipeline.stats import Percentiles, Window
from edged.pipeline.tallies import Tallies
from edged.pipeline.tracker import Tracker, TrackUpdate
from edged.pipeline.zones import ALL, CameraAreas, Crossing, ZoneChange, drop_masked
from edged.publish.contract import detections_payload
from edged.publish.homeassistant import Counted

log = logging.getLogger(__name__)


class Attention(Protocol):
    """The camera's motion gate, as the result stage sees it."""

    def look_until(self, mono: float) -> None: ...


CONFIRM_S = 1.0  # how long the gate lets frames through for an object that waits to be confirmed
RECENT_EVENTS = 50  # the web page's list of the latest events


class Outlet(Protocol):
    """Where results go (the MQTT publisher implements it); called from the scheduler's thread."""

    def publish_detections(self, camera: str, payload: bytes) -> None: ...

    def publish_event(self, camera: str, payload: bytes) -> None: ...

    def set_retained(self, levels: Sequence[str], payload: bytes) -> None:
        """QoS 1, retained, never lost: ``<prefix>/<levels...>``; an empty payload clears the topic."""


@dataclass
class _CameraResults:
    tracker: Tracker
    areas: CameraAreas
    events: EventBuilder | None
    attention: Attention | None = None
    pictures: PictureRing | None = None
    best: BestFrames | None = None  # snapshots: each object's best frame
    live: LiveFrame = field(default_factory=LiveFrame)  # the page's live picture
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # what was published last
    age_ms: Window = field(default_factory=Window)  # capture -> handed to the outlet
    last_seq: int = 0


class ResultStage:
    def __init__(self, *, device_id: str, labels: Sequence[str], run_id: str, outlet: Outlet,
                 started_mono: float, tallies: Tallies | None = None, encoder: JpegEncoder | None = None) -> None:
        self.device_id = device_id
        self.encoder = encoder  # snapshots: None when they are off
        self.recent: deque[bytes] = deque(maxlen=RECENT_EVENTS)  # the latest event payloads, for the page
        self.started_mono = started_mono
        self.labels = labels
        self.run_id = run_id
        self.outlet = outlet
        self.tallies = tallies or Tallies(None)
        self.first_result_mono: float | None = None
        self._cameras: dict[str, _CameraResults] = {}
        self._lock = threading.Lock()
        # CPU seconds of the scheduler thread in each step here (time.thread_time), for edged_cpu_seconds_total.
        self.cpu_s = {"track_events": 0.0, "serialise": 0.0, "publish": 0.0, "snapshots": 0.0}

    def add_camera(self, name: str, config: CameraConfig, events: EventsConfig, publish_events: bool,
                   detect_labels: Sequence[str], attention: Attention | None = None,
                   pictures: PictureRing | None = None) -> None:
        """Track the camera's objects; publish their events when ``publish_events``; publish its counts now.
        ``attention``: the camera's gate, asked to let frames through while a new object waits to be confirmed.
        ``pictures``: the camera's picture ring (the live picture; with an encoder, the snapshots)."""
        tracker = Tracker(events.iou, events.min_hits, events.max_missed, events.lost_s)
        builder = EventBuilder(self.device_id, name, self.labels, self.run_id, events.update_s) \
            if publish_events else None
        best = BestFrames(name, self.labels) if self.encoder is not None and pictures is not None else None
        camera = _CameraResults(tracker, CameraAreas(config, detect_labels), builder, attention, pictures, best)
        with self._lock:
            self._cameras[name] = camera
            self._publish_counts(name, camera, restart=True)
            self._publish_totals(name, camera.areas)

    def set_areas(self, name: str, config: CameraConfig, detect_labels: Sequence[str]) -> None:
        """New zones, lines and object masks for a running camera (a reload): objects keep their identities."""
        with self._lock:
            camera = self._cameras.get(name)
            if camera is None:
                return
            camera.areas = CameraAreas(config, detect_labels)
            for track in camera.tracker.tracks:
                track.zones = set()
            self._publish_counts(name, camera, restart=True)
            self._publish_totals(name, camera.areas)

    def remove_camera(self, name: str, forget: bool = False) -> None:
        """The camera stops: every object it was following has gone (``end`` events), counts go to 0.

        ``forget``: the camera left the config: its count topics are cleared instead.
        """
        with self._lock:
            camera = self._cameras.pop(name, None)
            if camera is None:
                return
            if camera.best is not None:
                camera.best.clear()
            ended = camera.tracker.flush()
            events: list[bytes] = []
            if camera.events is not None and ended:
                changes, _ = camera.areas.step([], ended, self.labels, time.time())
                events = camera.events.events(TrackUpdate(ended=ended), [], time.time(), camera.last_seq, changes)
            if forget:
                for topic in self.tallies.count_topics(name):
                    self.outlet.set_retained((name, *topic.split("/")), b"")
                self.tallies.set_count_topics(name, set())
            else:
                self._publish_counts(name, camera)
        for event in events:
            self.outlet.publish_event(name, event)

    def live(self, name: str) -> tuple[PictureRing, LiveFrame] | None:
        """The camera's picture ring and live picture (for the page); None: no such camera or no pictures."""
        camera = self._cameras.get(name)
        if camera is None or camera.pictures is None:
            return None
        return camera.pictures, camera.live

    def counted(self) -> dict[str, Counted]:
        """What each camera counts now: zone (and ``all``) -> labels, line -> labels (from the event loop)."""
        with self._lock:
            return {name: Counted({zone: frozenset(labels) for zone, labels in camera.counts.items()},
                                  {line: frozenset(labels) for line, labels in
                                   _line_labels(camera.areas, self.tallies.line_totals(name)).items()})
                    for name, camera in self._cameras.items()}

    def restart_age(self, name: str) -> None:
        """Detection switched back on: ages from before (and the frame that waited while it was off) say nothing
        of now, and a gated camera adds few samples, so one stale age would hold the p95 for many minutes."""
        with self._lock:
            camera = self._cameras.get(name)
            if camera is not None:
                camera.age_ms.clear()

    def age_ms(self, name: str) -> Percentiles:
        camera = self._cameras.get(name)
        return Percentiles.of(camera.age_ms) if camera is not None else Percentiles()

    def __call__(self, result: Result) -> None:
        with self._lock:
            self._handle(result)

    # -- per result ------------------------------------------------------------------

    def _handle(self, result: Result) -> None:
        clock = time.thread_time
        started = clock()
        now_mono = time.monotonic()
        if self.first_result_mono is None:
            self.first_result_mono = now_mono
            log.info("first detections published %.2f s after start", now_mono - self.started_mono)
        info = result.info
        name = result.lane.name
        age_ms = (now_mono - info.mono) * 1e3
        camera = self._cameras.get(name)
        dets = result.detections
        ids = None
        events: list[bytes] = []
        min_score = result.lane.detect.min_score
        if camera is not None:
            camera.age_ms.add(age_ms)
            camera.last_seq = info.seq
            dets = drop_masked(dets, camera.areas.masks)
            update = camera.tracker.update(dets, info.ts, min_score, result.region)
            live = camera.tracker.tracks
            changes, crossings = camera.areas.step(live, update.ended, self.labels, info.ts)
            for crossing in crossings:
                self._crossed(name, crossing.line, self.labels[crossing.track.cls], crossing.direction)
            if camera.events is not None:
                events = camera.events.events(update, live, info.ts, info.seq, changes, crossings)
            if update.started or update.ended or changes:
                self._publish_counts(name, camera)
            if camera.attention is not None and any(not track.confirmed for track in live):
                camera.attention.look_until(now_mono + CONFIRM_S)
            ids = update.ids
        published = _at_least(dets, min_score)
        shown = dets if published is None else published.detections
        tracked = pictured = clock()
        if camera is not None and (camera.best is not None or result.picture is not None):
            self._pictures(camera, result, update, changes, crossings, shown)
            pictured = clock()
        payload = detections_payload(
            self.device_id, name, info.seq, time.time(), info.ts, (info.width, info.height),
            {"age": age_ms, **result.timing_ms}, shown, self.labels,
            None if ids is None else (ids if published is None else ids[published.index]).tolist(), info.gate,
        )
        serialised = clock()
        for event in events:
            self.outlet.publish_event(name, event)
        self.recent.extend(events)
        self.outlet.publish_detections(name, payload)
        cpu = self.cpu_s
        cpu["track_events"] += tracked - started
        cpu["snapshots"] += pictured - tracked
        cpu["serialise"] += serialised - pictured
        cpu["publish"] += clock() - serialised

    def _pictures(self, camera: _CameraResults, result: Result, update: TrackUpdate, changes: Sequence[ZoneChange],
                  crossings: Sequence[Crossing], shown: Detections) -> None:
        """Keep the objects' best frames and hand the snapshots that are due to the encoder; the page's live
        picture while it is wanted."""
        if camera.best is not None and self.encoder is not None:
            moved = [c.track for c in changes] + [c.track for c in crossings] if changes or crossings else ()
            for job in camera.best.step(result.picture, camera.tracker.tracks, update, moved):
                self.encoder.submit(job)
            if camera.pictures is not None:
                camera.pictures.keep = bool(camera.tracker.tracks)
        picture = result.picture
        if picture is not None and camera.pictures is not None and time.monotonic() < camera.pictures.live_until:
            camera.live.offer(picture, shown.boxes, tuple(self.labels[int(c)] for c in shown.classes), shown.scores)

    # -- counts and totals -----------------------------------------------------------

    def _publish_counts(self, name: str, camera: _CameraResults, restart: bool = False) -> None:
        """Publish the counts that changed; ``restart``: all of them, and clear topics no longer counted."""
        counts = camera.areas.counts(camera.tracker.tracks, self.labels)
        topics = {f"{zone}/{label}" for zone, labels in counts.items() for label in labels}
        if restart:
            known = self.tallies.count_topics(name)
            for stale in sorted(known - topics):
                zone, _, label = stale.partition("/")
                if zone == ALL or zone in counts:
                    counts.setdefault(zone, {})[label] = 0  # a label once seen: 0 now, not a stale value
                    topics.add(stale)
                else:
                    self.outlet.set_retained((name, zone, label), b"")  # the zone is gone
            camera.counts = {}
        else:
            topics |= self.tallies.count_topics(name)
        for zone, labels in counts.items():
            before = camera.counts.get(zone, {})
            for label, value in labels.items():
                if before.get(label) != value:
                    self.outlet.set_retained((name, zone, label), str(value).encode())
            for label in set(before) - set(labels):
                if before[label]:
                    self.outlet.set_retained((name, zone, label), b"0")
                    labels[label] = 0
        camera.counts = counts
        self.tallies.set_count_topics(name, topics)

    def _publish_totals(self, name: str, areas: CameraAreas) -> None:
        """Every line's totals as they stand (from the state file), 0 for labels not crossed yet."""
        self.tallies.forget_lines(name, set(areas.lines))
        totals = self.tallies.line_totals(name)
        for line, labels in _line_labels(areas, totals).items():
            for label in sorted(labels):
                for direction in ("in", "out"):
                    value = totals.get(line, {}).get(label, {}).get(direction, 0)
                    self.outlet.set_retained((name, line, label, direction), str(value).encode())

    def _crossed(self, name: str, line: str, label: str, direction: str) -> None:
        total = self.tallies.add_crossing(name, line, label, direction)
        self.outlet.set_retained((name, line, label, direction), str(total).encode())


def _line_labels(areas: CameraAreas, totals: dict[str, dict[str, dict[str, int]]]) -> dict[str, set[str]]:
    """Each line's labels: those it counts, and those it has totals for (kept across restarts)."""
    return {line: set(config.labels) | set(totals.get(line, {})) for line, config in areas.lines.items()}


@dataclass
class _Published:
    detections: Detections
    index: np.ndarray


def _at_least(dets: Detections, min_score: float) -> _Published | None:
    """The detections at or above ``min_score`` (the rest were decoded for the tracker); None: all are."""
    keep = dets.scores >= min_score
    if keep.all():
        return None
    index = np.flatnonzero(keep)
    return _Published(Detections(dets.boxes[index], dets.scores[index], dets.classes[index], dets.finite), index)
