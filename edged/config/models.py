"""The configuration, as pydantic v2 models. Unknown keys are errors everywhere.

A minimal working config is a handful of lines::

    engine: {model: yolov3-tiny}
    cameras:
      gate: {url: "rtsp://user:${CAM_PW}@10.0.0.7/stream1", fps: 10}
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from edged.addresses import is_loopback
from edged.names import FORBIDDEN, check_name

Name = Annotated[str, AfterValidator(check_name)]


def _numeric(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    return any(arg in (int, float) for arg in get_args(annotation))


class _Strict(BaseModel):
    # No inf or NaN anywhere: '.inf' for a timeout or a cooldown is a typo, never a wish.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools_for_numbers(cls, data: Any) -> Any:
        """YAML's true/false is not 1/0: 'port: true' is a mistake, not port 1."""
        if isinstance(data, dict):
            for key, value in data.items():
                field = cls.model_fields.get(key) if isinstance(key, str) else None
                if isinstance(value, bool) and field is not None and _numeric(field.annotation):
                    raise ValueError(f"'{key}' must be a number, not {str(value).lower()}")
        return data


class LogConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class TlsConfig(_Strict):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure: bool = Field(False, description="skip the broker hostname check (the CA is still checked)")

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("give both 'cert' and 'key' for a client certificate, or neither")
        return self


class MqttConfig(_Strict):
    host: str = Field("localhost", min_length=1)
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        "auto", description="MQTT 5 where the broker speaks it (a publish its ACL refuses is then seen and counted), "
                            "else 3.1.1")
    tls: TlsConfig | None = None
    topic_prefix: Name = "edged"
    detections_qos: Literal[0, 1] = 0
    spool: Path | None = Field(None, description="QoS 1 outbox file; unset: $STATE_DIRECTORY or ~/.local/state/edged")
    spool_max_mb: float = Field(64.0, gt=0, le=100000, description="oldest messages go first above this")
    reconnect_min_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    controls: bool = Field(False, description="take <prefix>/<camera>/detect/set and motion/set (ON/OFF) from the "
                                              "broker; restrict who may publish them with the broker's ACL")

    @model_validator(mode="after")
    def _auth(self) -> MqttConfig:
        if self.password is not None and self.username is None:
            raise ValueError("'password' needs a 'username'")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("'reconnect_max_s' must be at least 'reconnect_min_s'")
        return self


class DetectConfig(_Strict):
    labels: list[Name] = Field(default_factory=list, description="labels to report; empty: all")
    min_score: float = Field(0.4, gt=0.0, le=1.0)


class DetectOverride(_Strict):
    labels: list[Name] | None = None
    min_score: float | None = Field(None, gt=0.0, le=1.0)

    def over(self, base: DetectConfig) -> DetectConfig:
        return DetectConfig(
            labels=base.labels if self.labels is None else self.labels,
            min_score=base.min_score if self.min_score is None else self.min_score,
        )


class _EngineBase(_Strict):
    model: str = Field(min_length=1, description="a model name built by 'edged model build', or a path")
    labels: Path | None = Field(None, description="class names, one a line, for a model without a sidecar")
    batch: int = Field(1, ge=1, le=64)
    batch_window_ms: float = Field(5.0, ge=0, le=1000)
    num_requests: int | None = Field(
        None, ge=1, le=16,
        description="input buffers and requests in flight; unset: OpenVINO's optimum plus one being prepared, else 2",
    )
    iou: float = Field(0.45, gt=0, le=1)
    max_detections: int = Field(100, ge=1, le=1000)
    hang_timeout_s: float = Field(30.0, ge=1, le=3600, description="a batch that takes longer means the engine hung")
    timeout_s: float = Field(2.0, gt=0, le=600, description="in a chain: a batch not back within this long fails "
                                                           "this engine over to the next")


class OpenVinoConfig(_EngineBase):
    backend: Literal["openvino"]
    device: str = "CPU"
    precision: Literal["auto", "fp32", "fp16", "int8"] = Field(
        "auto", description="which model variant to load; auto: INT8 where one is installed (it passed its gate), "
                            "else FP32")
    inference_precision: Literal["auto", "f32", "f16", "bf16"] = Field(
        "auto", description="precision of float layers (OpenVINO's INFERENCE_PRECISION_HINT); auto: the fastest "
                            "one that passes the accuracy gate against f32 on this device (see README)"
    )
    performance_hint: Literal["latency", "throughput"] = "throughput"
    num_streams: int | None = Field(None, ge=1, le=64)
    num_threads: int | None = Field(None, ge=1, le=256)
    cache_dir: Path | None = None


