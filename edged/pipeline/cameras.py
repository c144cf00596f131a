"""The running cameras, one runtime object each (``Camera``): its worker (the thread that reads and decodes),
slot and lane (the scheduler's view), motion gate, analytics, pictures, the Demand that flows back from the later
stages to the earlier ones, its MQTT controls and its age window. Adding a camera is ``make_camera``; removing one
is dropping that object; a retune (SIGHUP with new zones, lines or masks) is one call on it.

Only the Pipeline builds them: from a config, started and stopped, changed in place on a reload (``diff``):
cameras whose settings did not change keep running without a gap, changed ones restart, new ones start, removed
ones stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edged.analytics.camera import CameraAnalytics, Retained
from edged.analytics.gate import CameraGate, TamperListener
from edged.analytics.tallies import Tallies
from edged.config.models import CameraConfig, Config, DetectConfig
from edged.errors import ModelError
from edged.models.yolo import class_mask
from edged.pipeline.lanes import CameraLane
from edged.pipeline.pictures import CameraPictures, PictureRing
from edged.pipeline.snapshots import BestFrames
from edged.pipeline.stats import Window
from edged.platform import device_model
from edged.sources.camera import CameraWorker
from edged.sources.demand import Demand
from edged.sources.gstreamer import rpi_decoder
from edged.sources.slot import FrameSlot
from edged.sources.state import StatusListener

log = logging.getLogger(__name__)


@dataclass
class Camera:
    name: str
    lane: CameraLane
    worker: CameraWorker
    gate: CameraGate
    analytics: CameraAnalytics
    demand: Demand
    pictures: CameraPictures | None = None  # None: neither snapshots nor the page
    controls: dict[str, bool] = field(default_factory=dict)  # detect, motion: as set over MQTT
    age_ms: Window = field(default_factory=Window)  # capture -> handed to the sinks

    def retune(self, config: CameraConfig, detect_labels: Sequence[str]) -> list[Retained]:
        """New zones, lines and masks, in place (the result stage calls it under its lock): the motion gate's masks
        and the analytics' areas; the counts as they now stand."""
        self.gate.set_masks(config)
        return self.analytics.set_areas(config, detect_labels)


@dataclass(frozen=True)
class ConfigDiff:
    added: list[str]
    removed: list[str]
    changed: list[str]
    unchanged: list[str]
    retuned: list[str] = field(default_factory=list)  # zones, lines or masks changed: applied without a restart

    def describe(self) -> str:
        """'1 camera(s) ran on untouched, added x, removed y, restarted z'."""
        parts = [f"{len(self.unchanged)} camera(s) ran on untouched"]
        parts += [f"{verb} {', '.join(names)}" for verb, names in
                  (("added", self.added), ("removed", self.removed), ("restarted", self.changed),
                   ("new zones, lines or masks for", self.retuned)) if names]
        return ", ".join(parts)


def detect_settings(config: Config, name: str, labels: Sequence[str]) -> tuple[DetectConfig, np.ndarray | None]:
    """A camera's detection settings and its class mask; raises naming the camera on an unknown label."""
    detect = config.detect_for(name)
    try:
        return detect, class_mask(list(labels), detect.labels)
    except ModelError as exc:
        raise ModelError(f"cameras.{name}.detect.labels: {exc}") from None


def check_labels(config: Config, labels: Sequence[str]) -> None:
    """Raise if ``config`` names labels the model does not have, or a zone, line or second look names a label its
    camera does not detect (before touching anything)."""
    known = set(labels)
    for name, camera in config.cameras.items():
        if not camera.enabled:
            continue
        detect, _ = detect_settings(config, name, labels)
        where = f"cameras.{name}"
        areas = [(f"{where}.zones.{n}.labels", z.labels) for n, z in camera.zones.items()]
        areas += [(f"{where}.lines.{n}.labels", ln.labels) for n, ln in camera.lines.items()]
        areas += [(f"{where}.classify[{i}].labels", look.labels) for i, look in enumerate(camera.classify)]
        areas += [(f"{where}.verify", list(camera.verify))]
        areas += [(f"{where}.colors.labels", camera.colors.labels)] if camera.colors is not None else []
        for area, wanted in areas:
            for label in wanted:
                if label not in known:
                    raise ModelError(f"{area}: label '{label}' is not one of the model's {len(known)} labels")
                if detect.labels and label not in detect.labels:
                    raise ModelError(f"{area}: '{label}' is not among the labels this camera detects "
                                     f"({', '.join(detect.labels)}): it would never be seen")


