"""GStreamer pipelines for hardware decoding, built from a camera's config.

``decoder: jetson`` decodes on the NVDEC engine (``nvv4l2decoder``) and converts on
the VIC (``nvvidconv``); ``decoder: rpi`` uses the Raspberry Pi's V4L2 stateful
decoder (``v4l2h264dec``/``v4l2h265dec``), and ``url: libcamera`` reads a Pi camera.
Every pipeline ends in an ``appsink`` that keeps only the newest frame
(``drop=true max-buffers=1``), so a slow consumer never queues stale frames, and
edged (not the sink) paces files.

RTSP credentials go into ``rtspsrc``'s ``user-id``/``user-pw`` properties, not the
location; pipelines are never logged (they may carry a password).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from edged.config.models import CameraConfig

APPSINK = "appsink drop=true max-buffers=1 sync=false"
_DECODERS = {
    ("jetson", "h264"): "h264parse ! nvv4l2decoder",
    ("jetson", "h265"): "h265parse ! nvv4l2decoder",
    ("rpi", "h264"): "h264parse ! v4l2h264dec",
    ("rpi", "h265"): "h265parse ! v4l2h265dec",
}
_TO_BGR = {
    "jetson": "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR",
    "rpi": "videoconvert ! video/x-raw,format=BGR",
}
_DEMUXERS = {".mp4": "qtdemux", ".mov": "qtdemux", ".m4v": "qtdemux", ".mkv": "matroskademux",
             ".webm": "matroskademux", ".ts": "tsdemux"}


def quote(value: str) -> str:
    """A gst-launch property value, double-quoted with quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rtsp_source(url: str, transport: str, latency_ms: int) -> str:
    parts = urlsplit(url)
    auth = ""
    if parts.username is not None:
        auth = f" user-id={quote(unquote(parts.username))}"
        if parts.password is not None:
            auth += f" user-pw={quote(unquote(parts.password))}"
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return f"rtspsrc location={quote(url)} protocols={transport} latency={latency_ms}{auth}"


def pipeline_for(camera: CameraConfig) -> str:
    """The GStreamer pipeline for a camera with a hardware ``decoder``."""
    decoder = camera.decoder
    if decoder == "software":
        raise ValueError("software decoding does not use a built pipeline")
    if camera.kind == "libcamera":
        caps = ["video/x-raw", "format=NV12"]
        if camera.width and camera.height:
            caps += [f"width={camera.width}", f"height={camera.height}"]
        return f"libcamerasrc ! {','.join(caps)} ! {_TO_BGR['rpi']} ! {APPSINK}"
    decode = f"{_DECODERS[(decoder, camera.codec)]} ! {_TO_BGR[decoder]} ! {APPSINK}"
    if camera.kind == "stream" and camera.url.startswith(("rtsp://", "rtsps://")):
        source = _rtsp_source(camera.url, camera.rtsp_transport, camera.latency_ms)
        return f"{source} ! rtp{camera.codec}depay ! {decode}"
    if camera.kind == "file":
        suffix = "." + camera.url.rsplit(".", 1)[-1].lower() if "." in camera.url else ""
        demux = _DEMUXERS.get(suffix, "parsebin")
        return f"filesrc location={quote(camera.url)} ! {demux} ! {decode}"
    raise ValueError(f"hardware decoding is for RTSP streams and files, not {camera.kind} sources")
