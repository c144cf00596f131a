"""The commands `edged demo` prints, run as printed against a real mosquitto: the watch line shows detections and
counts but no JPEG bytes; the save line writes the snapshot byte for byte."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from edged.testing.broker import Mosquitto
from edged.tools.demo import save_snapshot_command, watch_command

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\n\r\x00" + b"\xff\xd9"  # binary, newlines inside


def test_watch_leaves_snapshots_out_and_save_writes_the_jpeg(broker: Mosquitto, tmp_path: Path) -> None:
    broker.publish("edged/demo/street/car/snapshot", JPEG, retain=True)
    broker.publish("edged/demo/street/left_half/car", "2", retain=True)
    watch = subprocess.Popen(watch_command(broker.port) + " -W 3", shell=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    time.sleep(1.0)
    broker.publish("edged/demo/street/detections", '{"v":1}', qos=0)
    out, _ = watch.communicate(timeout=10)
    assert b"edged/demo/street/left_half/car 2" in out and b'edged/demo/street/detections {"v":1}' in out
    assert b"snapshot" not in out and b"\xff\xd8" not in out

    target = tmp_path / "car.jpg"
    command = save_snapshot_command(broker.port, "demo", "street", "car", str(target))
    subprocess.run(command, shell=True, check=True, timeout=10)
    assert target.read_bytes() == JPEG
