"""The PyAV reader on real H.264 files made by ffmpeg: frames convert in every format and size, skip_loop_filter
reaches the decoder, a hardware decoder this machine lacks falls back to software with one log line, and files go
to PyAV only when they need it."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from edged.config.models import CameraConfig
from edged.sources.camera import make_source
from edged.sources.opencv import OpenCvSource, SourceError
from edged.sources.pyav import PyAvSource


def clip(path: Path, size: str = "320x240", pix_fmt: str = "yuv420p", frames: int = 12) -> Path:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=10",
                    "-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", pix_fmt, str(path)], check=True)
    return path


def frames_of(source: PyAvSource | OpenCvSource, count: int) -> list[np.ndarray]:
    source.open()
    out = []
    for _ in range(count):
        assert source.grab()
        frame = source.retrieve()
        assert frame is not None
        out.append(frame.copy())
    source.close()
    return out


def swscale_bgr(path: Path, count: int) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for _, frame in zip(range(count), container.decode(video=0),
                                                                       strict=False)]


@pytest.mark.parametrize(("size", "pix_fmt"), [("320x240", "yuv420p"), ("322x242", "yuv420p"), ("322x242", "yuv422p"),
                                               ("320x240", "yuv444p"), ("320x240", "yuvj420p")])
def test_the_conversion_matches_swscale(tmp_path: Path, size: str, pix_fmt: str) -> None:
    path = clip(tmp_path / "c.mp4", size, pix_fmt)
    ours = frames_of(PyAvSource(CameraConfig(url=str(path))), 6)
    theirs = swscale_bgr(path, 6)
    width, height = (int(v) for v in size.split("x"))
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.shape == (height, width, 3)
        difference = np.abs(mine.astype(np.int16) - reference.astype(np.int16))
        # OpenCV's and swscale's BT.601 arithmetic round differently: a level or two, never a shifted picture.
        assert difference.mean() < 1.5 and np.percentile(difference, 99.9) <= 8, (difference.mean(), difference.max())


def test_nv12_planes_and_bt709_frames_convert_as_swscale(tmp_path: Path) -> None:
    import av
    import cv2

    from edged.sources.pyav import gather_420

    path = clip(tmp_path / "c.mp4", "320x240")
    with av.open(str(path)) as container:
        frame = next(iter(container.decode(video=0)))
        reference = frame.to_ndarray(format="bgr24")
        nv12 = frame.reformat(format="nv12")  # what a hardware decoder hands over
    planes = np.empty((360, 320), np.uint8)
    gather_420(nv12, planes, 1)
    difference = np.abs(cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_NV12).astype(np.int16) - reference)
    assert difference.mean() < 1.5 and np.percentile(difference, 99.9) <= 8
    tagged = tmp_path / "bt709.mp4"  # not BT.601: swscale converts it, with the frame's own colour space
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(path), "-c:v", "libx264", "-colorspace", "bt709",
                    str(tagged)], check=True)
    [mine] = frames_of(PyAvSource(CameraConfig(url=str(tagged))), 1)
    [theirs] = swscale_bgr(tagged, 1)
    assert np.array_equal(mine, theirs)


def test_the_frame_goes_into_the_buffer_given(tmp_path: Path) -> None:
    source = PyAvSource(CameraConfig(url=str(clip(tmp_path / "c.mp4"))))
    source.open()
    assert source.frame_count() == 12
    buffer = np.zeros((240, 320, 3), np.uint8)
    assert source.grab()
    assert source.retrieve(buffer) is buffer and buffer.any()
    wrong = np.zeros((10, 10, 3), np.uint8)
    assert source.grab()
    frame = source.retrieve(wrong)
    assert frame is not None and frame is not wrong and frame.shape == (240, 320, 3)
    source.close()


def test_skip_loop_filter_reaches_the_decoder_and_changes_the_picture(tmp_path: Path) -> None:
    path = clip(tmp_path / "c.mp4", "640x360", frames=20)
    plain = frames_of(PyAvSource(CameraConfig(url=str(path))), 20)
    source = PyAvSource(CameraConfig(url=str(path), skip_loop_filter=True))
    source.open()
    assert source._container.streams.video[0].codec_context.options.get("skip_loop_filter") == "all"
    source.close()
    skipped = frames_of(PyAvSource(CameraConfig(url=str(path), skip_loop_filter=True)), 20)
    assert any(not np.array_equal(a, b) for a, b in zip(plain, skipped, strict=True))


def test_a_missing_hardware_decoder_falls_back_to_software_with_one_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = clip(tmp_path / "c.mp4")
    source = make_source(CameraConfig(url=str(path), decoder="qsv"))
    assert isinstance(source, PyAvSource)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # reopening (a looping file, a reconnect) does not try, or say it, again
            assert source.open().width == 320
            assert source.grab() and source.retrieve() is not None
    lines = [r.getMessage() for r in caplog.records if "hardware decoding" in r.getMessage()]
    assert len(lines) == 1 and "decoder: qsv" in lines[0] and "decoding in software" in lines[0]
    source.close()


def test_files_go_to_pyav_only_when_they_need_it(tmp_path: Path) -> None:
    path = str(clip(tmp_path / "c.mp4"))
    assert isinstance(make_source(CameraConfig(url=path)), OpenCvSource)
    for needs in ({"reader": "pyav"}, {"skip_loop_filter": True}, {"decoder": "qsv"}):
        assert isinstance(make_source(CameraConfig(url=path, **needs)), PyAvSource), needs
    assert isinstance(make_source(CameraConfig(url="rtsp://127.0.0.1:1/s")), PyAvSource)
    with pytest.raises(SourceError, match="cannot open video file"):
        PyAvSource(CameraConfig(url=str(tmp_path / "missing.mp4"))).open()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"url": "/c.mp4", "decoder": "vaapi", "reader": "opencv"}, "'decoder: vaapi' needs the PyAV reader"),
    ({"url": "/c.mp4", "skip_loop_filter": True, "reader": "opencv"}, "'skip_loop_filter' needs the PyAV reader"),
    ({"url": "/dev/video0", "skip_loop_filter": True}, "applies to files and network streams"),
    ({"url": "rtsp://cam/s", "decoder": "jetson", "skip_loop_filter": True}, "applies to files and network"),
    ({"url": "/dev/video0", "decoder": "cuda"}, "is for RTSP streams and files"),
])
def test_decoder_settings_that_cannot_apply_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CameraConfig(**kwargs)


def test_a_stream_that_is_down_keeps_asking_for_the_hardware(caplog: pytest.LogCaptureFixture) -> None:
    """Both opens fail on a closed port: that says nothing of the hardware, so it is not given up, nor logged."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = PyAvSource(CameraConfig(url=f"rtsp://127.0.0.1:{port}/s", decoder="qsv", open_timeout_s=2))
    with caplog.at_level(logging.WARNING), pytest.raises(SourceError, match="refused the connection"):
        source.open()
    assert source._hardware and not [r for r in caplog.records if "hardware decoding" in r.getMessage()]
