"""CameraWorker with a fake source: reconnects, end of file, decode-only-what-is-wanted."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edged.config.models import CameraConfig
from edged.sources.camera import CameraWorker
from edged.sources.demand import Demand
from edged.sources.opencv import OpenCvSource, SourceError, StreamInfo
from edged.sources.slot import FrameSlot


class FakeSource:
    """Scripted: ``opens`` is a list of outcomes (an exception, or a number of frames to give)."""

    def __init__(self, config: CameraConfig, opens: list[object], fps: float | None = 50.0) -> None:
        self.config = config
        self.opens = list(opens)
        self.fps = fps
        self.frames_left = 0
        self.retrieved = 0
        self.opened = 0
        self.position = 0.0
        self.start_position = 0.0
        self.grab_sleep: list[float] = []  # seconds each grab blocks, in order (then 2 ms)
        self.frozen = False

    def open(self) -> StreamInfo:
        self.opened += 1
        outcome = self.opens.pop(0) if self.opens else 10**9
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, int)
        self.frames_left = outcome
        self.position = self.start_position
        return StreamInfo(8, 6, self.fps)

    def grab(self) -> bool:
        time.sleep(self.grab_sleep.pop(0) if self.grab_sleep else 0.002)
        if self.frames_left <= 0:
            return False
        self.frames_left -= 1
        if not self.frozen:
            self.position += 20.0
        return True

    def position_ms(self) -> float:
        return self.position

    def retrieve(self, out: np.ndarray) -> np.ndarray:
        self.retrieved += 1
        out[:] = self.retrieved % 255
        return out

    def close(self) -> None:
        pass


def run_worker(config: CameraConfig, source: FakeSource, until, timeout: float = 5.0, slot: FrameSlot | None = None,  # type: ignore[no-untyped-def]
               demand: Demand | None = None):
    statuses: list[tuple[str, str]] = []
    slot = slot or FrameSlot("cam")
    consumer_stop = threading.Event()

    def consume() -> None:  # a scheduler that takes every frame
        while not consumer_stop.is_set():
            with slot.leased_frame():
                pass
            time.sleep(0.001)

    worker = CameraWorker("cam", config, slot, lambda c, s, r: statuses.append((s, r)), lambda cfg: source,  # type: ignore[arg-type,return-value]
                          demand=demand)
    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    worker.start()
    deadline = time.monotonic() + timeout
    while not until(worker, statuses) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert worker.join(5)
    consumer_stop.set()
    consumer.join()
    return worker, statuses


def stream(**kw: object) -> CameraConfig:
    return CameraConfig(url="rtsp://cam/s", reconnect={"min_s": 0.01, "max_s": 0.05}, **kw)


def test_open_failures_back_off_then_recover() -> None:
    source = FakeSource(stream(), [SourceError("cannot open stream"), SourceError("cannot open stream"), 1000])
    worker, statuses = run_worker(stream(), source, lambda w, s: w.counters.frames_decoded >= 5)
    assert [s for s, _ in statuses] == ["reconnecting", "online"]
    assert statuses[0][1].startswith("cannot open stream; retrying in ")
    assert worker.counters.reconnects == 2 and source.opened == 3


def test_a_stream_that_stops_sending_is_reopened() -> None:
    source = FakeSource(stream(), [5, 1000])
    worker, statuses = run_worker(stream(), source, lambda w, s: w.counters.frames_decoded >= 10)
    assert [s for s, _ in statuses] == ["online", "reconnecting", "online"]
    assert "no frame for" in statuses[1][1]
    assert worker.slot.committed >= 10


def test_file_end_without_loop_goes_offline() -> None:
    cfg = CameraConfig(url="clip.mp4", realtime=False)
    worker, statuses = run_worker(cfg, FakeSource(cfg, [7]), lambda w, s: bool(s) and s[-1][0] == "offline")
    assert statuses == [("online", ""), ("offline", "end of file")]
    assert worker.counters.frames_decoded == 7


def test_looping_file_continues_its_sequence() -> None:
    cfg = CameraConfig(url="clip.mp4", realtime=False, loop=True)
    source = FakeSource(cfg, [3, 3, 3, 1000])
    worker, statuses = run_worker(cfg, source, lambda w, s: w.counters.frames_decoded >= 12)
    assert statuses == [("online", "")]  # looping is not a reconnect
    assert source.opened >= 4 and worker.counters.reconnects == 0


def test_realtime_file_plays_at_its_own_rate() -> None:
    cfg = CameraConfig(url="clip.mp4", loop=True)  # 20 ms a frame in FakeSource: 50 fps
    started = time.monotonic()
    run_worker(cfg, FakeSource(cfg, [1000]), lambda w, s: w.counters.frames_decoded >= 15)
    assert time.monotonic() - started >= 0.25  # 15 frames at 50 fps cannot come faster than 0.28 s


def test_frames_the_scheduler_will_not_want_are_not_decoded() -> None:
    demand = Demand()
    demand.next_after = time.monotonic() + 3600  # the scheduler's cadence: no frame for an hour
    source = FakeSource(stream(), [1000])
    worker, statuses = run_worker(stream(), source, lambda w, s: w.counters.frames_read >= 30, demand=demand)
    assert worker.counters.frames_skipped >= 30 and source.retrieved == 0 and statuses == []


def test_permanent_errors_are_not_retried() -> None:
    source = FakeSource(stream(), [SourceError("no GStreamer support", permanent=True)])
    _, statuses = run_worker(stream(), source, lambda w, s: bool(s))
    assert statuses == [("offline", "no GStreamer support")] and source.opened == 1


def test_real_open_failure_never_shows_credentials() -> None:
    cfg = CameraConfig(url="rtsp://admin:hunter22@127.0.0.1:9/stream", open_timeout_s=2)
    source = OpenCvSource(cfg)
    with pytest.raises(SourceError) as info:
        source.open()
    assert "hunter22" not in info.value.reason and "admin" not in info.value.reason
    assert source.safe_url == "rtsp://***@127.0.0.1:9/stream"


def test_a_stall_reopens_the_stream() -> None:
    cfg = CameraConfig(url="rtsp://cam/s", stall_s=0.2, reconnect={"min_s": 0.01, "max_s": 0.05})
    source = FakeSource(cfg, [1000, 1000])
    source.grab_sleep = [0.002] * 5 + [0.5]  # the 6th frame arrives after half a second
    worker, statuses = run_worker(cfg, source, lambda w, s: len(s) >= 3)
    assert [s for s, _ in statuses] == ["online", "reconnecting", "online"]
    assert statuses[1][1].startswith("stalled: a frame took 0.5 s to arrive (limit 0.2 s)")
    assert worker.counters.stalls == 1 and source.opened == 2


def test_a_frozen_picture_reopens_the_stream() -> None:
    cfg = CameraConfig(url="rtsp://cam/s", stall_s=0.2, reconnect={"min_s": 0.01, "max_s": 0.05})
    source = FakeSource(cfg, [1000])
    source.start_position = 40.0  # a live stream whose timestamps stop moving
    source.frozen = True
    _worker, statuses = run_worker(cfg, source, lambda w, s: any(st == "reconnecting" for st, _ in s))
    reasons = [reason for state, reason in statuses if state == "reconnecting"]  # it may be back online by now
    assert "frozen: frames keep coming but the picture has not moved" in reasons[0]


def test_restart_budget_forces_a_cooldown_on_a_flapping_camera() -> None:
    cfg = CameraConfig(url="rtsp://cam/s", reconnect={"min_s": 0.01, "max_s": 0.02},
                       restart_budget={"max_restarts": 3, "window_s": 60, "cooldown_s": 120})
    source = FakeSource(cfg, [2] * 10)  # every session comes online, then the stream ends
    worker, statuses = run_worker(cfg, source, lambda w, s: w.flapping)
    assert worker.flapping and source.opened == 3
    assert statuses[-1][1].endswith("; failed 3 times after coming online within 60 s, waiting 120 s")


def test_a_camera_that_is_down_is_retried_by_backoff_and_never_sent_to_cool_down() -> None:
    cfg = CameraConfig(url="rtsp://cam/s", reconnect={"min_s": 0.01, "max_s": 0.02},
                       restart_budget={"max_restarts": 3, "window_s": 60, "cooldown_s": 120})
    source = FakeSource(cfg, [SourceError("cannot open stream")] * 8 + [1000])
    worker, statuses = run_worker(cfg, source, lambda w, s: ("online", "") in s)
    assert ("online", "") in statuses and not worker.flapping and source.opened == 9
    assert all("retrying in" in reason for state, reason in statuses if state == "reconnecting")


def test_a_camera_that_fails_over_a_thousand_times_in_a_row_keeps_retrying(tmp_path: Path) -> None:
    """A real OpenCV source on a zero-byte file; with the defaults this is 8 to 11 hours of an unplugged camera."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cfg = CameraConfig(url=str(empty), reconnect={"min_s": 0.001, "max_s": 0.002})
    statuses: list[tuple[str, str]] = []
    worker = CameraWorker("cam", cfg, FrameSlot("cam"), lambda c, s, r: statuses.append((s, r)))
    worker.start()
    deadline = time.monotonic() + 60
    while worker.counters.reconnects < 1100 and worker.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.stop()
    assert worker.join(5)
    assert worker.counters.reconnects >= 1100, (worker.counters.reconnects, statuses[-1:])
    assert all(state == "reconnecting" for state, _ in statuses), statuses[-1]  # never "offline: internal error"


