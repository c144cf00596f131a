"""The result stage: one place where a decoded frame becomes what subscribers get.

For each result, in the order the scheduler delivers them: the frame's age, then the camera's analytics
(``CameraAnalytics.step``: masks, tracker, zones and lines, events, counts, what it wants next), then every sink in
order (counts and totals, pictures, events, detections). A camera that starts publishes its counts and totals as
they stand; one that stops hands its objects' ``end`` events and final counts to the same sinks.

It runs on the scheduler's thread, not the event loop (a hop to the loop per frame costs more than the work);
cameras are added and removed from the loop, so one lock covers each result and each change of cameras.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from edged.analytics.camera import Counted, FrameOutcome, Retained, at_least
from edged.config.models import CameraConfig
from edged.logs import Every
from edged.looks import Looks
from edged.models.heads.common import empty
from edged.pipeline.cameras import Camera
from edged.pipeline.decoding import Result
from edged.pipeline.sinks import Sink
from edged.pipeline.stats import Percentiles

log = logging.getLogger(__name__)


class ResultStage:
    def __init__(self, *, started_mono: float, sinks: Sequence[Sink], cpu: dict[str, float],
                 looks: Looks | None = None) -> None:
        self.started_mono = started_mono
        self.looks = looks  # answers of second looks are applied to a camera's tracks before its step
        self.sinks = list(sinks)
        self.first_result_mono: float | None = None
        self._cameras: dict[str, Camera] = {}
        self._lock = threading.Lock()
        self._failed = Every(60.0)  # a sink that raises: logged at most once a minute per sink and camera
        # CPU seconds of the scheduler thread in each step here (time.thread_time), for edged_cpu_seconds_total.
        self.cpu_s = cpu
        cpu.update({key: 0.0 for key in ("track_events", "serialise", "publish", "snapshots") if key not in cpu})

    def add_camera(self, camera: Camera) -> None:
        """Follow the camera's objects; publish its counts and totals as they stand."""
        with self._lock:
            self._cameras[camera.name] = camera
            self._emit(None, _only(camera.name, camera.analytics.start()))

    def retune(self, name: str, config: CameraConfig, detect_labels: Sequence[str]) -> None:
        """New zones, lines and object masks for a running camera (a reload), under the results' lock: objects keep
        their identities, counts start over."""
        with self._lock:
            camera = self._cameras.get(name)
            if camera is not None:
                self._emit(None, _only(name, camera.retune(config, detect_labels)))

    def remove_camera(self, name: str, forget: bool = False) -> None:
        """The camera stops: every object it was following has gone (``end`` events), counts go to 0; ``forget``:
        it left the config, and its count topics are cleared instead."""
        with self._lock:
            camera = self._cameras.pop(name, None)
            if camera is not None:
                self._emit(None, camera.analytics.stop(time.time(), forget))

    def counted(self) -> dict[str, Counted]:
        """What each camera counts now: zone (and ``all``) -> labels, line -> labels (from the event loop)."""
        with self._lock:
            return {name: camera.analytics.counted() for name, camera in self._cameras.items()}

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

    def _handle(self, result: Result) -> None:
        started = time.thread_time()
        now = time.monotonic()
        if self.first_result_mono is None:
            self.first_result_mono = now
            log.info("first detections published %.2f s after start", now - self.started_mono)
        info = result.info
        name = result.lane.name
        camera = self._cameras.get(name)
        if camera is None:  # removed while its batch was in flight: what it saw still goes out
            shown, _ = at_least(result.detections, None, result.lane.detect.min_score)
            outcome = FrameOutcome(name, info.seq, info.ts, shown, None)
        else:
            if self.looks is not None:
                self.looks.before(name, camera.analytics.tracker.tracks)
            outcome = camera.analytics.step(info.seq, info.ts, result.detections, result.lane.detect.min_score,
                                            result.region, now)
        outcome.age_ms = (now - info.mono) * 1e3
        if camera is not None:
            camera.age_ms.add(outcome.age_ms)
        self.cpu_s["track_events"] += time.thread_time() - started
        self._emit(result, outcome)
        picture, ring = result.picture, result.lane.pictures
        if picture is not None and ring is not None:
            ring.done(picture)  # every sink has used it (what outlives the result was copied out)

    def _emit(self, result: Result | None, outcome: FrameOutcome) -> None:
        for sink in self.sinks:
            try:
                sink(result, outcome)
            except Exception:
                if self._failed.due(f"{sink.name}/{outcome.camera}"):
                    log.exception("the %s sink failed on camera %s (logged once a minute; the other sinks go "
                                  "on)", sink.name, outcome.camera)


def _only(camera: str, retained: list[Retained]) -> FrameOutcome:
    """An outcome with no frame: counts and totals only (a camera starts or its areas change)."""
    return FrameOutcome(camera, 0, time.time(), empty(), None, retained=retained)