class OnnxRuntimeConfig(_EngineBase):
    backend: Literal["onnxruntime"]
    precision: Literal["fp32"] = "fp32"
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1)
    num_threads: int | None = Field(None, ge=1, le=256)


class TensorRtConfig(_EngineBase):
    backend: Literal["tensorrt"]
    precision: Literal["fp32", "fp16", "int8"] = Field("int8", description="which engine to load")
    gpu: int = Field(0, ge=0, le=16, description="CUDA device index")


class KServeConfig(_EngineBase):
    """A remote server speaking KServe v2 / the Open Inference Protocol over gRPC (Triton, OpenVINO Model Server,
    KServe, MLServer). ``model`` is the local model edged decodes for (its labels, head and input size)."""

    backend: Literal["kserve"]
    url: str = Field(min_length=1, pattern=r"^[^/\s]+:\d+$",
                     description="host:port of the server's gRPC endpoint (Triton's is 8001)")
    model_name: str | None = Field(None, min_length=1, description="the model's name on the server; unset: "
                                                                    "the local model's name")
    model_version: str = Field("", pattern=r"^\d*$", description="'' : the server's choice (its latest)")
    precision: Literal["fp32"] = Field("fp32", description="the local model edged reads labels and shapes from")
    tls: TlsConfig | None = Field(None, description="gRPC over TLS: the server's CA, a client certificate")


EngineConfig = Annotated[Union[OpenVinoConfig, OnnxRuntimeConfig, TensorRtConfig, KServeConfig],
                         Field(discriminator="backend")]
AnyEngineConfig = Union[OpenVinoConfig, OnnxRuntimeConfig, TensorRtConfig, KServeConfig]


class ReconnectConfig(_Strict):
    min_s: float = Field(0.5, gt=0)
    max_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _order(self) -> ReconnectConfig:
        if self.max_s < self.min_s:
            raise ValueError("'max_s' must be at least 'min_s'")
        return self


class EventsConfig(_Strict):
    enabled: bool = True
    iou: float = Field(0.3, gt=0, lt=1, description="IoU that continues a track")
    min_hits: int = Field(2, ge=1, le=30, description="frames in a row before an object is reported")
    max_missed: int = Field(5, ge=0, le=300, description="looks without it before an object has gone (and lost_s)")
    lost_s: float = Field(2.0, ge=0, le=3600, description="seconds without it before an object has gone (and "
                                                          "max_missed): an object hidden for a moment keeps its id")
    update_s: float = Field(30.0, ge=0, description="an 'update' event this often for objects that stay; 0: never")


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


class MotionConfig(_Strict):
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


class TamperConfig(_Strict):
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


class ZoneConfig(_Strict):
    polygon: Polygon
    labels: list[Name] = Field(default_factory=list, description="labels to count; empty: the camera's labels")
    loiter_s: float | None = Field(None, gt=0, le=86400, description="'loitering' after this long in the zone")


def _check_line(points: list[Point]) -> list[Point]:
    _check_points(points)
    if len(points) != 2:
        raise ValueError(f"a line is 2 points, from its start to its end; got {len(points)}")
    if points[0] == points[1]:
        raise ValueError("the line's two points are the same")
    return points


class LineConfig(_Strict):
    points: Annotated[list[Point], AfterValidator(_check_line)] = Field(
        description="[start, end]; crossing from its left to its right, looking from start to end, is 'in'")
    labels: list[Name] = Field(default_factory=list, description="labels to count; empty: the camera's labels")


class RestartBudgetConfig(_Strict):
    max_restarts: int = Field(
        5, ge=1, le=1000, description="sessions that came online and then failed, allowed within window_s"
    )
    window_s: float = Field(300.0, gt=0)
    cooldown_s: float = Field(300.0, gt=0, description="wait this long once the budget is spent")


SourceKind = Literal["file", "stream", "v4l2", "gstreamer", "libcamera"]
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


