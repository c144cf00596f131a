"""CameraWorker: one thread per camera, from open to reconnect.

The worker opens its source, grabs frames, decodes (retrieves) only the frames
the scheduler will want, and commits them into the camera's FrameSlot. Files can
loop and can be played at their own frame rate.

Failures it handles, each reported as ``reconnecting`` with the reason, then
retried with exponential backoff plus jitter while other cameras run on:
- the stream ends or a read fails (OpenCV's read timeout bounds a dead server);
- a stall: a frame that took longer than ``stall_s`` to arrive is stale (a frozen
  server's decoder hands out a few buffered frames, then blocks);
- a frozen picture: frames keep coming but their timestamps stop advancing.
Reopening too often (the restart budget) earns a long cooldown and the
``flapping`` flag, which the alerts report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edged.backoff import Backoff, RestartBudget
from edged.config.models import CameraConfig
from edged.sources.opencv import OpenCvSource, SourceError
from edged.sources.slot import FrameInfo, FrameSlot

log = logging.getLogger(__name__)

StatusListener = Callable[[str, str, str], None]  # camera, state, reason
SourceFactory = Callable[[CameraConfig], OpenCvSource]


@dataclass
class CameraCounters:
    frames_read: int = 0
    frames_decoded: int = 0
    frames_skipped: int = 0  # grabbed but not decoded: the scheduler would not have used them
    reconnects: int = 0
    stalls: int = 0
    last_frame_mono: float = 0.0  # last frame decoded
    last_grab_mono: float = 0.0  # last frame received at all: the camera's heartbeat
    last_alive_mono: float = 0.0  # the thread's own heartbeat, also while it waits to retry


class _EndOfFile(Exception):
    pass


class CameraWorker:
    def __init__(
        self,
        name: str,
        config: CameraConfig,
        slot: FrameSlot,
        on_status: StatusListener,
        source_factory: SourceFactory = OpenCvSource,
    ) -> None:
        self.name = name
        self.config = config
        self.slot = slot
        self.counters = CameraCounters()
        self.state = "starting"
        self.reason = ""
        self.flapping = False
        self._went_online = False  # the current session delivered a frame
        self.stall_s = config.stall_s or config.read_timeout_s
        self._on_status = on_status
        self._source_factory = source_factory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0

    def start(self) -> None:
        self.counters.last_alive_mono = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.slot.set_listener(None)

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _status(self, state: str, reason: str) -> None:
        if (state, reason) == (self.state, self.reason):
            return
        self.state, self.reason = state, reason
        level = logging.INFO if state == "online" else logging.WARNING
        log.log(level, "camera %s %s%s", self.name, state, f": {reason}" if reason else "")
        self._on_status(self.name, state, reason)

    def _wait(self, seconds: float) -> bool:
        """Sleep interruptibly, keeping the thread's heartbeat fresh; True if stopped."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            self.counters.last_alive_mono = time.monotonic()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._stop.wait(min(left, 1.0))
        return True

    def _run(self) -> None:
        cfg = self.config
        backoff = Backoff(cfg.reconnect.min_s, cfg.reconnect.max_s)
        budget = RestartBudget(cfg.restart_budget.max_restarts, cfg.restart_budget.window_s)
        source = self._source_factory(cfg)
        try:
            while not self._stop.is_set():
                try:
                    self._session(source, backoff)
                    return  # stopped
                except _EndOfFile:
                    self._status("offline", "end of file")
                    return
                except SourceError as exc:
                    source.close()
                    if exc.permanent:
                        self._status("offline", exc.reason)
                        return
                    now = time.monotonic()
                    self.counters.reconnects += 1
                    # Only a session that came online and then failed counts against the budget:
                    # a camera that is down or rebooting is paced by the backoff alone, so it is
                    # picked up again within reconnect.max_s of coming back.
                    if self._went_online:
                        budget.record(now)
                    if self._went_online and budget.exhausted(now):
                        delay = cfg.restart_budget.cooldown_s
                        self.flapping = True
                        reason = (f"{exc.reason}; failed {len(budget.times)} times after coming online within "
                                  f"{cfg.restart_budget.window_s:g} s, waiting {delay:g} s")
                    else:
                        delay = backoff.next()
                        self.flapping = False
                        reason = f"{exc.reason}; retrying in {delay:.1f} s"
                    self._status("reconnecting", reason)
                    if self._wait(delay):
                        return
        except Exception:  # a bug must not kill the thread silently
            log.exception("camera %s: worker failed", self.name)
            self._status("offline", "internal error (see the log)")
        finally:
            source.close()

    def _session(self, source: OpenCvSource, backoff: Backoff) -> None:
        cfg = self.config
        self._went_online = False
        info = source.open()
        paced = cfg.kind == "file" and cfg.realtime
        live = cfg.kind != "file"
        base: float | None = None
        first = True
        shape = (info.height, info.width)
        last_position, frozen_since = -1.0, 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            self.counters.last_alive_mono = started
            if not source.grab():
                if cfg.kind == "file":
                    if not cfg.loop:
                        raise _EndOfFile()
                    info = source.open()
                    base = None
                    continue
                waited = time.monotonic() - started
                raise SourceError(f"no frame for {waited:.1f} s (stream ended, stalled or timed out)")
            now = time.monotonic()
            if live and not first and now - started > self.stall_s:
                self.counters.stalls += 1
                raise SourceError(f"stalled: a frame took {now - started:.1f} s to arrive (limit {self.stall_s:g} s)")
            self.counters.frames_read += 1
            self.counters.last_grab_mono = now
            position = source.position_ms()
            if live and position > 0:
                if position != last_position:
                    last_position, frozen_since = position, now
                elif now - frozen_since > self.stall_s:
                    self.counters.stalls += 1
                    raise SourceError(f"frozen: frames keep coming but the picture has not moved for "
                                      f"{now - frozen_since:.1f} s")
            if paced:
                position_s = position / 1000.0
                if base is None:
                    base = now - position_s
                delay = base + position_s - now
                if delay > 0 and self._stop.wait(delay):
                    return
                if delay < -1.0:
                    base = time.monotonic() - position_s  # fell far behind (machine busy): re-anchor
            if self.slot.pull:
                while not self.slot.wait_consumed(0.2):
                    self.counters.last_alive_mono = time.monotonic()
                    if self._stop.is_set():
                        return
            elif self.slot.wanted_after > time.monotonic():  # convert the first frame from the due time on
                self.counters.frames_skipped += 1
                continue
            shape = self._decode(source, shape)
            if first:
                first = False
                self._went_online = True
                backoff.reset()
                self._status("online", "")

    def _decode(self, source: OpenCvSource, shape: tuple[int, int]) -> tuple[int, int]:
        """Decode the grabbed frame into the slot; returns its (height, width)."""
        buf = self.slot.begin_write(*shape)
        frame = source.retrieve(buf)
        if frame is None:
            self.slot.abort_write()
            raise SourceError("could not decode a frame")
        if frame is not buf:
            self.slot.adopt(frame)
        mono = time.monotonic()
        self.counters.frames_decoded += 1
        self.counters.last_frame_mono = mono
        self._seq += 1
        height, width = frame.shape[:2]
        self.slot.commit(FrameInfo(self._seq, time.time(), mono, width, height))
        return height, width
