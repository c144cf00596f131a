"""The running cameras: each one's lane (the scheduler's view) and worker (its thread).

Only the Pipeline uses this: it builds cameras from a config, starts and stops them,
and changes them in place on a reload (``diff``): cameras whose settings did not
change keep running without a gap, changed ones restart, new ones start, removed
ones stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edged.config.models import CameraConfig, Config, DetectConfig
from edged.errors import ModelError
from edged.models.yolo import class_mask
from edged.pipeline.scheduler import CameraLane
from edged.platform import device_model
from edged.sources.camera import CameraWorker, StatusListener
from edged.sources.gstreamer import rpi_decoder
from edged.sources.slot import FrameSlot

log = logging.getLogger(__name__)


@dataclass
class Camera:
    lane: CameraLane
    worker: CameraWorker


@dataclass(frozen=True)
class ConfigDiff:
    added: list[str]
    removed: list[str]
    changed: list[str]
    unchanged: list[str]

    def describe(self) -> str:
        """'1 camera(s) ran on untouched, added x, removed y, restarted z'."""
        parts = [f"{len(self.unchanged)} camera(s) ran on untouched"]
        parts += [f"{verb} {', '.join(names)}" for verb, names in
                  (("added", self.added), ("removed", self.removed), ("restarted", self.changed)) if names]
        return ", ".join(parts)


def detect_settings(config: Config, name: str, labels: Sequence[str]) -> tuple[DetectConfig, np.ndarray | None]:
    """A camera's detection settings and its class mask; raises naming the camera on an unknown label."""
    detect = config.detect_for(name)
    try:
        return detect, class_mask(list(labels), detect.labels)
    except ModelError as exc:
        raise ModelError(f"cameras.{name}.detect.labels: {exc}") from None


def check_labels(config: Config, labels: Sequence[str]) -> None:
    """Raise if ``config`` names labels the model does not have (before touching anything)."""
    for name, camera in config.cameras.items():
        if camera.enabled:
            detect_settings(config, name, labels)


def resolve_decoder(name: str, camera: CameraConfig, board: str | None = None) -> CameraConfig:
    """``decoder: rpi`` where this board has no hardware decoder for the codec: software, and say so."""
    if camera.decoder != "rpi" or camera.kind == "libcamera":
        return camera
    hardware, line = rpi_decoder(device_model() if board is None else board, camera.codec)
    log.info("camera %s: decoder: rpi: %s", name, line)
    return camera if hardware else camera.model_copy(update={"decoder": "software"})


def make_camera(config: Config, name: str, labels: Sequence[str], on_status: StatusListener,
                on_frame: Callable[[], None]) -> Camera:
    camera = resolve_decoder(name, config.cameras[name])
    detect, mask = detect_settings(config, name, labels)
    slot = FrameSlot(name, pull=camera.kind == "file" and not camera.realtime)
    slot.set_listener(on_frame)
    lane = CameraLane(name, slot, camera.fps, detect, mask, priority=camera.priority)
    return Camera(lane, CameraWorker(name, camera, slot, on_status))


def diff(old: Config, new: Config) -> ConfigDiff:
    """Which enabled cameras were added, removed, changed or left as they were."""
    before = {n for n, c in old.cameras.items() if c.enabled}
    after = {n for n, c in new.cameras.items() if c.enabled}
    return ConfigDiff(
        added=sorted(after - before), removed=sorted(before - after),
        changed=sorted(n for n in before & after if old.cameras[n] != new.cameras[n]),
        unchanged=sorted(n for n in before & after if old.cameras[n] == new.cameras[n]),
    )


async def stop_cameras(cameras: Sequence[Camera], timeout: float = 5.0) -> list[str]:
    """Stop cameras (their threads in parallel); returns those that did not stop in time."""
    loop = asyncio.get_running_loop()
    for camera in cameras:
        camera.worker.stop()
    joined = await asyncio.gather(*(loop.run_in_executor(None, c.worker.join, timeout) for c in cameras))
    return [c.lane.name for c, ok in zip(cameras, joined) if not ok]
