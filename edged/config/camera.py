"""A camera: its source, rate, detection settings, motion gate, tamper watch, zones, lines and masks, and the
events of the objects it follows."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from edged.config.base import Name, ReconnectConfig, Strict
from edged.config.looks import ClassifyConfig, ColorsConfig, VerifyConfig


class DetectConfig(Strict):
    labels: list[Name] = Field(default_factory=list, description="labels to report; empty: all")
    min_score: float = Field(0.4, gt=0.0, le=1.0)


class DetectOverride(Strict):
    labels: list[Name] | None = None
    min_score: float | None = Field(None, gt=0.0, le=1.0)

    def over(self, base: DetectConfig) -> DetectConfig:
        return DetectConfig(
            labels=base.labels if self.labels is None else self.labels,
            min_score=base.min_score if self.min_score is None else self.min_score,
        )



class EventsConfig(Strict):
    enabled: bool = True
    iou: float = Field(0.3, gt=0, lt=1, description="IoU that continues a track")
    min_hits: int = Field(2, ge=1, le=30, description="frames in a row before an object is reported")
    max_missed: int = Field(5, ge=0, le=300, description="looks without it before an object has gone (and lost_s)")
    lost_s: float = Field(2.0, ge=0, le=3600, description="seconds without it before an object has gone (and "
                                                          "max_missed): an object hidden for a moment keeps its id")
    update_s: float = Field(30.0, ge=0, description="an 'update' event this often for objects that stay; 0: never")
    appearance: bool = Field(True, description="tell objects apart by their colour histograms too (read from the "
                             "detector's input; about 20 µs per object)")


Point = tuple[float, float]
_RESERVED = frozenset({"detections", "events", "status", "all", "detect", "motion", "snapshot", "telemetry",
                       "alerts"})


def _check_points(points: list[Point]) -> list[Point]:
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"point [{x:g}, {y:g}] is outside the frame: coordinates are fractions of the "
                             f"frame's width and height, 0..1")
    return points


def _check_polygon(points: list[Point]) -> list[Point]:
    _check_points(points)
    if len(points) < 3:
        raise ValueError(f"a polygon needs at least 3 points, not {len(points)}")
    # Flat only when every point is on one line: a bow-tie (self-crossing) has a signed area of zero but covers
    # two triangles, and the even-odd test counts both as inside.
    (x0, y0) = points[0]
    far = max(points, key=lambda p: (p[0] - x0) ** 2 + (p[1] - y0) ** 2)
    dx, dy = far[0] - x0, far[1] - y0
    if max(abs(dx * (y - y0) - dy * (x - x0)) for x, y in points) < 1e-6:
        raise ValueError("the polygon has no area (its points are on one line)")
    return points


Polygon = Annotated[list[Point], AfterValidator(_check_polygon)]


def _check_area_name(value: str) -> str:
    if value in _RESERVED:
        raise ValueError(f"'{value}' is a name edged's topics use; choose another "
                         f"(reserved: {', '.join(sorted(_RESERVED))})")
    return value


AreaName = Annotated[Name, AfterValidator(_check_area_name)]


class MotionConfig(Strict):
    enabled: bool = Field(True, description="gate the detector on motion; false: every due frame is inferred "
                                            "(motion is still measured)")
    refresh_s: float = Field(5.0, gt=0, le=3600, description="infer at least this often, motion or not")
    hold_s: float = Field(1.0, ge=0, le=60, description="keep inferring this long after motion stops")
    threshold: int = Field(20, ge=1, le=255, description="grey-level change (0..255) that counts as motion, after "
                                                          "the frame's overall brightness change is taken out")
    min_area: float = Field(0.0005, ge=0, lt=1, description="the smallest moving blob, as a fraction of the frame")
    background_s: float = Field(2.0, gt=0, le=3600, description="how fast the background adapts (time constant)")
    storm_fraction: float = Field(0.6, gt=0, le=1, description="more of the picture than this changing at once "
                                  "is a light change (lamps, IR at dusk): relearn, no motion")
    width: int = Field(320, ge=64, le=1280, description="width of the grey copy motion is measured on")
    masks: list[Polygon] = Field(default_factory=list, description="polygons where motion is ignored")
    regions: Literal["auto", "on", "off"] = Field(
        "auto", description="detect on a crop around the motion; auto: when the frame is at least twice the "
                            "model's input on both sides")
    region_margin: float = Field(0.5, ge=0, le=4, description="grow the motion's box by this share of its size")


class TamperConfig(Strict):
    enabled: bool = True
    hold_s: float = Field(3.0, gt=0, le=600, description="a condition must hold this long to fire, and be gone "
                                                         "this long to resolve")
    learn_s: float = Field(10.0, gt=0, le=3600, description="how long the camera's normal view is learned first")
    covered_fraction: float = Field(0.65, gt=0, le=1, description="covered: this share of the picture is flat")
    dark_level: float = Field(12.0, ge=0, le=255, description="covered: mean grey level under this, and flat")
    defocus_ratio: float = Field(0.2, gt=0, lt=1, description="defocused: sharpness under this share of the "
                                                               "camera's own baseline")
    moved_similarity: float = Field(0.25, gt=-1, lt=1, description="moved: correlation with the learned view "
                                                                  "under this")
    relearn_s: float = Field(600.0, gt=0, description="a view that stays moved this long becomes the new normal")


def _check_line(points: list[Point]) -> list[Point]:
    _check_points(points)
    if len(points) != 2:
        raise ValueError(f"a line is 2 points, from its start to its end; got {len(points)}")
    if points[0] == points[1]:
        raise ValueError("the line's two points are the same")
    return points


Segment = Annotated[list[Point], AfterValidator(_check_line)]


class SpeedConfig(Strict):
    """A real distance in the zone: two points on the ground (frame fractions) and the metres between them."""

    points: Segment = Field(description="two points on the ground, along the way objects move")
    metres: float = Field(gt=0, le=10000, description="the real distance between the two points")


class ZoneConfig(Strict):
    polygon: Polygon
    labels: list[Name] = Field(default_factory=list, description="labels to count; empty: the camera's labels")
    loiter_s: float | None = Field(None, gt=0, le=86400, description="'loitering' after this long in the zone")
    speed: SpeedConfig | None = Field(None, description="measure the speed of objects crossing the zone along "
                                      "points[0] -> points[1] (km/h on 'leave' events and a retained sensor)")
    stays: int = Field(20, ge=1, le=10000, description="the retained time-in-zone (and speed) figures are over "
                                                        "this many last stays per label")


class LineConfig(Strict):
    points: Segment = Field(
        description="[start, end]; crossing from its left to its right, looking from start to end, is 'in'")
    labels: list[Name] = Field(default_factory=list, description="labels to count; empty: the camera's labels")
    hysteresis: float = Field(0.02, ge=0, le=1, description="a crossing counts once the footpoint is this far "
                              "(a fraction of the frame) past the line, or has stayed past it hysteresis_s; "
                              "before, the object must have been as far (or as long) on the side it came from")
    hysteresis_s: float = Field(0.5, ge=0, le=60, description="see hysteresis; 0: distance alone (both 0: every "
                                                               "move across the line counts at once)")

    @model_validator(mode="after")
    def _fits(self) -> LineConfig:
        (x0, y0), (x1, y1) = self.points
        length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
        if self.hysteresis >= length:
            raise ValueError(f"hysteresis {self.hysteresis:g} is as long as the line itself ({length:.3g}): "
                             f"make it a small share of the line's length")
        return self


class RestartBudgetConfig(Strict):
    max_restarts: int = Field(
        5, ge=1, le=1000, description="sessions that came online and then failed, allowed within window_s"
    )
    window_s: float = Field(300.0, gt=0)
    cooldown_s: float = Field(300.0, gt=0, description="wait this long once the budget is spent")


SourceKind = Literal["file", "stream", "v4l2", "gstreamer", "libcamera"]
GSTREAMER_DECODERS = frozenset({"jetson", "rpi"})  # a GStreamer pipeline edged builds
PYAV_DECODERS = frozenset({"vaapi", "qsv", "cuda"})  # FFmpeg's hardware decoders through PyAV
_STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


def source_kind(url: str) -> SourceKind:
    if url.startswith("gst:") or " ! " in url:
        return "gstreamer"
    if url == "libcamera" or url.startswith("libcamera:"):
        return "libcamera"
    if url.startswith(_STREAM_SCHEMES):
        return "stream"
    if url.startswith("/dev/video") or url.isdigit():
        return "v4l2"
    return "file"


class CameraConfig(Strict):
    url: str = Field(min_length=1, description="file path, rtsp/http URL, /dev/videoN, or 'gst:' pipeline")
    enabled: bool = True
    fps: float | None = Field(None, gt=0, le=240, description="detections per second; unset: as fast as possible")
    detect: DetectOverride = Field(default_factory=DetectOverride)
    loop: bool = Field(False, description="files: start again at the end")
    realtime: bool = Field(True, description="files: play at the clip's own frame rate")
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    decode_threads: int | None = Field(
        None, ge=0, le=64,
        description="FFmpeg decoding threads; unset: 1 (frame threads hold back a frame each and cost a third more "
                    "CPU per frame, and cameras decode in parallel anyway); 0: FFmpeg's default (one per core), "
                    "for a single very large stream",
    )
    reader: Literal["auto", "pyav", "opencv"] = Field(
        "auto", description="files and network streams: auto reads them with PyAV where it is installed (no "
                            "process-wide open lock: a dead camera cannot hold up the others; the colour conversion "
                            "costs half of OpenCV's), else with OpenCV")
    open_timeout_s: float = Field(10.0, gt=0, le=300)
    read_timeout_s: float = Field(5.0, gt=0, le=300)
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    restart_budget: RestartBudgetConfig = Field(default_factory=RestartBudgetConfig)
    width: int | None = Field(None, ge=16, le=8192, description="v4l2: requested capture width")
    height: int | None = Field(None, ge=16, le=8192, description="v4l2: requested capture height")
    pixel_format: str | None = Field(None, pattern=r"^[A-Z0-9]{4}$", description="v4l2: FOURCC, e.g. MJPG")
    decoder: Literal["software", "jetson", "rpi", "vaapi", "qsv", "cuda"] = Field(
        "software", description="jetson: NVDEC via nvv4l2decoder; rpi: v4l2h264dec (edged builds a GStreamer "
        "pipeline for both); vaapi, qsv, cuda: FFmpeg's hardware decoder through PyAV (Intel iGPUs: vaapi or qsv; "
        "NVIDIA GPUs: cuda), in software with one log line where the device or the FFmpeg build has none"
    )
    skip_loop_filter: bool = Field(
        False, description="files and network streams: FFmpeg skips H.264/H.265's deblocking filter (about a fifth "
        "less decoding CPU; pictures show block edges; `edged bench` measures the cost and the detections' "
        "agreement)")
    codec: Literal["h264", "h265"] = Field("h264", description="the stream's codec, for hardware decoding")
    latency_ms: int = Field(200, ge=0, le=10000, description="rtspsrc jitter buffer, for hardware decoding")
    priority: int = Field(50, ge=0, le=100, description="the governor slows lower priorities first")
    events: bool | None = Field(None, description="object events for this camera; unset: events.enabled")
    stall_s: float | None = Field(
        None, gt=0, le=300, description="reopen a stream whose frames stop coming (or freeze) this long; "
        "unset: read_timeout_s"
    )
    tiles: bool = Field(False, description="detect on two overlapping tiles (each 60 % of the longer side) "
                        "where the whole frame would be letterboxed (no motion region): small objects at 1.4x the "
                        "scale of a 4:3 frame, two of the engine's batch places per frame (needs engine.batch >= 2)")
    motion: MotionConfig = Field(default_factory=MotionConfig)
    tamper: TamperConfig = Field(default_factory=TamperConfig)
    zones: dict[AreaName, ZoneConfig] = Field(default_factory=dict)
    lines: dict[AreaName, LineConfig] = Field(default_factory=dict)
    object_masks: list[Polygon] = Field(default_factory=list, description="detections whose footpoint (bottom "
                                        "centre) lies in one of these polygons are dropped")
    classify: list[ClassifyConfig] = Field(default_factory=list, description="classifiers on tracked crops: a "
                                           "sub-label once attempts agree")
    verify: dict[Name, VerifyConfig] = Field(default_factory=dict, description="label -> the detector again on an "
                                             "enlarged crop before a new object is published")
    colors: ColorsConfig | None = Field(None, description="named colours of objects (attributes.colors)")

    @property
    def kind(self) -> SourceKind:
        return source_kind(self.url)

    @model_validator(mode="after")
    def _fits_kind(self) -> CameraConfig:
        kind = self.kind
        if kind != "file" and (self.loop or not self.realtime):
            raise ValueError(f"'loop' and 'realtime' apply to files only; this url is a {kind} source")
        if self.decoder != "software" and kind not in ("file", "stream", "libcamera"):
            raise ValueError(f"'decoder: {self.decoder}' is for RTSP streams and files; this url is a {kind} source")
        if kind == "libcamera" and self.decoder != "rpi":
            raise ValueError("a libcamera url is a Raspberry Pi camera: set 'decoder: rpi'")
        if kind == "stream" and self.decoder in GSTREAMER_DECODERS and not self.url.startswith(("rtsp://", "rtsps://")):
            raise ValueError(f"'decoder: {self.decoder}' supports rtsp:// streams; decode other streams in software")
        if (self.decoder in PYAV_DECODERS or self.skip_loop_filter) and self.reader == "opencv":
            what = f"'decoder: {self.decoder}'" if self.decoder in PYAV_DECODERS else "'skip_loop_filter'"
            raise ValueError(f"{what} needs the PyAV reader; 'reader: opencv' cannot set FFmpeg's decoder")
        if self.skip_loop_filter and (kind not in ("file", "stream") or self.decoder in GSTREAMER_DECODERS):
            raise ValueError("'skip_loop_filter' applies to files and network streams decoded by FFmpeg")
        both = sorted(set(self.zones) & set(self.lines))
        if both:
            raise ValueError(f"'{both[0]}' is both a zone and a line: a name is one topic level, give them "
                             f"different names")
        if kind not in ("v4l2", "libcamera") and (self.width or self.height or self.pixel_format):
            raise ValueError(
                f"'width', 'height' and 'pixel_format' apply to V4L2 and libcamera sources; this url is a {kind} source"
            )
        return self
