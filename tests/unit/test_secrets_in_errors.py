"""A config that fails validation never prints a secret: every hostile case, through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "S3cretPW1x"
CASES = {
    "scheme typo": 'engine: {model: yolov3-tiny}\ncameras: {gate: {url: "rtps://admin:S3cretPW1x@10.0.0.7/s"}}\n',
    "upper-case scheme": 'engine: {model: yolov3-tiny}\ncameras: {gate: {url: "RTSP://admin:S3cretPW1x@10.0.0.7/s"}}\n',
    "one slash": 'engine: {model: yolov3-tiny}\ncameras: {gate: {url: "rtsp:/admin:S3cretPW1x@10.0.0.7/s"}}\n',
    "camera as a bare string": 'engine: {model: yolov3-tiny}\ncameras: {gate: "rtsp://admin:S3cretPW1x@h/s"}\n',
    "mqtt as a bare string": 'mqtt: "mqtt://edged:S3cretPW1x@broker"\nengine: {model: yolov3-tiny}\n'
                             'cameras: {gate: {url: "rtsp://h/s"}}\n',
    "substituted value": 'engine: {model: yolov3-tiny, batch: "${CAM_PW}"}\ncameras: {gate: {url: "rtsp://h/s"}}\n',
    "substituted into a typo": 'engine: {model: yolov3-tiny}\ncameras: {gate: {url: "rtps://admin:${CAM_PW}@h/s"}}\n',
    "password with @": 'engine: {model: yolov3-tiny}\ncameras: {gate: {url: "rtps://admin:S3cr@etPW1x@h/s"}}\n',
    "query parameter": 'engine: {model: yolov3-tiny}\ncameras: {gate: {url: "/no/such.mp4?password=S3cretPW1x"}}\n',
    "credential file": 'engine: {model: yolov3-tiny}\nmqtt: {password: "${cred:mqtt}", port: "${cred:mqtt}"}\n'
                       'cameras: {gate: {url: "rtsp://h/s"}}\n',
    "NUL byte": 'engine: {model: "yolo\\0v3"}\ncameras: {gate: {url: "rtps://a:S3cretPW1x@h/s"}}\n',
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_secret_in_any_config_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / "edged.yaml"
    path.write_text(CASES[case])
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt").write_text(SECRET)
    env = {**os.environ, "CAM_PW": SECRET, "CREDENTIALS_DIRECTORY": str(creds)}
    done = subprocess.run([sys.executable, "-m", "edged", "check", "-c", str(path)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output and output.strip(), output
    for part in (SECRET, "S3cr@etPW1x", "S3cr", "etPW1x"):
        assert part not in output, output
    assert "\0" not in output
