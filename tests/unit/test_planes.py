"""Frames held as the decoder's 4:2:0 planes: letterboxed, cropped and shrunk for pictures as the BGR frame would be,
allocating nothing frame-sized; the camera's slot holds the planes of a PyAV frame that OpenCV converts exactly."""

from __future__ import annotations

import subprocess
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from edged.config.models import CameraConfig
from edged.looks.crops import even_for, picture_size, resize_into
from edged.models.planes import I420Crop, frame_size, planar_shape, to_bgr
from edged.models.yolo import Letterbox
from edged.pipeline.batch import frame_fit
from edged.pipeline.pictures import PictureRing
from edged.sources.pyav import PyAvSource
from edged.sources.slot import FrameInfo


def scene(width: int, height: int) -> np.ndarray:
    """A smooth picture with edges (a real frame's statistics, roughly): gradients and a few boxes."""
    xs, ys = np.meshgrid(np.linspace(0, 255, width), np.linspace(0, 255, height))
    image = np.stack([xs, ys, 255 - xs], axis=2).astype(np.uint8)
    for i in range(5):
        cv2.rectangle(image, (40 + 90 * i, 30 + 40 * i), (100 + 90 * i, 150 + 40 * i), (30 * i, 200, 60), -1)
    return image


def planes_of(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)


def close(mine: np.ndarray, theirs: np.ndarray) -> None:
    difference = np.abs(mine.astype(np.int16) - theirs.astype(np.int16))
    assert difference.mean() < 2.0 and np.percentile(difference, 99) <= 24, (difference.mean(), difference.max())


def test_the_size_of_a_frame_held_either_way() -> None:
    assert planar_shape(720, 1280) == (1080, 1280)
    assert frame_size(np.empty((1080, 1280), np.uint8)) == (720, 1280)
    assert frame_size(np.empty((720, 1280, 3), np.uint8)) == (720, 1280)


@pytest.mark.parametrize("size", [(1280, 720), (640, 272), (768, 576)])
def test_a_letterbox_from_the_planes_matches_the_one_from_bgr(size: tuple[int, int]) -> None:
    width, height = size
    bgr = scene(width, height)
    converted = cv2.cvtColor(planes_of(bgr), cv2.COLOR_YUV2BGR_I420)  # what the BGR path letterboxes
    mine = np.zeros((416, 416, 3), np.uint8)
    theirs = np.zeros((416, 416, 3), np.uint8)
    box, image = frame_fit(planes_of(bgr), None, 416, 416, "letterbox")
    assert isinstance(image, I420Crop)
    box.apply(image, mine)
    Letterbox.fit(width, height, 416, 416).apply(converted, theirs)
    close(mine, theirs)


def test_a_crop_of_the_planes_is_taken_on_even_coordinates_and_maps_back_exactly() -> None:
    bgr = scene(1280, 720)
    planes = planes_of(bgr)
    box, image = frame_fit(planes, (301, 151, 333, 205), 416, 416, "letterbox")
    assert isinstance(image, I420Crop) and (image.x, image.y, image.w, image.h) == (300, 150, 334, 206)
    assert (box.ox, box.oy, box.src_w, box.src_h) == (300, 150, 334, 206)  # the fit is the crop's, as taken
    mine = np.zeros((416, 416, 3), np.uint8)
    box.apply(image, mine)
    theirs = np.zeros((416, 416, 3), np.uint8)
    converted = cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420)
    box.apply(converted[150:356, 300:634], theirs)
    close(mine, theirs)


def test_odd_output_sizes_keep_the_luma_geometry() -> None:
    bgr = scene(640, 272)
    planes = planes_of(bgr)
    for out_w, out_h in ((415, 177), (416, 177), (415, 176)):
        mine = np.zeros((out_h, out_w, 3), np.uint8)
        I420Crop(planes).into(mine)
        theirs = cv2.resize(cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420), (out_w, out_h),
                            interpolation=cv2.INTER_LINEAR)
        close(mine, theirs)