def test_a_looping_file_with_no_readable_frame_backs_off_with_a_reason(tmp_path: Path) -> None:
    """An mp4 cut inside its mdat: it opens, and no frame ever comes (it used to spin a core forever, 'starting')."""
    whole, cut = tmp_path / "whole.mp4", tmp_path / "cut.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10",
                    "-t", "2", "-c:v", "libx264", "-movflags", "+faststart", str(whole)], check=True)
    data = whole.read_bytes()
    cut.write_bytes(data[: data.find(b"mdat") + 64])
    cfg = CameraConfig(url=str(cut), loop=True, reconnect={"min_s": 0.05, "max_s": 0.1})
    statuses: list[tuple[str, str]] = []
    worker = CameraWorker("cam", cfg, FrameSlot("cam"), lambda c, s, r: statuses.append((s, r)))
    worker.start()
    deadline = time.monotonic() + 30
    while worker.counters.reconnects < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.stop()
    assert worker.join(5)
    assert worker.counters.reconnects >= 3
    assert statuses[0][0] == "reconnecting"
    assert statuses[0][1].startswith("the file has no frame that can be read (truncated or corrupt?); retrying in")


def test_why_a_stream_did_not_open_is_said() -> None:
    """A refused port used to read 'cannot open stream within 10 s'; a real socket either way here."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    source = OpenCvSource(CameraConfig(url=f"rtsp://user:pw@127.0.0.1:{closed_port}/s", open_timeout_s=2))
    with pytest.raises(SourceError) as refused:
        source.open()
    assert refused.value.reason == (f"cannot open stream: 127.0.0.1:{closed_port} refused the connection "
                                    f"(nothing listening there?)")
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/s"
        with pytest.raises(SourceError) as quiet:
            OpenCvSource(CameraConfig(url=url, open_timeout_s=1)).open()
    assert "accepts connections, but no video came" in quiet.value.reason
