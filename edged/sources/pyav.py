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
FFmpeg build has none.

The BGR conversion of a BT.601 limited-range 4:2:0 frame (what H.264 cameras and files
send) is OpenCV's, from the decoder's planes straight into the slot's buffer: nothing
frame-sized is allocated per frame. ``frame.reformat`` made a new swscale context with
its own thread pool (``threads=0``: as many as CPUs) and a new BGR frame for every
frame: 0.47 against 0.35 core-ms per 720p frame counted over all threads (0.35 on the
calling thread alone, which is why an earlier measurement favoured it), and eight 720p
decoding threads peaked at 212 MB resident against 141 MB (108 MB decoding alone).
Other formats (full range, BT.709, 4:2:2, 4:4:4, odd sizes) go through one kept
swscale context on one thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from edged.config.camera import PYAV_DECODERS
from edged.config.models import CameraConfig
from edged.models.images import shrink
from edged.models.planes import chroma_planes, frame_size, planar_shape
from edged.redact import redact_url
from edged.sources.opencv import SourceError, StreamInfo, diagnose_stream

log = logging.getLogger(__name__)

# Decoder output formats whose first plane is the picture's luma (what software H.264/H.265 decoders give).
_OPENCV_420 = {"yuv420p": 0, "nv12": 1}  # converted from planes by OpenCV (even sizes, BT.601 limited range)
_BT601 = frozenset({2, 5, 6})  # AVColorSpace: unspecified (swscale's default is BT.601), BT470BG, SMPTE170M
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
        self._planes: np.ndarray | None = None  # a 4:2:0 frame's planes, gathered for OpenCV's conversion
        self._reformatter: Any = None  # one swscale context for the formats OpenCV does not convert
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

    def planar(self) -> bool:
        """Whether the grabbed frame can travel as its 4:2:0 planes (``models.planes``): software-decoded
        ``yuv420p`` that OpenCV converts as swscale would."""
        frame = self._frame
        return frame is not None and frame.format.name == "yuv420p" and _opencv_converts(frame)

    def retrieve(self, out: np.ndarray | None = None) -> np.ndarray | None:
        """The grabbed frame as BGR, written into ``out`` when it has the frame's shape; as its planes when
        ``out`` is an ``I420`` array of its size, or of its size divided by a whole number (shrunk: area
        averaging, OpenCV's fast path for whole factors) (``planar()``)."""
        frame = self._frame
        if frame is None:
            return None
        height, width = frame.height, frame.width
        if out is not None and out.ndim == 2 and self.planar():
            if out.shape == planar_shape(height, width):
                gather_420(frame, out, 0)
                return out
            if shrink_420(frame, out):
                return out
        if out is None or out.shape != (height, width, 3):
            out = np.empty((height, width, 3), np.uint8)
        layout = _OPENCV_420.get(frame.format.name)
        if layout is not None and _opencv_converts(frame):
            planes = self._planes
            if planes is None or planes.shape != planar_shape(height, width):
                planes = self._planes = np.empty(planar_shape(height, width), np.uint8)
            gather_420(frame, planes, layout)
            cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_NV12 if layout else cv2.COLOR_YUV2BGR_I420, dst=out)
            return out
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        bgr = self._reformatter.reformat(frame, format="bgr24", threads=1)
        np.copyto(out, _plane(bgr.planes[0], height, width * 3).reshape(height, width, 3))
        return out

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


def _opencv_converts(frame: Any) -> bool:
    """Even-sized, limited range, BT.601 (or unspecified, which swscale takes as BT.601)."""
    return not (frame.width | frame.height) & 1 and frame.color_range != 2 and frame.colorspace in _BT601


def gather_420(frame: Any, out: np.ndarray, nv12: int) -> None:
    """A 4:2:0 frame's planes, without their row padding, into ``out`` ([h * 3 / 2, w] uint8) in the layout
    OpenCV converts: I420 (Y, U, V) or, for ``nv12``, Y then interleaved UV."""
    height, width = frame.height, frame.width
    if nv12:
        out[:height] = _plane(frame.planes[0], height, width)
        out[height:] = _plane(frame.planes[1], height // 2, width)
        return
    for target, source in zip((out[:height], *chroma_planes(out, height, width)), _i420_views(frame), strict=True):
        target[:] = source


def shrink_420(frame: Any, out: np.ndarray) -> bool:
    """A ``yuv420p`` frame's planes shrunk by a whole factor into ``out`` (the ``I420`` array of the frame's size
    divided by it, even); False when ``out`` is not that."""
    height, width = frame.height, frame.width
    out_h, out_w = frame_size(out)
    factor = width // out_w if out_w else 0
    if factor < 2 or out_w * factor != width or out_h * factor != height or (out_w | out_h) & 1:
        return False
    for target, source in zip((out[:out_h], *chroma_planes(out, out_h, out_w)), _i420_views(frame), strict=True):
        cv2.resize(source, (target.shape[1], target.shape[0]), dst=target, interpolation=cv2.INTER_AREA)
    return True


def luma_into(frame: Any, out: np.ndarray) -> bool:
    """A decoded PyAV frame's luma plane, shrunk into ``out`` (uint8 [h, w]); False for a format without one."""
    if frame.format.name not in _PLANAR_YUV:
        return False
    shrink(_plane(frame.planes[0], frame.height, frame.width), out)
    return True


def _plane(plane: Any, rows: int, cols: int) -> np.ndarray:
    """A PyAV plane's pixels without its row padding (a view)."""
    return np.frombuffer(plane, np.uint8).reshape(rows, plane.line_size)[:, :cols]


def _i420_views(frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``yuv420p`` frame's Y, U and V planes (views, without row padding)."""
    height, width = frame.height, frame.width
    y, u, v = frame.planes[:3]
    return (_plane(y, height, width), _plane(u, height // 2, width // 2), _plane(v, height // 2, width // 2))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