class CameraConfig(_Strict):
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
        "auto", description="network streams: auto reads them with PyAV where it is installed (no process-wide open "
                            "lock: a dead camera cannot hold up the others), else with OpenCV")
    open_timeout_s: float = Field(10.0, gt=0, le=300)
    read_timeout_s: float = Field(5.0, gt=0, le=300)
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    restart_budget: RestartBudgetConfig = Field(default_factory=RestartBudgetConfig)
    width: int | None = Field(None, ge=16, le=8192, description="v4l2: requested capture width")
    height: int | None = Field(None, ge=16, le=8192, description="v4l2: requested capture height")
    pixel_format: str | None = Field(None, pattern=r"^[A-Z0-9]{4}$", description="v4l2: FOURCC, e.g. MJPG")
    decoder: Literal["software", "jetson", "rpi"] = Field(
        "software", description="jetson: NVDEC via nvv4l2decoder; rpi: v4l2h264dec; edged builds the pipeline"
    )
    codec: Literal["h264", "h265"] = Field("h264", description="the stream's codec, for hardware decoding")
    latency_ms: int = Field(200, ge=0, le=10000, description="rtspsrc jitter buffer, for hardware decoding")
    priority: int = Field(50, ge=0, le=100, description="the governor slows lower priorities first")
    events: bool | None = Field(None, description="object events for this camera; unset: events.enabled")
    stall_s: float | None = Field(
        None, gt=0, le=300, description="reopen a stream whose frames stop coming (or freeze) this long; "
        "unset: read_timeout_s"
    )
    motion: MotionConfig = Field(default_factory=MotionConfig)
    tamper: TamperConfig = Field(default_factory=TamperConfig)
    zones: dict[AreaName, ZoneConfig] = Field(default_factory=dict)
    lines: dict[AreaName, LineConfig] = Field(default_factory=dict)
    object_masks: list[Polygon] = Field(default_factory=list, description="detections whose footpoint (bottom "
                                        "centre) lies in one of these polygons are dropped")

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
        if kind == "stream" and self.decoder != "software" and not self.url.startswith(("rtsp://", "rtsps://")):
            raise ValueError(f"'decoder: {self.decoder}' supports rtsp:// streams; decode other streams in software")
        both = sorted(set(self.zones) & set(self.lines))
        if both:
            raise ValueError(f"'{both[0]}' is both a zone and a line: a name is one topic level, give them "
                             f"different names")
        if kind not in ("v4l2", "libcamera") and (self.width or self.height or self.pixel_format):
            raise ValueError(
                f"'width', 'height' and 'pixel_format' apply to V4L2 and libcamera sources; this url is a {kind} source"
            )
        return self


class TelemetryConfig(_Strict):
    interval_s: float = Field(10.0, ge=0, le=3600, description="0 turns telemetry off")
    tegrastats: Literal["auto", "off"] = Field("auto", description="auto: read tegrastats where it exists (Jetson)")
    vcgencmd: Literal["auto", "off"] = Field("auto", description="auto: read vcgencmd where it exists (Pi)")
    thermal_zones: list[str] = Field(
        default_factory=list, description="zone types that mean 'the device temperature'; empty: a built-in list"
    )
    root: Path = Field(Path("/"), description="where /sys and /proc are (a container may mount the host's)")


class AlertsConfig(_Strict):
    infer_ms_p95: float = Field(100.0, gt=0)
    memory_pct: float = Field(90.0, gt=0, le=100)
    temp_c: float = Field(80.0, gt=0, le=150, description="the device temperature's soft limit")
    frame_age_ms_p95: float = Field(500.0, gt=0)
    camera_down_s: float = Field(30.0, ge=0, description="a camera not online this long is down")
    throttling: bool = Field(True, description="alert on any throttle bit (Raspberry Pi)")
    hysteresis: float = Field(0.1, ge=0, lt=1, description="resolve below threshold x (1 - hysteresis)")


class GovernorConfig(_Strict):
    enabled: bool = True
    margin_c: float = Field(5.0, ge=0, le=50, description="start slowing this far below alerts.temp_c")
    resume_c: float = Field(10.0, ge=0, le=50, description="restore once this far below alerts.temp_c")
    memory_pct: float = Field(90.0, gt=0, le=100, description="slow down above this memory use too")
    step_s: float = Field(10.0, ge=0, description="at least this long between two steps")
    min_fps: float = Field(1.0, gt=0, description="the governor never slows a camera below this")

    @model_validator(mode="after")
    def _order(self) -> GovernorConfig:
        if self.resume_c < self.margin_c:
            raise ValueError("'resume_c' must be at least 'margin_c' (restore only once cooler than when slowing)")
        return self


class HttpAuthConfig(_Strict):
    username: str = Field(min_length=1)
    password: SecretStr = Field(description="use ${cred:NAME} or ${ENV}: never the password itself in the file")

    @field_validator("password")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value


