"""Frames held no larger than the scheduler uses them: a camera decoded as planes puts its frame into the slot
shrunk by a whole factor (``CameraLane.held_scale``) when neither the model's input nor the pictures need more,
and everything downstream (letterbox, crops, pictures) works on the smaller image with the frame's own geometry."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edged.config.models import CameraConfig, DetectConfig
from edged.models.planes import chroma_planes, frame_size, planar_shape
from edged.pipeline.lanes import CameraLane
from edged.pipeline.pictures import PictureRing
from edged.sources.camera import CameraWorker
from edged.sources.pyav import PyAvSource
from edged.sources.slot import FrameInfo, FrameSlot


def lane(**kw: object) -> CameraLane:
    return CameraLane("cam", FrameSlot("cam"), None, DetectConfig(), None, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("size", "model", "pictures", "kw", "expected"), [
    ((1280, 720), 416, 960, {}, 2),  # 416x234 in the input, pictures 640x360: 640x360
    ((1280, 720), 416, None, {}, 2),  # a third is not whole; a quarter (320x180) is under 416x234
    ((1920, 1080), 416, 960, {"regions": "off"}, 2),  # pictures at 960x540
    ((1920, 1080), 416, None, {"regions": "off"}, 4),  # 480x270 still holds the input's 416x234
    ((1920, 1080), 416, 960, {"regions": "auto"}, 1),  # motion regions crop the frame at its own resolution
    ((1280, 720), 416, 960, {"tiles": True}, 1),  # so do tiles
    ((1280, 720), 1024, 960, {}, 1),  # the input takes the frame at 1024x576
    ((640, 360), 416, 960, {}, 1),
    ((1282, 722), 416, 960, {}, 1),  # 641x361: odd sides have no exact 4:2:0 planes
])
def test_how_much_smaller_a_frame_is_held(size: tuple[int, int], model: int, pictures: int | None,
                                          kw: dict[str, object], expected: int) -> None:
    assert lane(**kw).held_scale(*size, model, model, "letterbox", pictures) == expected


def test_a_stretched_input_needs_its_whole_size() -> None:
    # RT-DETR's stretch takes the frame at 640x640: 1280x720 halved is 360 high, too few rows.
    assert lane().held_scale(1280, 720, 640, 640, "stretch", None) == 1
    assert lane().held_scale(1280, 720, 640, 640, "letterbox", None) == 2


def test_crops_of_a_held_frame_are_in_its_own_pixels() -> None:
    info = FrameInfo(1, 0.0, 0.0, 1280, 720, scale=2)
    whole = FrameInfo(1, 0.0, 0.0, 1280, 720)
    tiled = lane(tiles=True)
    crops = [crop for crop in tiled.fits(whole, 416, 416) if crop is not None]
    assert len(crops) == 2
    assert tiled.fits(info, 416, 416) == tuple((x // 2, y // 2, w // 2, h // 2) for x, y, w, h in crops)
    assert lane().fits(info, 416, 416) == (None,)


def clip(tmp_path: Path, size: str, frames: int = 3) -> str:
    path = tmp_path / f"{size}.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=10",
                    "-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)
    return str(path)


def test_a_pyav_frame_is_shrunk_into_the_slot_by_a_whole_factor_only(tmp_path: Path) -> None:
    source = PyAvSource(CameraConfig(url=clip(tmp_path, "640x360")))
    source.open()
    assert source.grab() and source.planar()
    full = np.zeros(planar_shape(360, 640), np.uint8)
    assert source.retrieve(full) is full
    half = np.zeros(planar_shape(180, 320), np.uint8)
    assert source.retrieve(half) is half
    # Each plane averaged 2x2: what OpenCV's area resize of the whole planes gives.
    assert np.array_equal(half[:180], cv2.resize(full[:360], (320, 180), interpolation=cv2.INTER_AREA))
    for mine, whole in zip(chroma_planes(half, 180, 320), chroma_planes(full, 360, 640), strict=True):
        assert np.array_equal(mine, cv2.resize(whole, (160, 90), interpolation=cv2.INTER_AREA))
    third = np.zeros(planar_shape(120, 212), np.uint8)  # 640 / 3 is not whole: the frame comes back as BGR
    bgr = source.retrieve(third)
    assert bgr is not third and bgr is not None and bgr.shape == (360, 640, 3)
    source.close()


def test_the_camera_holds_its_frames_shrunk_with_the_frame_s_own_size(tmp_path: Path) -> None:
    config = CameraConfig(url=clip(tmp_path, "640x360", frames=6), realtime=False, reader="pyav")
    slot = FrameSlot("cam", pull=True)
    asked: list[tuple[int, int]] = []

    def scale_for(width: int, height: int) -> int:
        asked.append((width, height))
        return 2

    leases: list[tuple[tuple[int, int], FrameInfo, np.ndarray]] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            with slot.leased_frame() as lease:
                if lease is not None:
                    leases.append((frame_size(lease.image), lease.info, lease.image.copy()))
            time.sleep(0.002)

    worker = CameraWorker("cam", config, slot, lambda *_: None, scale_for=scale_for)
    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    worker.start()
    deadline = time.monotonic() + 10
    while len(leases) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert worker.join(5)
    stop.set()
    consumer.join()
    assert len(leases) >= 4
    assert asked == [(640, 360)]  # once per frame size
    for size, info, image in leases:
        assert size == (180, 320) and image.shape == planar_shape(180, 320)
        assert (info.width, info.height, info.scale) == (640, 360, 2)
    # The picture kept from the held frame is the one the whole frame gives (640x360 at 960 wide: itself).
    picture = PictureRing(320, 2).take(leases[0][2], leases[0][1])
    assert frame_size(picture.image) == (180, 320) and np.array_equal(picture.image, leases[0][2])
