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

import cv2
import numpy as np

from edged.backoff import Backoff, RestartBudget
from edged.config.camera import GSTREAMER_DECODERS, PYAV_DECODERS
from edged.config.models import CameraConfig
from edged.models.images import shrink
from edged.models.planes import frame_size
from edged.sources.demand import Demand
from edged.sources.opencv import OpenCvSource, SourceError
from edged.sources.slot import FrameInfo, FrameSlot
from edged.sources.state import (
    GRACE_S,
    CameraCounters,
    CameraState,
    Gate,
    Source,
    StatusListener,
    Verdict,
    WorkerStats,
)

log = logging.getLogger(__name__)

SourceFactory = Callable[[CameraConfig], Source]


def make_source(config: CameraConfig) -> Source:
    """PyAV for network streams FFmpeg decodes, where it is installed (``reader: auto|pyav``), and for files that
    need it (``reader: pyav``, a hardware decoder, ``skip_loop_filter``); else OpenCV (files: decoding and
    converting every frame cost the same either way once PyAV's conversion moved to OpenCV, 0.52-0.53 against
    0.49-0.55 core-ms per 640x272 frame, 1.70-1.73 against 1.73-1.88 at 768x576, the whole process's CPU clock)."""
    pyav_only = config.reader == "pyav" or config.decoder in PYAV_DECODERS or config.skip_loop_filter
    wanted = config.kind == "stream" or (config.kind == "file" and pyav_only)
    if wanted and config.decoder not in GSTREAMER_DECODERS and config.reader != "opencv":
        from edged.sources.pyav import PyAvSource, pyav_available

        if pyav_available():
            return PyAvSource(config)
        if pyav_only:
            what = "reader: pyav" if config.reader == "pyav" else \
                f"decoder: {config.decoder}" if config.decoder in PYAV_DECODERS else "skip_loop_filter"
            raise SourceError(f"{what}, but PyAV is not installed (pip install av)", permanent=True)
    return OpenCvSource(config)


class _EndOfFile(Exception):
    pass