class HttpConfig(_Strict):
    listen: str = Field("127.0.0.1:9108", description="host:port for the page, snapshots, /healthz and /metrics; "
                                                      "empty: off")
    page: bool = Field(True, description="serve the web page and its pictures (/healthz and /metrics always)")
    auth: HttpAuthConfig | None = Field(None, description="basic auth; required (or token) off loopback")
    token: SecretStr | None = Field(None, description="'Authorization: Bearer <token>'; required (or auth) off "
                                                      "loopback")

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        if value:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 <= int(port) < 65536:
                raise ValueError("must be host:port, e.g. 127.0.0.1:9108; port 0: any free port; empty: off")
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. the output of 'openssl rand -hex 16')")
        return value

    @model_validator(mode="after")
    def _guarded(self) -> HttpConfig:
        if self.listen and not is_loopback(self.listen) and self.auth is None and self.token is None:
            raise ValueError(f"listen '{self.listen}' is reachable from other machines: set 'auth' (username and "
                             f"password) or 'token', or listen on 127.0.0.1")
        return self


class HomeAssistantConfig(_Strict):
    enabled: bool = Field(True, description="publish MQTT discovery so Home Assistant creates edged's entities")
    prefix: Name = Field("homeassistant", description="Home Assistant's discovery prefix")
    configuration_url: str | None = Field(
        None, description="the device page's link in Home Assistant; unset: the web page's address when it listens "
                          "beyond loopback")


class SnapshotsConfig(_Strict):
    enabled: bool = Field(True, description="a JPEG of each object's best frame on <prefix>/<camera>/<label>/snapshot "
                                            "and over HTTP")
    width: int = Field(960, ge=160, le=3840, description="pictures are kept and encoded at most this wide: the "
                       "frame divided by a whole number (a 1280x720 camera: 640x360; 1920x1080: 960x540)")
    crop: bool = Field(False, description="the object and some of its surroundings instead of the whole frame")
    boxes: bool = Field(True, description="draw the object's box")
    quality: int = Field(80, ge=10, le=100, description="JPEG quality")
    max_per_s: float = Field(4.0, gt=0, le=100, description="JPEG encodes a second at most (snapshots and the live "
                                                            "pictures together); the rest wait or are skipped")


def _hostname() -> str:
    name = socket.gethostname().split(".")[0] or "edged"
    return FORBIDDEN.sub("-", name)


class Config(_Strict):
    device_id: Name = Field(default_factory=_hostname)
    log: LogConfig = Field(default_factory=LogConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    engine: EngineConfig
    fallbacks: list[EngineConfig] = Field(
        default_factory=list, description="engines to fall back on, in order (written as a list under 'engine': "
                                          "the first is the primary)")
    detect: DetectConfig = Field(default_factory=DetectConfig)
    cameras: dict[Name, CameraConfig] = Field(min_length=1)
    events: EventsConfig = Field(default_factory=EventsConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    governor: GovernorConfig = Field(default_factory=GovernorConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    snapshots: SnapshotsConfig = Field(default_factory=SnapshotsConfig)
    _secrets: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @property
    def secrets(self) -> frozenset[str]:
        """Values that must never reach a log, topic or page: substituted ${...}, credentials, user-info."""
        return self._secrets

    def remember_secrets(self, secrets: frozenset[str]) -> None:
        self._secrets = secrets

    @model_validator(mode="before")
    @classmethod
    def _chain(cls, data: Any) -> Any:
        """``engine: [primary, fallback, ...]``: the primary is ``engine``, the rest ``fallbacks``."""
        if isinstance(data, dict) and isinstance(data.get("engine"), list):
            chain = data["engine"]
            if not chain:
                raise ValueError("'engine' is an empty list: give one engine, or a list of them (primary first)")
            if data.get("fallbacks"):
                raise ValueError("give the fallbacks either in the 'engine' list or under 'fallbacks', not both")
            data = {**data, "engine": chain[0], "fallbacks": chain[1:]}
        return data

    @field_validator("engine", mode="before")
    @classmethod
    def _default_backend(cls, value: Any) -> Any:
        if isinstance(value, dict) and "backend" not in value:
            return {**value, "backend": "openvino"}
        return value

    @field_validator("fallbacks", mode="before")
    @classmethod
    def _default_backends(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{**v, "backend": "openvino"} if isinstance(v, dict) and "backend" not in v else v for v in value]
        return value

    @property
    def engines(self) -> list[AnyEngineConfig]:
        """The chain: the primary, then the fallbacks."""
        return [self.engine, *self.fallbacks]

    def detect_for(self, camera: str) -> DetectConfig:
        return self.cameras[camera].detect.over(self.detect)
