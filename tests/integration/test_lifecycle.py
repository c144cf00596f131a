"""SIGHUP reload, systemd's notify protocol and the unit file, with real parts."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from edged.testing.broker import Mosquitto
from edged.testing.rtsp import RtspServer
from edged.testing.subscriber import Message
from tests.support.types import MakeDaemon, Media, Subscribe

ROOT = Path(__file__).resolve().parents[2]


def test_sighup_applies_a_new_config_and_rejects_a_bad_one(media: Media, broker: Mosquitto, subscribe: Subscribe,
                                                           daemon: MakeDaemon) -> None:
    cameras: dict[str, Any] = {
        "keep": {"url": str(media["street.mp4"]), "loop": True, "fps": 5},
        "change": {"url": str(media["zidane.mp4"]), "loop": True, "fps": 2},
        "remove": {"url": str(media["bus.mp4"]), "loop": True, "fps": 2},
    }
    cfg = {"device_id": "hup", "mqtt": {"host": "127.0.0.1", "port": broker.port},
           "engine": {"model": "yolov3-tiny"}, "telemetry": {"interval_s": 0}, "cameras": cameras}
    sub = subscribe(broker.port, "edged/hup/#")
    proc = daemon(cfg)
    for name in cameras:
        sub.wait_count(f"edged/hup/{name}/detections", 3, timeout=60)

    new = {**cameras, "change": {**cameras["change"], "fps": 3},
           "added": {"url": str(media["bus.mp4"]), "loop": True, "fps": 2, "motion": {"enabled": False}}}
    del new["remove"]
    proc.config_path.write_text(yaml.safe_dump({**cfg, "cameras": new}))
    keep_before = sub.on("edged/hup/keep/detections")[-1].json()["seq"]
    change_before = sub.on("edged/hup/change/detections")[-1].json()["seq"]
    proc.signal(signal.SIGHUP)
    proc.wait_log("SIGHUP: reloaded; 1 camera(s) ran on untouched, added added, removed remove, restarted change", 30)
    removed = sub.wait_for(lambda m: m.topic == "edged/hup/remove/status" and m.json()["state"] == "offline", 15)
    assert removed.json()["reason"] == "removed from the config"
    sub.wait_count("edged/hup/added/detections", 2, timeout=30)
    first_changed = sub.wait_for(lambda m: m.topic == "edged/hup/change/detections"
                                 and m.json()["seq"] < change_before, 30).json()
    assert first_changed["seq"] <= 5  # restarted: its frame count began again
    keep_after = sub.wait_for(lambda m: m.topic == "edged/hup/keep/detections"
                              and m.json()["seq"] > keep_before + 5, 15).json()
    keep_seqs = [m.json()["seq"] for m in sub.on("edged/hup/keep/detections")]
    assert keep_seqs == sorted(keep_seqs) and keep_after["seq"] > keep_before  # never restarted

    for bad in ({**cfg, "cameras": new, "camras": {}},
                {**cfg, "cameras": {**new, "keep": {**new["keep"], "detect": {"labels": ["unicorn"]}}}}):
        proc.config_path.write_text(yaml.safe_dump(bad))
        before = sub.on("edged/hup/keep/detections")[-1].json()["seq"]
        proc.signal(signal.SIGHUP)
        proc.wait_log("SIGHUP: the new config was rejected; the running one stays", 15)
        def newer(m: Message, b: int = before) -> bool:
            return m.topic == "edged/hup/keep/detections" and int(m.json()["seq"]) > b + 3

        sub.wait_for(newer, 15)
        log = proc.log()
        assert "unknown key 'camras'" in log or "unicorn" in log
        proc.log_path.write_text("")  # the next check must see its own line
    assert proc.process is not None and proc.process.poll() is None
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_a_burst_of_sighups_ends_on_the_last_file_written(media: Media, broker: Mosquitto, subscribe: Subscribe,
                                                          daemon: MakeDaemon) -> None:
    """50 SIGHUPs 10 ms apart, alternating two files, the last written being A: A runs (B won 2 of 3 runs)."""
    base = {"device_id": "burst", "mqtt": {"host": "127.0.0.1", "port": broker.port},
            "engine": {"model": "yolov3-tiny"}, "telemetry": {"interval_s": 0}}
    every_frame = {"motion": {"enabled": False}}
    config_a = {**base, "cameras": {"a": {"url": str(media["street.mp4"]), "loop": True, "fps": 4, **every_frame}}}
    config_b = {**base, "cameras": {"b": {"url": str(media["bus.mp4"]), "loop": True, "fps": 4, **every_frame}}}
    sub = subscribe(broker.port, "edged/burst/#")
    proc = daemon(config_b)
    sub.wait_count("edged/burst/b/detections", 2, timeout=60)
    for i in range(50):
        proc.config_path.write_text(yaml.safe_dump(config_a if i % 2 else config_b))
        proc.signal(signal.SIGHUP)
        time.sleep(0.01)
    assert yaml.safe_load(proc.config_path.read_text()) == config_a
    reloads = proc.log().count("received SIGHUP")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the reloads settle: a status for b that stays offline
        time.sleep(1.0)
        b = [m.json() for m in sub.on("edged/burst/b/status")]
        a = [m.json() for m in sub.on("edged/burst/a/status")]
        if b and b[-1]["state"] == "offline" and a and a[-1]["state"] == "online":
            quiet = proc.log().count("SIGHUP: reloaded")
            time.sleep(2.0)
            if proc.log().count("SIGHUP: reloaded") == quiet:
                break
    assert sub.on("edged/burst/b/status")[-1].json()["state"] == "offline"
    assert sub.on("edged/burst/a/status")[-1].json()["state"] == "online"
    before = len(sub.on("edged/burst/a/detections"))
    sub.wait_count("edged/burst/a/detections", before + 3, timeout=30)
    applied = proc.log().count("SIGHUP: reloaded") + proc.log().count("SIGHUP: the new config was rejected")
    assert reloads == 50 and 1 <= applied <= 50  # one at a time; a burst during a reload became one more
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0


class NotifySocket:
    """What systemd would receive on $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append((time.monotonic(), self.sock.recv(4096).decode()))
            except TimeoutError:
                continue

    def wait(self, prefix: str, timeout: float, after: float = 0.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, text in list(self.messages):
                if t >= after and text.startswith(prefix):
                    return t
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} within {timeout:g} s; got {[m for _, m in self.messages][-5:]}")

    def count(self, prefix: str, start: float, end: float) -> int:
        return sum(1 for t, text in self.messages if start <= t <= end and text.startswith(prefix))

    def close(self) -> None:
        self._stop.set()
        self.thread.join()
        self.sock.close()


