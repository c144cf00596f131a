"""The result stage: one place where a decoded frame becomes what subscribers get.

For each result, in the order the scheduler delivers them: the frame's age, the
camera's tracker, object events, the detections payload, then hand-off to the
outlet (the MQTT publisher). Zones, lines, snapshots and Home Assistant counts plug
in here, as further steps on the same tracked result.

It runs on the scheduler's thread, not the event loop (a hop to the loop per frame
costs more than the work); cameras are added and removed from the loop, so one lock
covers each result and each change of cameras.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from edged.config.models import EventsConfig
from edged.pipeline.events import EventBuilder
from edged.pipeline.scheduler import Result
from edged.pipeline.stats import Percentiles, Window
from edged.pipeline.tracker import Tracker, TrackUpdate
from edged.publish.contract import detections_payload

log = logging.getLogger(__name__)


class Outlet(Protocol):
    """Where results go (the MQTT publisher implements it); both are called from the scheduler's thread."""

    def publish_detections(self, camera: str, payload: bytes) -> None: ...

    def publish_event(self, camera: str, payload: bytes) -> None: ...


@dataclass
class _CameraResults:
    tracker: Tracker | None
    events: EventBuilder | None
    age_ms: Window = field(default_factory=Window)  # capture -> handed to the outlet
    last_seq: int = 0


class ResultStage:
    def __init__(self, *, device_id: str, labels: Sequence[str], run_id: str, outlet: Outlet,
                 started_mono: float) -> None:
        self.device_id = device_id
        self.started_mono = started_mono
        self.labels = labels
        self.run_id = run_id
        self.outlet = outlet
        self.first_result_mono: float | None = None
        self._cameras: dict[str, _CameraResults] = {}
        self._lock = threading.Lock()
        # CPU seconds of the scheduler thread in each step here (time.thread_time), for edged_cpu_seconds_total.
        self.cpu_s = {"track_events": 0.0, "serialise": 0.0, "publish": 0.0}

    def add_camera(self, name: str, events: EventsConfig | None) -> None:
        """``events``: track objects and publish their events with these settings; None: no events."""
        tracker = builder = None
        if events is not None:
            tracker = Tracker(events.iou, events.min_hits, events.max_missed)
            builder = EventBuilder(self.device_id, name, self.labels, self.run_id, events.update_s)
        with self._lock:
            self._cameras[name] = _CameraResults(tracker, builder)

    def remove_camera(self, name: str) -> None:
        """The camera stops: every object it was following has gone (``end`` events)."""
        with self._lock:
            camera = self._cameras.pop(name, None)
            if camera is None or camera.tracker is None or camera.events is None:
                return
            ended = camera.tracker.flush()
            events = camera.events.events(TrackUpdate(ended=ended), [], time.time(), camera.last_seq) if ended else []
        for event in events:
            self.outlet.publish_event(name, event)

    def age_ms(self, name: str) -> Percentiles:
        camera = self._cameras.get(name)
        return Percentiles.of(camera.age_ms) if camera is not None else Percentiles()

    def __call__(self, result: Result) -> None:
        with self._lock:
            self._handle(result)

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
        ids = None
        events: list[bytes] = []
        if camera is not None:
            camera.age_ms.add(age_ms)
            camera.last_seq = info.seq
            if camera.tracker is not None and camera.events is not None:
                update = camera.tracker.update(result.detections, info.ts)
                ids = update.ids.tolist()
                events = camera.events.events(update, camera.tracker.tracks, info.ts, info.seq)
        tracked = clock()
        payload = detections_payload(
            self.device_id, name, info.seq, time.time(), info.ts, (info.width, info.height),
            {"age": age_ms, **result.timing_ms}, result.detections, self.labels, ids,
        )
        serialised = clock()
        for event in events:
            self.outlet.publish_event(name, event)
        self.outlet.publish_detections(name, payload)
        cpu = self.cpu_s
        cpu["track_events"] += tracked - started
        cpu["serialise"] += serialised - tracked
        cpu["publish"] += clock() - serialised
