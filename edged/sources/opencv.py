"""OpenCV capture for every source kind: file, RTSP/HTTP stream, V4L2, GStreamer.

Open and read timeouts are passed when the capture is created, so a dead server
cannot block a read forever. ``grab()`` and ``retrieve()`` are separate: the
camera worker only pays for colour conversion and the copy when a frame will be
used. Reasons for failure never contain the URL's credentials.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.parse
from dataclasses import dataclass

import cv2
import numpy as np

from edged.config.camera import GSTREAMER_DECODERS
from edged.config.models import CameraConfig
from edged.redact import redact_url
from edged.sources.gstreamer import pipeline_for

log = logging.getLogger(__name__)

# OpenCV reads OPENCV_FFMPEG_CAPTURE_OPTIONS when a capture opens. It is set once,
# before any camera starts (prepare_native_libraries); only a camera whose RTSP
# transport differs from that default changes it, under this lock.
_OPEN_LOCK = threading.Lock()
_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


class SourceError(Exception):
    """A source failed; the message is safe to log and publish."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass
class StreamInfo:
    width: int
    height: int
    fps: float | None  # nominal frame rate, if the container says


def _transport_options(transport: str) -> str:
    return f"rtsp_transport;{transport}"


def prepare_native_libraries(cameras: list[CameraConfig]) -> None:
    """Process-wide settings for OpenCV and FFmpeg, made once before any camera starts.

    - Quiet: their own stderr output bypasses edged's log scrubbing and can carry a
      stream URL with its credentials; edged reports every failure itself.
    - The RTSP transport most cameras use becomes the default capture option, so
      the environment is not rewritten while other threads may be reading it.
    - OpenCV's own thread pool off: each camera, the scheduler and the JPEG encoder
      already run on threads of their own, and the pool's workers spin after every
      parallel call (in `edged bench`'s default-config stand-in row they were 0.31
      core-ms a frame on a 2-core EPYC before, none after).
    """
    cv2.setNumThreads(1)
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"  # AV_LOG_QUIET
    logging_api = getattr(cv2.utils, "logging", None)  # OpenCV >= 4.8's; 4.7 and older only cv2.setLogLevel
    if logging_api is not None:
        logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    elif hasattr(cv2, "setLogLevel"):
        cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
    transports = [c.rtsp_transport for c in cameras if c.url.startswith(("rtsp://", "rtsps://"))]
    common = max(set(transports), key=transports.count) if transports else "tcp"
    os.environ[_OPTIONS] = _transport_options(common)


def gstreamer_available() -> bool:
    info = cv2.getBuildInformation()
    for line in info.splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


class OpenCvSource:
    """One open capture. Not thread-safe: owned by its camera worker thread."""

    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        self.kind = config.kind
        self._cap: cv2.VideoCapture | None = None
        self.info: StreamInfo | None = None

    @property
    def safe_url(self) -> str:
        return redact_url(self.config.url)

    def open(self) -> StreamInfo:
        self.close()
        cfg = self.config
        timeouts = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(cfg.read_timeout_s * 1000),
        ]
        if self.kind in ("gstreamer", "libcamera") or cfg.decoder in GSTREAMER_DECODERS:
            if not gstreamer_available():
                raise SourceError(
                    "this OpenCV build has no GStreamer support (use the system OpenCV on Jetson/Pi; "
                    "'edged check' says what to install)", permanent=True
                )
            if cfg.decoder in GSTREAMER_DECODERS:
                pipeline = pipeline_for(cfg)
            else:
                pipeline = cfg.url[4:].strip() if cfg.url.startswith("gst:") else cfg.url
            cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER, timeouts)  # OpenCV >= 4.7 honours both here
            if not cap.isOpened() and cfg.decoder == "rpi" and self.kind != "libcamera":
                cap.release()
                log.warning("the Raspberry Pi's H.264 decoder refused this stream (it stops at 1920x1080): "
                            "decoding it in software")
                self.config = cfg.model_copy(update={"decoder": "software"})
                return self.open()
        elif self.kind == "v4l2":
            device: int | str = int(cfg.url) if cfg.url.isdigit() else cfg.url
            cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
            if cap.isOpened():
                self._configure_v4l2(cap)
        else:
            threads = cfg.decode_threads if cfg.decode_threads is not None else 1
            if threads:  # 0: FFmpeg's own choice (frame threads, one per core)
                timeouts += [cv2.CAP_PROP_N_THREADS, threads]
            wanted = _transport_options(cfg.rtsp_transport)
            default = os.environ.get(_OPTIONS)
            if not cfg.url.startswith(("rtsp://", "rtsps://")) or wanted == default:
                cap = cv2.VideoCapture(cfg.url, cv2.CAP_FFMPEG, timeouts)
            else:
                with _OPEN_LOCK:  # the rare camera that differs from the others
                    os.environ[_OPTIONS] = wanted
                    try:
                        cap = cv2.VideoCapture(cfg.url, cv2.CAP_FFMPEG, timeouts)
                    finally:
                        if default is None:
                            os.environ.pop(_OPTIONS, None)
                        else:
                            os.environ[_OPTIONS] = default
        if not cap.isOpened():
            cap.release()
            raise SourceError(self._open_failure())
        self._cap = cap
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        self.info = StreamInfo(width, height, fps if 0 < fps < 1000 else None)
        return self.info

    def _open_failure(self) -> str:
        if self.kind == "file":
            return "cannot open video file (missing, unreadable or not a video)"
        if self.kind == "v4l2":
            return "cannot open V4L2 device (missing, busy or no permission)"
        if self.kind in ("gstreamer", "libcamera") or self.config.decoder in GSTREAMER_DECODERS:
            return f"cannot start the GStreamer pipeline (decoder: {self.config.decoder})"
        return diagnose_stream(self.config.url, self.config.open_timeout_s)

    def _configure_v4l2(self, cap: cv2.VideoCapture) -> None:
        cfg = self.config
        if cfg.pixel_format:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*cfg.pixel_format))
        if cfg.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
        if cfg.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def grab(self) -> bool:
        return self._cap is not None and bool(self._cap.grab())

    def frame_count(self) -> int:
        """Frames in a file (0 when unknown, or for live sources)."""
        return max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))) if self._cap is not None else 0

    def position_ms(self) -> float:
        return float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) if self._cap is not None else 0.0

    def retrieve(self, out: np.ndarray | None = None) -> np.ndarray | None:
        """Decode the grabbed frame (into ``out`` when its size matches); returns the frame."""
        if self._cap is None:
            return None
        ok, frame = self._cap.retrieve() if out is None else self._cap.retrieve(out)
        if not ok or frame is None:
            return None
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def diagnose_stream(url: str, open_timeout_s: float) -> str:
    """Why a network stream did not open, as far as a TCP probe of its host can tell (FFmpeg does not say)."""
    parts = urllib.parse.urlsplit(url)
    default = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        host, port = parts.hostname, parts.port or default
    except ValueError:
        return "cannot open stream: the URL has no valid port"
    if not host or port is None:
        return f"cannot open stream within {open_timeout_s:g} s (unreachable, refused or not a video)"
    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=min(2.0, open_timeout_s)):
            pass
    except socket.gaierror:
        return f"cannot open stream: cannot resolve the host name {host}"
    except ConnectionRefusedError:
        return f"cannot open stream: {where} refused the connection (nothing listening there?)"
    except OSError as exc:
        return f"cannot open stream: {where} is unreachable ({exc.strerror or type(exc).__name__})"
    return f"cannot open stream within {open_timeout_s:g} s: {where} accepts connections, but no video came " \
           f"(wrong path, credentials, or a server that does not answer)"