def test_systemd_notify_ready_watchdog_and_stopping(tmp_path: Path, long_clips: Media, broker: Mosquitto,
                                                    daemon: MakeDaemon) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    server = RtspServer({"cam": long_clips["zidane.mp4"]}).start()
    try:
        proc = daemon({
            "device_id": "sd", "mqtt": {"host": "127.0.0.1", "port": broker.port},
            "engine": {"model": "yolov3-tiny"}, "telemetry": {"interval_s": 0},
            "cameras": {"cam": {"url": server.url("cam"), "fps": 4, "read_timeout_s": 2, "open_timeout_s": 3,
                                "reconnect": {"min_s": 0.5, "max_s": 1}}},
        }, env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"})
        ready = notify.wait("READY=1", 60)
        assert "STATUS=1/1 cameras online" in next(m for _, m in notify.messages if m.startswith("READY=1"))
        time.sleep(3)
        healthy = notify.count("WATCHDOG=1", ready, time.monotonic())
        assert healthy >= 4  # every 0.5 s while frames flow

        server.signal(signal.SIGSTOP)  # the only camera stops delivering: the pipeline is stalled
        time.sleep(6)  # stall_s (2 s) + grace (2 s), with margin
        quiet_from = time.monotonic()
        time.sleep(3)
        assert notify.count("WATCHDOG=1", quiet_from, time.monotonic()) == 0
        assert "watchdog withheld: no camera has delivered a frame recently" in proc.log()

        server.signal(signal.SIGCONT)
        notify.wait("WATCHDOG=1", 60, after=time.monotonic())
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        notify.wait("STOPPING=1", 5)
    finally:
        server.stop()
        notify.close()


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    """The shipped unit and drop-ins, ExecStart pointed at this checkout's edged."""
    edged = shutil.which("edged") or str(Path(__import__("sys").executable).with_name("edged"))
    out = tmp_path / "units"
    (out / "edged.service.d").mkdir(parents=True)
    text = (ROOT / "systemd" / "edged.service").read_text().replace("/opt/edged/bin/edged", edged)
    (out / "edged.service").write_text(text)
    for example in (ROOT / "systemd" / "edged.service.d").glob("*.conf.example"):
        shutil.copy(example, out / "edged.service.d" / example.name.removesuffix(".example"))
    return out


def test_unit_verifies_without_a_single_warning(unit_dir: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (apt-get install systemd)")
    done = subprocess.run(["systemd-analyze", "verify", str(unit_dir / "edged.service")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "" and done.stderr.strip() == "", done.stderr


def test_unit_exposure_is_at_most_2(unit_dir: Path) -> None:
    done = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit_dir / "edged.service")],
                          capture_output=True, text=True, check=False)
    level = re.search(r"Overall exposure level for edged\.service: ([\d.]+)", done.stdout)
    assert level is not None, done.stdout[-500:] + done.stderr
    assert float(level.group(1)) <= 2.0, done.stdout
    for setting in ("Type=notify", "WatchdogSec=", "DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=edged",
                    "LoadCredential=", "DevicePolicy=closed", "DeviceAllow=char-video4linux rw", "SystemCallFilter=",
                    "RestrictAddressFamilies="):
        assert setting in (unit_dir / "edged.service").read_text(), setting
