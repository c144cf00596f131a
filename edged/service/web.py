"""The web page (``http.page``): a grid of cameras with live pictures, device charts, alerts, latest events.

Routes, all GET, added to the HTTP server's aiohttp application:

- ``/`` the page; ``/static/{app.js,style.css}`` its two other files, shipped in the
  package (no build step, no CDN: devices are often offline);
- ``/api/state`` cameras (state, frames processed, frame age, detect and motion gate
  on or off), the engine, alerts firing; built at most every ``STATE_S`` however
  many clients ask;
- ``/api/history`` the device's telemetry over the last hour (temperature, CPU,
  memory, detections a second), one sample per telemetry interval;
- ``/api/events`` the latest object events, each with its snapshot's address when
  there is one and what a second look made of the object (``sub_label``,
  ``attributes``, ``verified``);
- ``/api/cameras/{camera}/live.jpg`` the camera's latest picture with its boxes:
  asking for it makes the camera keep pictures for a few seconds (204 until the camera's
  next look brings one: a still scene is looked at every ``motion.refresh_s``); encoding is the
  JPEG encoder's (at most ``snapshots.max_per_s`` a second for everything, a
  burst of requests gets the last picture again);
- ``/api/cameras/{camera}/{label}/snapshot.jpg`` the latest snapshot of that label,
  ``/api/cameras/{camera}/tracks/{track}.jpg`` the snapshot of one object.

Camera URLs never appear: cameras are named, and status reasons are redacted at source.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import web

from edged.engines.registry import engine_heading
from edged.pipeline.jpeg import Encoded, JpegEncoder
from edged.pipeline.pictures import CameraPictures
from edged.pipeline.stats import PipelineStats

HISTORY_S = 3600.0
STATE_S = 0.5
LIVE_WAIT_S = 3.0  # a live picture waits at most this long for the encoder
_STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Nothing inline, nothing from elsewhere: the page's own script, style and pictures only.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'self'",
}


class PageSource(Protocol):
    """What the page reads from the running daemon (the pipeline implements it)."""

    encoder: JpegEncoder | None

    def stats(self) -> PipelineStats: ...

    def live(self, camera: str) -> CameraPictures | None: ...

    def recent_events(self) -> list[bytes]: ...

    def control_state(self, camera: str) -> dict[str, bool]: ...


@dataclass(frozen=True)
class Sample:
    ts: float
    temp_c: float | None
    cpu_pct: float | None
    memory_pct: float | None
    fps: float | None  # detections a second, all cameras


class History:
    """Telemetry over the last hour, fed by the telemetry loop (one call per payload)."""

    def __init__(self, span_s: float = HISTORY_S) -> None:
        self.span_s = span_s
        self.samples: deque[Sample] = deque()
        self.alerts: list[str] = []

    def record(self, payload: Mapping[str, Any]) -> None:
        system = payload.get("system", {})
        memory = system.get("memory") or {}
        rates = [c.get("processed_fps") for c in payload.get("cameras", {}).values()]
        known = [r for r in rates if isinstance(r, (int, float))]
        ts = float(payload.get("ts", time.time()))
        cpu = system.get("cpu_pct")
        cpu = cpu.get("cpu") if isinstance(cpu, dict) else cpu  # all cores ("cpu"), and each ("cpu0", ...)
        self.samples.append(Sample(ts, system.get("temp_c"), cpu, memory.get("used_pct"),
                                   round(sum(known), 2) if known else None))
        while self.samples and self.samples[0].ts < ts - self.span_s:
            self.samples.popleft()
        self.alerts = list(payload.get("alerts", []))

    def as_dict(self) -> dict[str, list[Any]]:
        return {key: [getattr(s, key) for s in self.samples] for key in ("ts", "temp_c", "cpu_pct", "memory_pct",
                                                                         "fps")}


class WebPage:
    def __init__(self, *, device_id: str, source: PageSource, history: History,
                 alerts: Callable[[], list[str]]) -> None:
        self.device_id = device_id
        self.source = source
        self.history = history
        self.alerts = alerts
        self._state: tuple[float, bytes] = (-1e9, b"")
        self.requests = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/state", self._api_state)
        app.router.add_get("/api/history", self._api_history)
        app.router.add_get("/api/events", self._api_events)
        app.router.add_get("/api/cameras/{camera}/live.jpg", self._live)
        app.router.add_get("/api/cameras/{camera}/tracks/{track}.jpg", self._track)
        app.router.add_get("/api/cameras/{camera}/{label}/snapshot.jpg", self._snapshot)

    # -- responses ------------------------------------------------------------------------

    @staticmethod
    def _respond(status: int, body: bytes, content_type: str) -> web.Response:
        response = web.Response(status=status, body=body, headers={**_HEADERS, "Content-Type": content_type})
        response.force_close()
        return response

    def _json(self, value: Any) -> web.Response:
        return self._respond(200, json.dumps(value, separators=(",", ":"), allow_nan=False).encode(),
                             "application/json")

    def _missing(self, what: str) -> web.Response:
        return self._respond(404, f"{what}\n".encode(), "text/plain")

    def _jpeg(self, encoded: Encoded | None, what: str) -> web.Response:
        if encoded is None:
            return self._missing(what)
        response = self._respond(200, encoded.jpeg, "image/jpeg")
        response.headers["X-Frame-Seq"] = str(encoded.seq)
        return response

    # -- handlers -------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.Response:
        self.requests += 1
        return self._respond(200, _read("index.html"), "text/html; charset=utf-8")

    async def _static(self, request: web.Request) -> web.Response:
        self.requests += 1
        name = request.match_info["name"]
        if name not in _STATIC:
            return self._missing("no such file")
        return self._respond(200, _read(name), _STATIC[name])

    async def _api_state(self, request: web.Request) -> web.Response:
        self.requests += 1
        now = time.monotonic()
        built, body = self._state
        if now - built >= STATE_S:
            body = json.dumps(self._build_state(), separators=(",", ":"), allow_nan=False).encode()
            self._state = (now, body)
        return self._respond(200, body, "application/json")

    def _build_state(self) -> dict[str, Any]:
        stats = self.source.stats()
        cameras = []
        for name, camera in stats.cameras.items():
            worker = camera.worker
            motion = camera.motion
            cameras.append({
                "name": name, "state": worker.state.value, "reason": worker.reason,
                "processed": camera.frames_processed, "decoded": worker.frames_decoded,
                "age_ms_p50": camera.age_ms.p50, "age_ms_p95": camera.age_ms.p95,
                "moving": bool(motion.active) if motion is not None else None,
                "tamper": sorted(motion.tamper) if motion is not None else [],
                **self.source.control_state(name),
            })
        engine = stats.engine.settings
        return {"device": self.device_id, "ts": round(time.time(), 3), "uptime_s": round(stats.uptime_s, 1),
                "engine": engine_heading(engine),
                "infer_ms_p50": stats.engine.infer_ms.p50, "alerts": self.alerts(), "cameras": cameras}

    async def _api_history(self, request: web.Request) -> web.Response:
        self.requests += 1
        return self._json(self.history.as_dict())

    async def _api_events(self, request: web.Request) -> web.Response:
        self.requests += 1
        encoder = self.source.encoder
        out = []
        for raw in reversed(self.source.recent_events()):
            event = json.loads(raw)
            item = {key: event.get(key) for key in ("camera", "event", "label", "track", "score", "ts", "zones",
                                                    "zone", "line", "direction", "duration_s", "sub_label",
                                                    "attributes", "verified")}
            if encoder is not None and encoder.store.of_track(event["camera"], int(event["track"])) is not None:
                item["snapshot"] = f"/api/cameras/{_quote(event['camera'])}/tracks/{int(event['track'])}.jpg"
            out.append({k: v for k, v in item.items() if v is not None})
        return self._json(out)

    async def _live(self, request: web.Request) -> web.Response:
        self.requests += 1
        camera = request.match_info["camera"]
        found = self.source.live(camera)
        encoder = self.source.encoder
        if found is None or encoder is None:
            return self._missing("no such camera")
        found.want_live()
        frame = found.live
        if frame.shown is None:
            return self._not_yet()
        try:
            encoded = await asyncio.wait_for(asyncio.wrap_future(encoder.live(camera, frame)), LIVE_WAIT_S)
        except asyncio.TimeoutError:
            encoded = None
        if encoded is None:
            return self._not_yet()
        return self._jpeg(encoded, "")

    def _not_yet(self) -> web.Response:
        """No picture yet (it comes with the camera's next look): 204, ask again in a second."""
        response = self._respond(204, b"", "image/jpeg")
        response.headers["Retry-After"] = "1"
        return response

    async def _snapshot(self, request: web.Request) -> web.Response:
        self.requests += 1
        encoder = self.source.encoder
        found = encoder.store.latest(request.match_info["camera"], request.match_info["label"]) if encoder else None
        return self._jpeg(found, "no snapshot of that camera and label yet")

    async def _track(self, request: web.Request) -> web.Response:
        self.requests += 1
        encoder = self.source.encoder
        track = request.match_info["track"]
        found = encoder.store.of_track(request.match_info["camera"], int(track)) \
            if encoder is not None and track.isascii() and track.isdigit() and len(track) < 12 else None
        return self._jpeg(found, "no snapshot of that object")


@functools.cache
def _read(name: str) -> bytes:
    """A static file, read once (a burst of page loads is not a burst of disk reads)."""
    return resources.files("edged.service").joinpath("static", name).read_bytes()


def _quote(name: str) -> str:
    return quote(name, safe="")
