"""Network streams (and files that need it) through PyAV (FFmpeg's own Python binding): no camera holds up another.

OpenCV's FFmpeg backend serialises ``open()`` across the whole process: three cameras
pointed at a server that accepts and never answers stopped a healthy camera for 20 s
at its loop point. PyAV opens each container with its own interrupt callback and
timeouts (``timeout=(open, read)``) and takes no process-wide lock, so a dead camera's
open waits alone.

The interface is OpenCvSource's: ``grab()`` reads and decodes the next frame (H.264
must be decoded anyway), ``retrieve(out)`` converts it to BGR only when the scheduler
will use it, straight into the slot's buffer; ``position_ms()`` is the frame's
timestamp, for the frozen-stream rule and a file's playing clock.

Files come here too when they need what only PyAV sets: ``skip_loop_filter`` (FFmpeg's
``skip_loop_filter=all``) and the hardware decoders (``decoder: vaapi|qsv|cuda``, PyAV's
``HWAccel``), which fall back to software with one log line where the device or the
FFmpeg build has none. (Converting a 4:2:0 frame from its planes with OpenCV instead of
swscale was tried: 0.08 against 0.12 core-ms at 640x272 but 0.35 against 0.24 at 720p,
and no gain in the daemon, so swscale stays.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from edged.config.camera import PYAV_DECODERS
from edged.config.models import CameraConfig
from edged.models.images import shrink
from edged.redact import redact_url
from edged.sources.opencv import SourceError, StreamInfo, diagnose_stream

log = logging.getLogger(__name__)

# Decoder output formats whose first plane is the picture's luma (what software H.264/H.265 decoders give).
_PLANAR_YUV = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21",
                         "gray"})


def pyav_available() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


class PyAvSource:
    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        self.info = StreamInfo(0, 0, None)
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._frame: Any = None
        self._time_base = 0.0
        self._count = 0
        self._hardware = config.decoder in PYAV_DECODERS  # False once the hardware decoder was found missing

    def open(self) -> StreamInfo:
        import av

        self.close()
        cfg = self.config
        options: dict[str, str] = {}
        if cfg.url.lower().startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = cfg.rtsp_transport
        container = self._open(av, options)
        if not container.streams.video:
            container.close()
            raise SourceError("the stream has no video")
        stream = container.streams.video[0]
        threads = cfg.decode_threads if cfg.decode_threads is not None else 1
        if threads:
            stream.thread_count = threads
        if cfg.skip_loop_filter:
            stream.codec_context.options = {**stream.codec_context.options, "skip_loop_filter": "all"}
        self._container = container
        self._time_base = float(stream.time_base) if stream.time_base else 0.0
        self._count = int(stream.frames or 0)
        self._frames = container.decode(stream)
        rate = float(stream.average_rate) if stream.average_rate else None
        self.info = StreamInfo(int(stream.codec_context.width), int(stream.codec_context.height),
                               rate if rate and 0 < rate < 1000 else None)
        return self.info

    def _open(self, av: Any, options: dict[str, str]) -> Any:
        """The container, on the hardware decoder while it is wanted. Only when the hardware open fails and the
        same open in software works is the hardware taken to be missing (said once, not tried again): a stream
        that is down fails both ways and keeps asking for the hardware when it comes back."""
        cfg = self.config
        timeout = (cfg.open_timeout_s, cfg.read_timeout_s)
        refused: BaseException | None = None
        if self._hardware:
            from av.codec.hwaccel import HWAccel

            try:
                return av.open(cfg.url, options=options, timeout=timeout,
                               hwaccel=HWAccel(cfg.decoder, allow_software_fallback=False))
            except (av.error.FFmpegError, OSError, RuntimeError, ValueError) as exc:
                refused = exc
        try:
            container = av.open(cfg.url, options=options, timeout=timeout)
        except (av.error.FFmpegError, OSError) as exc:
            if cfg.kind == "file":
                raise SourceError(f"cannot open video file (missing, unreadable or not a video): {_short(exc)}"
                                  ) from None
            raise SourceError(f"{diagnose_stream(cfg.url, cfg.open_timeout_s)} ({redact_url(_short(exc))})") from None
        if refused is not None:
            self._hardware = False
            log.warning("camera %s: hardware decoding (decoder: %s) is not available here (%s): decoding in software",
                        redact_url(cfg.url), cfg.decoder, _short(refused))
        return container

    def grab(self) -> bool:
        """Read and decode the next frame; False at the end of the stream or on a read error/timeout."""
        import av

        if self._frames is None:
            return False
        try:
            self._frame = next(self._frames)
        except StopIteration:
            self._frame = None
            return False
        except (av.error.FFmpegError, OSError) as exc:
            log.debug("camera read failed: %s", _short(exc))
            self._frame = None
            return False
        return True

    def retrieve(self, out: np.ndarray | None = None) -> np.ndarray | None:
        """The grabbed frame as BGR, written into ``out`` when it has the frame's shape."""
        frame = self._frame
        if frame is None:
            return None
        bgr = frame.reformat(format="bgr24")
        plane = bgr.planes[0]
        height, width = bgr.height, bgr.width
        rows = np.frombuffer(plane, np.uint8).reshape(height, plane.line_size)
        view = rows[:, : width * 3].reshape(height, width, 3)
        if out is not None and out.shape == (height, width, 3):
            np.copyto(out, view)
            return out
        return view.copy()

    def grey(self, out: np.ndarray) -> bool:
        """The grabbed frame's luma, shrunk into ``out`` (uint8 [h, w]), without a colour conversion."""
        frame = self._frame
        return frame is not None and luma_into(frame, out)

    def position_ms(self) -> float:
        frame = self._frame
        if frame is None or frame.pts is None or not self._time_base:
            return 0.0
        return float(frame.pts) * self._time_base * 1000.0

    def frame_count(self) -> int:
        """Frames in a file as its container says (0 when unknown, or for live sources)."""
        return self._count

    def close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception as exc:  # closing a broken stream must not take the worker down
                log.debug("closing the stream: %s", _short(exc))
        self._container = None
        self._frames = None
        self._frame = None


def luma_into(frame: Any, out: np.ndarray) -> bool:
    """A decoded PyAV frame's luma plane, shrunk into ``out`` (uint8 [h, w]); False for a format without one."""
    if frame.format.name not in _PLANAR_YUV:
        return False
    plane = frame.planes[0]
    luma = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
    shrink(luma, out)
    return True


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
