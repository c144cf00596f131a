"""Hardware-decode pipelines built from camera configs, and their credentials."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edged.config.models import CameraConfig
from edged.redact import redact_url
from edged.sources.gstreamer import pipeline_for, quote


def test_jetson_rtsp_pipeline_keeps_credentials_out_of_the_location() -> None:
    p = pipeline_for(CameraConfig(url="rtsp://admin:s3cr%22t@10.0.0.7:554/s1", decoder="jetson", latency_ms=100))
    assert p.startswith('rtspsrc location="rtsp://10.0.0.7:554/s1" protocols=tcp latency=100 user-id="admin"')
    assert 'user-pw="s3cr\\"t"' in p
    assert "rtph264depay ! h264parse ! nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx" in p
    assert p.endswith("video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false")
    assert "s3cr" not in redact_url(p)


def test_jetson_file_and_h265() -> None:
    p = pipeline_for(CameraConfig(url="/clips/gate.mkv", decoder="jetson", codec="h265"))
    assert p.startswith('filesrc location="/clips/gate.mkv" ! matroskademux ! h265parse ! nvv4l2decoder')


def test_raspberry_pi_pipelines() -> None:
    p = pipeline_for(CameraConfig(url="rtsp://cam/live", decoder="rpi", rtsp_transport="udp"))
    assert "protocols=udp" in p and "v4l2h264dec ! videoconvert ! video/x-raw,format=BGR" in p
    p = pipeline_for(CameraConfig(url="libcamera", decoder="rpi", width=1280, height=720))
    assert p.startswith("libcamerasrc ! video/x-raw,format=NV12,width=1280,height=720 ! videoconvert")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "/dev/video0", "decoder": "jetson"}, "is for RTSP streams and files"),
        ({"url": "http://cam/mjpg", "decoder": "jetson"}, "supports rtsp:// streams"),
        ({"url": "libcamera"}, "set 'decoder: rpi'"),
    ],
)
def test_decoder_must_fit_the_source(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CameraConfig(**kwargs)


def test_quote() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
