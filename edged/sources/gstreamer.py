"""GStreamer pipelines for hardware decoding, built from a camera's config.

``decoder: jetson`` decodes on the NVDEC engine (``nvv4l2decoder``) and converts on
the VIC (``nvvidconv``); ``decoder: rpi`` uses the Raspberry Pi's V4L2 stateful H.264
decoder (``v4l2h264dec``) where the board has one (``rpi_decoder``), and
``url: libcamera[:NAME]`` reads a Pi camera. A live pipeline ends in an ``appsink``
that keeps only the newest frame (``drop=true max-buffers=1``), so a slow consumer
never queues stale frames. A file's pipeline keeps back-pressure instead
(``drop=false`` and a small queue): a hardware decoder would otherwise race ahead of
edged, which paces files itself, and frames would go missing.

Raspberry Pi decoders, by board (Raspberry Pi's own documentation): the Pi 4 and
earlier have a stateful H.264 decoder up to 1920x1080 (``v4l2h264dec``); no Pi has a
stateful HEVC decoder (the Pi 4 and 5 decode HEVC statelessly, ``v4l2slh265dec``,
which Raspberry Pi does not support for applications); the Pi 5 has no H.264
decoder at all. Where the board has none for the codec, the camera is decoded in
software and edged says so when it starts.

RTSP credentials go into ``rtspsrc``'s ``user-id``/``user-pw`` properties, not the
location; pipelines are never logged (they may carry a password).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from edged.config.models import CameraConfig

APPSINK = "appsink drop=true max-buffers=1 sync=false"
FILE_SINK = "queue max-size-buffers=4 ! appsink drop=false max-buffers=2 sync=false"  # back-pressure, no loss
_DECODERS = {
    ("jetson", "h264"): "h264parse ! nvv4l2decoder",
    ("jetson", "h265"): "h265parse ! nvv4l2decoder",
    ("rpi", "h264"): "h264parse ! v4l2h264dec",
}


def rpi_decoder(board: str, codec: str) -> tuple[bool, str]:
    """Whether ``decoder: rpi`` has a hardware decoder for ``codec`` on ``board`` (the device-tree model
    string), and the line that says what edged does."""
    model = board or "an unknown board"
    if "Raspberry Pi" not in board:
        return False, f"{model} is not a Raspberry Pi: decoding {codec.upper()} in software"
    if codec == "h265":
        return False, (f"{model} has no stateful HEVC decoder (its HEVC block is stateless and not supported "
                       f"for applications): decoding H.265 in software")
    if "Raspberry Pi 5" in board or "Compute Module 5" in board or "Raspberry Pi 500" in board:
        return False, f"{model} has no H.264 hardware decoder: decoding H.264 in software"
    return True, (f"{model}: H.264 on the hardware decoder (v4l2h264dec, up to 1920x1080; "
                  f"a larger stream is decoded in software)")
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
        name = camera.url.split(":", 1)[1] if ":" in camera.url else ""
        source = f"libcamerasrc camera-name={quote(name)}" if name else "libcamerasrc"
        return f"{source} ! {','.join(caps)} ! {_TO_BGR['rpi']} ! {APPSINK}"
    if (decoder, camera.codec) not in _DECODERS:
        raise ValueError(f"no {camera.codec.upper()} hardware decoder for 'decoder: {decoder}' (decode in software)")
    sink = FILE_SINK if camera.kind == "file" else APPSINK
    decode = f"{_DECODERS[(decoder, camera.codec)]} ! {_TO_BGR[decoder]} ! {sink}"
    if camera.kind == "stream" and camera.url.startswith(("rtsp://", "rtsps://")):
        source = _rtsp_source(camera.url, camera.rtsp_transport, camera.latency_ms)
        return f"{source} ! rtp{camera.codec}depay ! {decode}"
    if camera.kind == "file":
        suffix = "." + camera.url.rsplit(".", 1)[-1].lower() if "." in camera.url else ""
        demux = _DEMUXERS.get(suffix, "parsebin")
        return f"filesrc location={quote(camera.url)} ! {demux} ! {decode}"
    raise ValueError(f"hardware decoding is for RTSP streams and files, not {camera.kind} sources")
