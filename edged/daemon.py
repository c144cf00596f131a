"""The daemon: wires cameras, scheduler, engine, publisher and telemetry, and runs them.

Start-up: the spool opens and MQTT connects in the background; the engine compiles
and warms up; cameras open; READY=1 goes to systemd once the engine is warm and a
camera is up. A supervisor then sends WATCHDOG=1 only while the pipeline's
heartbeats are fresh, exits non-zero if the engine hangs, and keeps STATUS= current.

SIGTERM/SIGINT: cameras stop, in-flight batches finish and are published, live
objects get their ``end`` events, cameras go ``offline``, the spool drains, the
device goes ``stopped``; each step is bounded. SIGHUP: the config file is read
again; if valid, cameras are added, removed or restarted as it says and untouched
cameras run on without a gap; if not, it is rejected and the running one stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edged.config.models import Config
from edged.engines.base import Engine
from edged.engines.registry import create_engine
from edged.errors import EdgedError, EngineError, InputError
from edged.models.info import ModelInfo, load_model_info
from edged.models.yolo import YoloDecoder
from edged.pipeline.cameras import CameraSet
from edged.pipeline.health import check_health, pipeline_alive
from edged.pipeline.scheduler import Result, Scheduler
from edged.pipeline.tracker import Track, TrackUpdate
from edged.publish.mqtt import MqttPublisher
from edged.publish.schema import Topics, camera_status_payload, detections_payload
from edged.publish.spool import Outbox, Spool
from edged.service.http import HttpServer
from edged.service.metrics import make_registry
from edged.service.sdnotify import Notifier
from edged.sources.camera import CameraWorker
from edged.sources.opencv import prepare_native_libraries
from edged.telemetry.collector import Collector
from edged.telemetry.loop import TelemetryLoop
from edged.telemetry.memory import CpuLoad

log = logging.getLogger(__name__)

FIXED_ON_RELOAD = ("device_id", "mqtt", "engine", "http")


class Daemon:
    def __init__(self, config: Config, model: ModelInfo, engine: Engine, publisher: MqttPublisher,
                 reload_config: Callable[[], Config] | None = None, notifier: Notifier | None = None,
                 watchdog_s: float | None = None) -> None:
        self.config = config
        self.model = model
        self.engine = engine
        self.publisher = publisher
        self.reload_config = reload_config
        self.notifier = notifier or Notifier(None)
        self.watchdog_s = watchdog_s
        self.scheduler: Scheduler | None = None
        self.cams: CameraSet | None = None
        self.telemetry: TelemetryLoop | None = None
        self.http: HttpServer | None = None
        self.started_mono = time.monotonic()
        self.first_result_mono: float | None = None
        self.run_id = uuid.uuid4().hex[:8]
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._fatal: EdgedError | None = None
        self._ready = False

    @property
    def workers(self) -> dict[str, CameraWorker]:
        return {name: camera.worker for name, camera in self.cams.cameras.items()} if self.cams else {}

    def request_stop(self) -> None:
        self._stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s", sig.name)
        if sig == signal.SIGHUP:
            self._tasks.append(asyncio.create_task(self.reload(), name="reload"))
        else:
            self.request_stop()

    # -- camera status and results -------------------------------------------------

    def _camera_status(self, camera: str, state: str, reason: str) -> None:
        self.publisher.set_camera_status(camera, camera_status_payload(state, reason, time.time()))

    def _status_from_thread(self, camera: str, state: str, reason: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._camera_status, camera, state, reason)

    def _publish(self, result: Result) -> None:
        now_mono = time.monotonic()
        if self.first_result_mono is None:
            self.first_result_mono = now_mono
            log.info("first detections published %.2f s after start", now_mono - self.started_mono)
        info = result.info
        age_ms = (now_mono - info.mono) * 1e3
        result.lane.age_ms.add(age_ms)
        camera = self.cams.cameras.get(result.lane.name) if self.cams else None
        ids = None
        if camera is not None and camera.tracker is not None and camera.events is not None:
            update = camera.tracker.update(result.detections, info.ts)
            ids = update.ids.tolist()
            for event in camera.events.events(update, camera.tracker.tracks, info.ts, info.seq):
                self.publisher.publish_event(result.lane.name, event)
        payload = detections_payload(
            self.config.device_id, result.lane.name, info.seq, time.time(), info.ts,
            (info.width, info.height), {"age": age_ms, **result.timing_ms}, result.detections,
            self.model.labels or (), ids,
        )
        self.publisher.publish_detections(result.lane.name, payload)

    def _end_tracks(self, name: str) -> None:
        """The camera stops: every object it was following has gone (``end`` events)."""
        camera = self.cams.cameras.get(name) if self.cams else None
        if camera is None or camera.tracker is None or camera.events is None:
            return
        ended: list[Track] = camera.tracker.flush()
        if ended:
            now = time.time()
            for event in camera.events.events(TrackUpdate(ended=ended), [], now, camera.lane.processed):
                self.publisher.publish_event(name, event)

    # -- running -----------------------------------------------------------------

    async def run(self) -> int:
        loop = self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        # A library that forks us (multiprocessing, a telemetry ping) must not write
        # signals into this loop's wake-up socket from the child.
        os.register_at_fork(after_in_child=_forget_wakeup_fd)
        await self.publisher.start()
        try:
            await loop.run_in_executor(None, self.engine.start)
        except Exception:
            await self._shutdown([])
            raise
        self.model = self.model.with_output(self.engine.output_shape)
        labels = list(self.model.labels or ())
        assert self.model.head is not None
        decoder = YoloDecoder(self.model.head, len(labels), max(self.engine.output_shape[1:]),
                              iou=self.config.engine.iou, max_det=self.config.engine.max_detections)
        self.cams = CameraSet(labels, self.run_id, self._status_from_thread)
        lanes = self.cams.build(self.config)
        if not lanes:
            raise InputError("no enabled camera in the config")
        self.scheduler = Scheduler(self.engine, decoder, lanes, self._publish,
                                   self.config.engine.batch_window_ms / 1000.0)
        self.cams.on_frame = self.scheduler.notify
        scheduler_task = asyncio.create_task(self.scheduler.run(), name="scheduler")
        collector = Collector(self)
        self.telemetry = TelemetryLoop(self, collector, self.publisher.topics)
        self._tasks.append(asyncio.create_task(self.telemetry.run(), name="telemetry"))
        await self._start_http(collector)
        prepare_native_libraries([self.config.cameras[lane.name] for lane in lanes])
        self.cams.start()
        self._tasks.append(asyncio.create_task(self._supervise(), name="supervisor"))
        log.info("running %d camera(s) on %s", len(lanes), describe_engine(self.engine.describe()))
        stop_task = asyncio.create_task(self._stop.wait())
        await asyncio.wait([scheduler_task, stop_task], return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        crashed = scheduler_task.done() and not self._stop.is_set()
        await self._shutdown([scheduler_task])
        if self._fatal is not None:
            raise self._fatal
        if self.scheduler.failure is not None:
            raise EngineError(f"inference failed: {self.scheduler.failure}")
        if crashed:
            error = scheduler_task.exception()
            if error is not None:
                log.error("the scheduler failed", exc_info=error)
            raise EdgedError(f"the scheduler stopped unexpectedly: {error!r}")
        return 0

    def summary(self) -> str:
        workers = self.workers
        online = sum(w.state == "online" for w in workers.values())
        last = self.telemetry.last if self.telemetry else {}
        fps = last.get("engine", {}).get("fps")
        broker = "MQTT connected" if self.publisher.connected else "MQTT disconnected"
        spool = f", {self.publisher.outbox.pending} spooled" if self.publisher.outbox.pending else ""
        rate = f", {fps:.1f} frames/s" if fps else ""
        return f"{online}/{len(workers)} cameras online{rate}, {broker}{spool}"

    async def _supervise(self) -> None:
        """READY once, WATCHDOG while the pipeline turns, STATUS, and the engine-hang exit."""
        period = min(1.0, self.watchdog_s) if self.watchdog_s else 1.0
        hang_s = self.config.engine.hang_timeout_s
        last_status = 0.0
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            alive, why = pipeline_alive(self, hang_s, now)
            if self.scheduler is not None and self.scheduler.oldest_in_flight_s(now) > hang_s:
                self._fatal = EngineError(f"inference has not returned for {hang_s:g} s: the engine is hung; "
                                          f"exiting so that the service manager restarts edged")
                log.error("%s", self._fatal)
                self.request_stop()
                return
            if not self._ready and any(w.state == "online" for w in self.workers.values()):
                self._ready = True
                self.notifier.ready(self.summary())
                log.info("ready: %s", self.summary())
            if self._ready and self.watchdog_s:
                if alive:
                    self.notifier.watchdog()
                else:
                    log.warning("watchdog withheld: %s", why)
            if now - last_status >= 10.0:
                last_status = now
                self.notifier.status(self.summary())

    async def _start_http(self, collector: Collector) -> None:
        listen = self.config.http.listen
        if not listen:
            return
        cpu = CpuLoad(self.config.telemetry.root)

        def snapshot() -> tuple[dict[str, Any], dict[str, Any], int]:
            level = self.telemetry.governor.level if self.telemetry else 0
            return collector.system(cpu), collector.pipeline(), level

        self.http = HttpServer(listen, lambda: check_health(self), make_registry(snapshot))
        try:
            await self.http.start()
        except OSError as exc:
            self.http = None
            raise InputError(f"http.listen: cannot listen on {listen}: {exc.strerror or exc}") from None

    async def reload(self) -> None:
        """SIGHUP: apply a new config file, or reject it and keep the running one."""
        if self.reload_config is None or self.cams is None or self.scheduler is None:
            log.warning("SIGHUP: nothing to reload")
            return
        self.notifier.reloading()
        loop = asyncio.get_running_loop()
        try:
            new = await loop.run_in_executor(None, self.reload_config)
            self.cams.check(new)
        except EdgedError as exc:
            log.error("SIGHUP: the new config was rejected; the running one stays: %s", " | ".join(exc.lines()))
            self.notifier.ready(self.summary())
            return
        old = self.config
        for key in FIXED_ON_RELOAD:
            if getattr(old, key) != getattr(new, key):
                log.warning("SIGHUP: '%s' changed; restart edged to apply it (the running value stays)", key)
        merged = new.model_copy(update={key: getattr(old, key) for key in FIXED_ON_RELOAD})
        added, removed, changed, unchanged = self.cams.diff(old, merged)
        stuck = await self.cams.stop(removed + changed)
        for name in removed + changed:
            self._end_tracks(name)
            camera = self.cams.cameras.pop(name)
            self.scheduler.lanes.remove(camera.lane)
        for name in removed:
            self._camera_status(name, "offline", "removed from the config")
        self.config = merged
        for name in added + changed:
            camera = self.cams.make(merged, name)
            self.cams.cameras[name] = camera
            self.scheduler.lanes.append(camera.lane)
        self.cams.start(added + changed)
        self.cams.update_detect(merged, unchanged)
        logging.getLogger().setLevel(merged.log.level.upper())
        if self.telemetry is not None:
            self.telemetry.reconfigure()
        if stuck:
            log.warning("SIGHUP: camera(s) %s did not stop within 5 s", ", ".join(stuck))
        log.info("SIGHUP: reloaded; %d camera(s) ran on untouched%s%s%s", len(unchanged),
                 f", added {', '.join(added)}" if added else "", f", removed {', '.join(removed)}" if removed else "",
                 f", restarted {', '.join(changed)}" if changed else "")
        self.notifier.ready(self.summary())

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        log.info("stopping")
        self.notifier.stopping()
        for task in self._tasks:
            task.cancel()
        if self.http is not None:
            await self.http.stop()
        if self.cams is not None:
            stuck = await self.cams.stop(list(self.cams.cameras))
            if stuck:
                log.warning("camera(s) %s did not stop within 5 s", ", ".join(stuck))
        if self.scheduler is not None:
            self.scheduler.stop()
        if tasks:
            # In-flight batches get time to finish, unless the engine is known to be hung.
            _, pending = await asyncio.wait(tasks, timeout=1.0 if self._fatal else 10.0)
            for task in pending:
                task.cancel()
        for name in self.config.cameras:
            self._end_tracks(name)
            self._camera_status(name, "offline", "edged stopped")
        await self.publisher.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.engine.close)
        self.notifier.close()
        log.info("stopped")


def _forget_wakeup_fd() -> None:
    with contextlib.suppress(ValueError):  # not the main thread of the child
        signal.set_wakeup_fd(-1)


def build_daemon(config: Config, cache_dir: Path, spool_path: Path,
                 reload_config: Callable[[], Config] | None = None, notifier: Notifier | None = None,
                 watchdog_s: float | None = None) -> Daemon:
    """Resolve the model and create (not start) the engine and publisher."""
    model = load_model_info(config.engine, cache_dir)
    engine = create_engine(config.engine, model, cache_dir)
    topics = Topics(config.mqtt.topic_prefix, config.device_id)
    client_id = config.mqtt.client_id or f"edged-{config.device_id}"
    spool = Spool(config.mqtt.spool or spool_path, int(config.mqtt.spool_max_mb * 1024 * 1024))
    publisher = MqttPublisher(config.mqtt, topics, client_id, Outbox(spool))
    return Daemon(config, model, engine, publisher, reload_config, notifier, watchdog_s)


def describe_engine(info: dict[str, object]) -> str:
    """One readable line: 'openvino 2026.4.1 on CPU, f32, 2 streams, 2 requests, batch 1, yolov3-tiny fp32'."""
    head = f"{info.get('backend')} {info.get('version', '')}".strip()
    if "device" in info:
        head += f" on {info['device']}"
    parts = [head]
    if "precision" in info:
        parts.append(str(info["precision"]))
    parts += [f"{info[key]} {key}" for key in ("streams", "threads", "requests") if key in info]
    if "batch" in info:
        parts.append(f"batch {info['batch']}")
    parts.append(str(info.get("model", "")))
    return ", ".join(parts)