def test_pictures_from_planes_stay_planes_and_convert_to_the_bgr_picture() -> None:
    bgr = scene(1280, 720)
    planes = planes_of(bgr)
    info = FrameInfo(1, 0.0, 0.0, 1280, 720)
    mine = PictureRing(960, 2).take(planes, info).image
    theirs = PictureRing(960, 2).take(cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420), info).image
    assert mine.shape == planar_shape(360, 640) and theirs.shape == (360, 640, 3)  # half the bytes
    assert mine.nbytes * 2 == theirs.nbytes
    close(to_bgr(mine), theirs)
    out = np.empty((360, 640, 3), np.uint8)
    assert to_bgr(mine, out) is out and to_bgr(theirs) is theirs  # converted into a kept buffer; BGR as it is


def test_an_odd_sized_frame_s_planes_give_an_even_picture() -> None:
    planes = planes_of(scene(1270, 714))  # 3 to 1: 423 x 238 wide as BGR, 422 x 238 as planes
    picture = PictureRing(480, 2).take(planes, FrameInfo(1, 0.0, 0.0, 1270, 714)).image
    assert frame_size(picture) == (238, 422)
    close(to_bgr(picture), cv2.resize(cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420), (422, 238),
                                      interpolation=cv2.INTER_AREA))


def test_crops_for_second_looks_from_planes_match_crops_from_bgr() -> None:
    bgr = scene(640, 360)
    planes = planes_of(bgr)
    converted = cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420)
    for where, size in (((101, 33, 121, 243), (64, 128)), ((10, 10, 40, 40), (96, 96))):  # shrunk; enlarged
        mine, theirs = np.zeros((*size[::-1], 3), np.uint8), np.zeros((*size[::-1], 3), np.uint8)
        resize_into(planes, where, mine)
        resize_into(converted, even_for(planes, where), theirs)
        # Chroma resized at half size differs at saturated colour edges (a crop of two boxes: 2.2 levels on
        # average); the crop's colour, what a classifier and the colour names read, is the same.
        difference = np.abs(mine.astype(np.int16) - theirs.astype(np.int16))
        assert difference.mean() < 3.0, difference.mean()
        assert np.abs(mine.mean(axis=(0, 1)) - theirs.mean(axis=(0, 1))).max() < 1.5
    assert even_for(planes, (101, 33, 121, 243)) == (100, 32, 122, 244) and picture_size(planes) == (640, 360)
    assert even_for(converted, (101, 33, 121, 243)) == (101, 33, 121, 243)


def test_nothing_frame_sized_is_allocated_per_frame() -> None:
    planes = planes_of(scene(1280, 720))
    tensor = np.zeros((416, 416, 3), np.uint8)
    box, image = frame_fit(planes, None, 416, 416, "letterbox")
    box.apply(image, tensor)  # the staging buffers, once
    tracemalloc.start()
    for _ in range(30):
        box, image = frame_fit(planes, None, 416, 416, "letterbox")
        box.apply(image, tensor)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 416 * 416 * 3 // 10, peak


def test_a_pyav_frame_goes_into_the_slot_as_planes_only_where_opencv_converts_it(tmp_path: Path) -> None:
    def clip(name: str, size: str, pix_fmt: str) -> str:
        path = tmp_path / name
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=10",
                        "-frames:v", "3", "-c:v", "libx264", "-pix_fmt", pix_fmt, str(path)], check=True)
        return str(path)

    for width, height in ((320, 240), (322, 242)):  # 322: the chroma planes are 161 wide
        source = PyAvSource(CameraConfig(url=clip(f"{width}.mp4", f"{width}x{height}", "yuv420p")))
        source.open()
        assert source.grab() and source.planar()
        planes = np.zeros(planar_shape(height, width), np.uint8)
        assert source.retrieve(planes) is planes
        bgr = source.retrieve()
        assert bgr is not None and bgr.shape == (height, width, 3)
        close(cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420), bgr)
        source.close()
    for name, size, pix_fmt in (("full.mp4", "320x240", "yuvj420p"), ("422.mp4", "320x240", "yuv422p")):
        other = PyAvSource(CameraConfig(url=clip(name, size, pix_fmt)))
        other.open()
        assert other.grab() and not other.planar(), name
        other.close()