def resolve_decoder(name: str, camera: CameraConfig, board: str | None = None) -> CameraConfig:
    """``decoder: rpi`` where this board has no hardware decoder for the codec: software, and say so."""
    if camera.decoder != "rpi" or camera.kind == "libcamera":
        return camera
    hardware, line = rpi_decoder(device_model() if board is None else board, camera.codec)
    log.info("camera %s: decoder: rpi: %s", name, line)
    return camera if hardware else camera.model_copy(update={"decoder": "software"})


def make_camera(config: Config, name: str, labels: Sequence[str], tallies: Tallies, on_status: StatusListener,
                on_frame: Callable[[], None], on_tamper: TamperListener, picture_depth: int = 0,
                input_fit: tuple[int, int, str] | None = None) -> Camera:
    """``picture_depth``: buffers in the picture ring (0: no pictures, neither snapshots nor the page).
    ``input_fit``: the model's input width, height and resize; with it, frames held as planes are held no larger
    than the scheduler uses them (``CameraLane.held_scale``)."""
    camera = resolve_decoder(name, config.cameras[name])
    detect, mask = detect_settings(config, name, labels)
    demand = Demand()
    slot = FrameSlot(name, pull=camera.kind == "file" and not camera.realtime)
    slot.set_listener(on_frame)
    pictures = None
    if picture_depth:
        best = BestFrames(name, labels) if config.snapshots.enabled else None
        pictures = CameraPictures(PictureRing(config.snapshots.width, picture_depth), demand, best)
    lane = CameraLane(name, slot, camera.fps, detect, mask, priority=camera.priority, regions=camera.motion.regions,
                      region_margin=camera.motion.region_margin, pictures=pictures.ring if pictures else None,
                      demand=demand, appearance=config.events.appearance, tiles=camera.tiles)
    gate = CameraGate(name, camera, on_tamper, demand)
    wants_events = config.events.enabled if camera.events is None else camera.events
    analytics = CameraAnalytics(name, config.cameras[name], config.events, wants_events, detect.labels, labels,
                                tallies, demand)
    scale_for = None
    if input_fit is not None:
        dst_w, dst_h, resize = input_fit
        picture_width = pictures.ring.width if pictures is not None else None

        def scale_for(width: int, height: int) -> int:
            return lane.held_scale(width, height, dst_w, dst_h, resize, picture_width)

    worker = CameraWorker(name, camera, slot, on_status, gate=gate, demand=demand, scale_for=scale_for)
    return Camera(name, lane, worker, gate, analytics, demand, pictures)


def _without_areas(camera: CameraConfig) -> CameraConfig:
    """The settings that need a restart: all but zones, lines and masks."""
    return camera.model_copy(update={"zones": {}, "lines": {}, "object_masks": [],
                                     "motion": camera.motion.model_copy(update={"masks": []})})


def diff(old: Config, new: Config) -> ConfigDiff:
    """Which enabled cameras were added, removed, changed (restart), retuned (in place) or left as they were."""
    before = {n for n, c in old.cameras.items() if c.enabled}
    after = {n for n, c in new.cameras.items() if c.enabled}
    both = before & after
    changed = {n for n in both if _without_areas(old.cameras[n]) != _without_areas(new.cameras[n])}
    retuned = {n for n in both - changed if old.cameras[n] != new.cameras[n]}
    return ConfigDiff(
        added=sorted(after - before), removed=sorted(before - after), changed=sorted(changed),
        unchanged=sorted(both - changed - retuned), retuned=sorted(retuned),
    )


async def stop_cameras(cameras: Sequence[Camera], timeout: float = 5.0) -> list[str]:
    """Stop cameras (their threads in parallel); returns those that did not stop in time."""
    loop = asyncio.get_running_loop()
    for camera in cameras:
        camera.worker.stop()
    joined = await asyncio.gather(*(loop.run_in_executor(None, c.worker.join, timeout) for c in cameras))
    return [c.lane.name for c, ok in zip(cameras, joined) if not ok]
