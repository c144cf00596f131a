"""Where a frame's outcome goes: each sink makes its own payloads (through ``publish.contract``) and hands them to
the outlet (the MQTT publisher). The result stage calls every sink in order for each frame, and for a camera that
stops (``result`` None: its objects' ``end`` events and counts); a sink that raises is logged, at most once a minute
per sink and camera, and the others go on. Each sink clocks its own steps into the stage's ``cpu`` seconds
(``edged_cpu_seconds_total``): ``snapshots``, ``serialise``, ``publish``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from edged.analytics.camera import FrameOutcome
from edged.analytics.events import ObjectEvent
from edged.pipeline.decoding import Result
from edged.pipeline.jpeg import JpegEncoder
from edged.pipeline.pictures import CameraPictures
from edged.publish.contract import detections_payload, dumps, event_payload
from edged.sources.demand import ALWAYS, NEVER

RECENT_EVENTS = 50  # the web page's list of the latest events


class Outlet(Protocol):
    """Where payloads go (the MQTT publisher implements it); called from the scheduler's thread."""

    def publish_detections(self, camera: str, payload: bytes) -> None: ...

    def publish_event(self, camera: str, payload: bytes) -> None: ...

    def set_retained(self, levels: Sequence[str], payload: bytes) -> None:
        """QoS 1, retained, never lost: ``<prefix>/<levels...>``; an empty payload clears the topic."""


class Sink(Protocol):
    name: str

    def __call__(self, result: Result | None, outcome: FrameOutcome) -> None: ...


class RetainedSink:
    """Counts and crossing totals that changed: retained, QoS 1."""

    name = "counts"

    def __init__(self, outlet: Outlet, cpu: dict[str, float]) -> None:
        self.outlet, self.cpu = outlet, cpu

    def __call__(self, result: Result | None, outcome: FrameOutcome) -> None:
        if not outcome.retained:
            return
        started = time.thread_time()
        for change in outcome.retained:
            value = change.value
            self.outlet.set_retained(change.levels, b"" if value is None else str(value).encode()
                                     if isinstance(value, int) else dumps(value))
        self.cpu["publish"] += time.thread_time() - started


class PicturesSink:
    """Each object's best frame and the snapshots that are due (to the encoder's thread); the page's live picture
    while it is wanted. It says, through the camera's Demand, whether pictures are wanted for snapshots."""

    name = "pictures"

    def __init__(self, pictures_of: Callable[[str], CameraPictures | None], encoder: JpegEncoder | None,
                 labels: Sequence[str], cpu: dict[str, float]) -> None:
        self.pictures_of, self.encoder, self.labels, self.cpu = pictures_of, encoder, labels, cpu

    def __call__(self, result: Result | None, outcome: FrameOutcome) -> None:
        pictures = self.pictures_of(outcome.camera)
        if pictures is None:
            return
        if result is None:  # no frame: the camera started, was retuned or stopped
            if outcome.stopped and pictures.best is not None:
                pictures.best.clear()
            return
        if pictures.best is None and result.picture is None:
            return
        started = time.thread_time()
        if pictures.best is not None and self.encoder is not None:
            moved = [c.track for c in outcome.changes] + [c.track for c in outcome.crossings] \
                if outcome.changes or outcome.crossings else ()
            for job in pictures.best.step(result.picture, outcome.tracks, outcome.update, moved):
                self.encoder.submit(job)
            pictures.demand.want_until("snapshots", ALWAYS if outcome.tracks else NEVER)
        picture = result.picture
        if picture is not None and pictures.demand.wants("live", time.monotonic()):
            shown = outcome.detections
            pictures.live.offer(picture, shown.boxes, tuple(self.labels[int(c)] for c in shown.classes),
                                shown.scores)
        self.cpu["snapshots"] += time.thread_time() - started


class EventsSink:
    """Object events, QoS 1 through the spool; the latest kept for the page."""

    name = "events"

    def __init__(self, outlet: Outlet, device_id: str, run_id: str, labels: Sequence[str],
                 cpu: dict[str, float]) -> None:
        self.outlet, self.device_id, self.run_id, self.labels, self.cpu = outlet, device_id, run_id, labels, cpu
        self.recent: deque[bytes] = deque(maxlen=RECENT_EVENTS)

    def payload(self, camera: str, event: ObjectEvent) -> bytes:
        look = event.track.look
        return event_payload(self.device_id, camera, self.run_id, event.seq, event.kind, event.track,
                             self.labels[event.track.cls], event.frame_ts, event.frame_seq, dict(event.figures),
                             look.fields() if look is not None else None, **dict(event.where))

    def __call__(self, result: Result | None, outcome: FrameOutcome) -> None:
        if not outcome.events:
            return
        clock = time.thread_time
        started = clock()
        payloads = [self.payload(outcome.camera, event) for event in outcome.events]
        serialised = clock()
        for payload in payloads:
            self.outlet.publish_event(outcome.camera, payload)
        self.recent.extend(payloads)
        self.cpu["serialise"] += serialised - started
        self.cpu["publish"] += clock() - serialised


class DetectionsSink:
    """The frame's detections (at or above the camera's min_score, with their track ids), QoS 0."""

    name = "detections"

    def __init__(self, outlet: Outlet, device_id: str, labels: Sequence[str], cpu: dict[str, float]) -> None:
        self.outlet, self.device_id, self.labels, self.cpu = outlet, device_id, labels, cpu

    def __call__(self, result: Result | None, outcome: FrameOutcome) -> None:
        if result is None:
            return
        clock = time.thread_time
        started = clock()
        info = result.info
        payload = detections_payload(
            self.device_id, outcome.camera, info.seq, time.time(), info.ts, (info.width, info.height),
            {"age": outcome.age_ms, **result.timing_ms}, outcome.detections, self.labels, outcome.track_ids,
            info.gate)
        serialised = clock()
        self.outlet.publish_detections(outcome.camera, payload)
        self.cpu["serialise"] += serialised - started
        self.cpu["publish"] += clock() - serialised


def standard_sinks(outlet: Outlet, device_id: str, run_id: str, labels: Sequence[str],
                   pictures_of: Callable[[str], CameraPictures | None], encoder: JpegEncoder | None,
                   cpu: dict[str, float]) -> tuple[list[Sink], EventsSink]:
    """The daemon's sinks in their order (counts and totals, pictures, events, detections) and the events sink
    (which keeps the latest events for the page). ``encoder``: None when snapshots are off."""
    events = EventsSink(outlet, device_id, run_id, labels, cpu)
    return [RetainedSink(outlet, cpu), PicturesSink(pictures_of, encoder, labels, cpu), events,
            DetectionsSink(outlet, device_id, labels, cpu)], events