class _FrozenWatch:
    """A live stream whose timestamps stop moving while frames keep coming is frozen."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.position = -1.0
        self.since = 0.0

    def stuck(self, position: float, now: float) -> bool:
        if position <= 0:
            return False
        if position != self.position:
            self.position, self.since = position, now
            return False
        return now - self.since > self.limit_s


class _PlayClock:
    """Plays a file at its own rate: how long to wait before the frame at ``position_s``."""

    def __init__(self) -> None:
        self.base: float | None = None

    def delay(self, position_s: float, now: float) -> float:
        if self.base is None:
            self.base = now - position_s
        delay = self.base + position_s - now
        if delay < -1.0:
            self.base = now - position_s  # fell far behind (machine busy): re-anchor
        return max(0.0, delay)


class CameraWorker:
    def __init__(
        self,
        name: str,
        config: CameraConfig,
        slot: FrameSlot,
        on_status: StatusListener,
        source_factory: SourceFactory = make_source,
        gate: Gate | None = None,
        demand: Demand | None = None,
        scale_for: Callable[[int, int], int] | None = None,
    ) -> None:
        self.name = name
        self.demand = demand or Demand()  # the scheduler's cadence: a frame before next_after is not converted
        self.config = config
        self.slot = slot
        self.counters = CameraCounters()
        self.state = CameraState.STARTING
        self.reason = ""
        self.flapping = False
        self._went_online = False  # the current session delivered a frame
        self.stall_s = config.stall_s or config.read_timeout_s
        self._on_status = on_status
        self._source_factory = source_factory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self.gate = gate
        self._grey = np.empty((0, 0), np.uint8)  # the gate's grey copy, allocated per frame size
        self._small_bgr = np.empty((0, 0, 3), np.uint8)
        self._interval = 1.0 / config.fps if config.fps else 0.0
        # How much smaller than the frame its planes are held (width, height -> a whole factor): no more than
        # the scheduler uses (the model's input, the pictures), so a 720p frame is held as 640x360, not 1280x720.
        self._scale_for = scale_for
        self._scales: dict[tuple[int, int], int] = {}

    def start(self) -> None:
        self.counters.last_alive_mono = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self, now: float) -> WorkerStats:
        c, cfg = self.counters, self.config
        return WorkerStats(
            state=self.state, reason=self.reason, frames_read=c.frames_read, frames_decoded=c.frames_decoded,
            frames_skipped=c.frames_skipped, frames_dropped=self.slot.dropped, reconnects=c.reconnects,
            stalls=c.stalls, flapping=self.flapping,
            heartbeat_age_s=round(now - c.last_grab_mono, 2) if c.last_grab_mono else None,
            stale_after_s=cfg.read_timeout_s + GRACE_S, stall_limit_s=self.stall_s + GRACE_S,
            thread_alive=self.alive, thread_idle_s=now - c.last_alive_mono,
            thread_limit_s=cfg.open_timeout_s + cfg.read_timeout_s + 2 * GRACE_S,
        )

    def _status(self, state: CameraState, reason: str) -> None:
        if (state, reason) == (self.state, self.reason):
            return
        self.state, self.reason = state, reason
        level = logging.INFO if state is CameraState.ONLINE else logging.WARNING
        log.log(level, "camera %s %s%s", self.name, state.value, f": {reason}" if reason else "")
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
                    self._status(CameraState.OFFLINE, "end of file")
                    return
                except SourceError as exc:
                    source.close()
                    if exc.permanent:
                        self._status(CameraState.OFFLINE, exc.reason)
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
                    self._status(CameraState.RECONNECTING, reason)
                    if self._wait(delay):
                        return
        except Exception:  # a bug must not kill the thread silently
            log.exception("camera %s: worker failed", self.name)
            self._status(CameraState.OFFLINE, "internal error (see the log)")
        finally:
            source.close()

    def _session(self, source: Source, backoff: Backoff) -> None:
        cfg = self.config
        self._went_online = False
        info = source.open()
        if self.gate is not None:
            self.gate.reopened()
        live = cfg.kind != "file"
        clock = _PlayClock() if cfg.kind == "file" and cfg.realtime else None
        first = True
        shape = (info.height, info.width)
        frozen = _FrozenWatch(self.stall_s)
        read_this_pass = False  # a looping file that never yields a frame must not spin
        while not self._stop.is_set():
            started = time.monotonic()
            self.counters.last_alive_mono = started
            if not source.grab():
                if cfg.kind == "file":
                    if not read_this_pass:
                        raise SourceError("the file has no frame that can be read (truncated or corrupt?)")
                    if not cfg.loop:
                        raise _EndOfFile()
                    read_this_pass = False
                    info = source.open()
                    clock = _PlayClock() if clock is not None else None
                    continue
                waited = time.monotonic() - started
                raise SourceError(f"no frame for {waited:.1f} s (stream ended, stalled or timed out)")
            now = time.monotonic()
            if live and not first and now - started > self.stall_s:
                self.counters.stalls += 1
                raise SourceError(f"stalled: a frame took {now - started:.1f} s to arrive (limit {self.stall_s:g} s)")
            self.counters.frames_read += 1
            self.counters.last_grab_mono = now
            read_this_pass = True
            # The stream's clock: for the frozen check (live) and a file's real-time pace; a file pulled as fast as
            # the pipeline goes does not ask (one call into the decoder a frame, the GIL given up and taken back).
            position = source.position_ms() if live or clock is not None else 0.0
            if live and frozen.stuck(position, now):
                self.counters.stalls += 1
                raise SourceError(f"frozen: frames keep coming but the picture has not moved for "
                                  f"{now - frozen.since:.1f} s")
            if clock is not None and self._stop.wait(clock.delay(position / 1000.0, now)):
                return
            if not self._wanted():
                if self._stop.is_set():
                    return
                continue
            passed = None if self.gate is None else self.gate.without_look(now)
            if self.gate is None or passed is not None:
                shape = self._decode(source, shape, passed)
            else:
                decoded = self._gated(source, shape, now)
                if decoded is None:
                    continue
                shape = decoded
            if first:
                first = False
                self._went_online = True
                backoff.reset()
                self._status(CameraState.ONLINE, "")

    def _wanted(self) -> bool:
        """Will the scheduler take this frame? Pull mode waits until it took the last one."""
        if self.slot.pull:
            while not self.slot.wait_consumed(0.2):
                self.counters.last_alive_mono = time.monotonic()
                if self._stop.is_set():
                    return False
            return True
        if self.demand.next_after > time.monotonic():  # convert the first frame from the due time on
            self.counters.frames_skipped += 1
            return False
        return True

    def _decode(self, source: Source, shape: tuple[int, int], verdict: Verdict | None = None) -> tuple[int, int]:
        """Decode the grabbed frame into the slot and commit it; returns the frame's (height, width)."""
        frame, scale = self._retrieve(source, shape)
        return self._commit(frame, scale, verdict)

    def _retrieve(self, source: Source, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
        """Convert the grabbed frame to BGR into the slot's buffer being written (not committed yet), or copy its
        4:2:0 planes there where the source can (``models.planes``: converted later, at the size used), shrunk
        by the factor the scheduler allows (``lanes.held_scale``). Returns the image and that factor."""
        planar = getattr(source, "planar", None)
        is_planar = planar is not None and planar()
        scale = self._scale(*shape) if is_planar else 1
        buf = self.slot.begin_write(shape[0] // scale, shape[1] // scale, planar=is_planar)
        frame = source.retrieve(buf)
        if frame is None:
            self.slot.abort_write()
            raise SourceError("could not decode a frame")
        if frame is not buf:
            self.slot.adopt(frame)  # the frame changed size: this one is whole
            scale = 1
        self.counters.frames_decoded += 1
        return frame, scale

    def _scale(self, height: int, width: int) -> int:
        scale = self._scales.get((height, width))
        if scale is None:
            scale = self._scale_for(width, height) if self._scale_for is not None and width and height else 1
            self._scales[height, width] = scale
        return scale

    def _commit(self, frame: np.ndarray, scale: int, verdict: Verdict | None) -> tuple[int, int]:
        mono = time.monotonic()
        self._seq += 1
        height, width = frame_size(frame)
        height, width = height * scale, width * scale
        info = FrameInfo(self._seq, time.time(), mono, width, height, scale=scale)
        if verdict is not None:
            info.gate, info.motion = verdict.gate, verdict.motion
        self.slot.commit(info)
        return height, width

    def _gated(self, source: Source, shape: tuple[int, int], now: float) -> tuple[int, int] | None:
        """Ask the gate on a grey copy, taken before the colour conversion where the source can.

        Returns the frame's (height, width) when it went to the slot; None when the gate held it back
        (then the camera waits one interval before it looks again, as if the frame had been taken).
        """
        gate = self.gate
        assert gate is not None
        grey_from = getattr(source, "grey", None)
        frame: np.ndarray | None = None
        scale = 1
        height, width = shape
        if grey_from is None or not width or not grey_from(self._grey_buffer(gate, width, height)):
            frame, scale = self._retrieve(source, shape)  # this source gives colour only: shrink, then grey
            height, width = frame_size(frame)
            grey = self._grey_buffer(gate, width, height)
            if frame.ndim == 2:  # the decoder's planes: the luma comes first
                shrink(frame[:height], grey)
            else:
                small = self._small_bgr
                if small.shape[:2] != grey.shape:
                    small = self._small_bgr = np.empty((*grey.shape, 3), np.uint8)
                shrink(frame, small)
                cv2.cvtColor(small, cv2.COLOR_BGR2GRAY, dst=grey)
        verdict = gate.decide(self._grey, now)
        if verdict is None:
            if frame is not None:
                self.slot.abort_write()
            if self._interval and not self.slot.pull:
                self.demand.next_after = max(self.demand.next_after, now + self._interval)
            gate.after(self._grey, now)
            return None
        if frame is None:
            frame, scale = self._retrieve(source, shape)
        size = self._commit(frame, scale, verdict)
        gate.after(self._grey, now)
        return size

    def _grey_buffer(self, gate: Gate, width: int, height: int) -> np.ndarray:
        wanted = gate.grey_shape(width, height)
        if self._grey.shape != wanted:
            self._grey = np.empty(wanted, np.uint8)
        return self._grey
