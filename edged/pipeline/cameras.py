"""The running cameras: each one's lane (scheduler), worker (thread) and tracker (events).

Built from a config, started, stopped, and changed in place when the config is
reloaded: cameras whose settings did not change keep running without a gap,
changed cameras restart, new ones start, removed ones stop and go ``offline``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edged.config.models import CameraConfig, Config, DetectConfig
from edged.errors import ModelError
from edged.models.yolo import class_mask
from edged.pipeline.events import EventBuilder
from edged.pipeline.scheduler import CameraLane
from edged.pipeline.tracker import Tracker
from edged.sources.camera import CameraWorker, StatusListener
from edged.sources.slot import FrameSlot

log = logging.getLogger(__name__)


@dataclass
class Camera:
    lane: CameraLane
    worker: CameraWorker
    tracker: Tracker | None
    events: EventBuilder | None


class CameraSet:
    def __init__(self, labels: list[str], run_id: str, on_status: StatusListener,
                 on_frame: Callable[[], None] | None = None) -> None:
        self.labels = labels
        self.run_id = run_id
        self.on_status = on_status
        self.on_frame = on_frame
        self.cameras: dict[str, Camera] = {}

    def _mask(self, config: Config, name: str) -> tuple[DetectConfig, np.ndarray | None]:
        detect = config.detect_for(name)
        try:
            return detect, class_mask(self.labels, detect.labels)
        except ModelError as exc:
            raise ModelError(f"cameras.{name}.detect.labels: {exc}") from None

    def check(self, config: Config) -> None:
        """Raise if ``config`` names labels the model does not have (before touching anything)."""
        for name, camera in config.cameras.items():
            if camera.enabled:
                self._mask(config, name)

    def make(self, config: Config, name: str) -> Camera:
        camera: CameraConfig = config.cameras[name]
        detect, mask = self._mask(config, name)
        pull = camera.kind == "file" and not camera.realtime
        slot = FrameSlot(name, pull=pull)
        lane = CameraLane(name, slot, camera.fps, detect, mask, priority=camera.priority)
        worker = CameraWorker(name, camera, slot, self.on_status)
        tracker = events = None
        ev = config.events
        if camera.events if camera.events is not None else ev.enabled:
            tracker = Tracker(ev.iou, ev.min_hits, ev.max_missed)
            events = EventBuilder(config.device_id, name, self.labels, self.run_id, ev.update_s)
        return Camera(lane, worker, tracker, events)

    def build(self, config: Config) -> list[CameraLane]:
        for name, camera in config.cameras.items():
            if camera.enabled:
                self.cameras[name] = self.make(config, name)
        return [c.lane for c in self.cameras.values()]

    def start(self, names: list[str] | None = None) -> None:
        for name in names if names is not None else list(self.cameras):
            camera = self.cameras[name]
            if self.on_frame is not None:
                camera.lane.slot.set_listener(self.on_frame)
            camera.worker.start()

    async def stop(self, names: list[str], timeout: float = 5.0) -> list[str]:
        """Stop cameras (their threads in parallel); returns those that did not stop in time."""
        loop = asyncio.get_running_loop()
        for name in names:
            self.cameras[name].worker.stop()
        joined = await asyncio.gather(*(loop.run_in_executor(None, self.cameras[n].worker.join, timeout)
                                        for n in names))
        return [n for n, ok in zip(names, joined, strict=True) if not ok]

    def diff(self, old: Config, new: Config) -> tuple[list[str], list[str], list[str], list[str]]:
        """(added, removed, changed, unchanged) enabled cameras."""
        before = {n for n, c in old.cameras.items() if c.enabled}
        after = {n for n, c in new.cameras.items() if c.enabled}
        changed = sorted(n for n in before & after if old.cameras[n] != new.cameras[n])
        unchanged = sorted(n for n in before & after if old.cameras[n] == new.cameras[n])
        return sorted(after - before), sorted(before - after), changed, unchanged

    def update_detect(self, config: Config, names: list[str]) -> None:
        """New labels / score thresholds apply to running cameras at once."""
        for name in names:
            detect, mask = self._mask(config, name)
            lane = self.cameras[name].lane
            lane.detect, lane.class_mask = detect, mask
