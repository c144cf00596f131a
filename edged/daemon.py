"""The daemon: wires sources, scheduler, engine and publisher together and runs them.

Start-up order: MQTT connects in the background; cameras open (in their own
threads) while the engine compiles and warms up; then the scheduler runs. On
SIGTERM/SIGINT: sources stop, in-flight batches finish and are published, every
camera goes ``offline``, the device goes ``stopped``, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from edged.config.models import Config
from edged.engines.base import Engine
from edged.engines.registry import create_engine
from edged.errors import EdgedError, EngineError, InputError, ModelError
from edged.models.info import ModelInfo, load_model_info
from edged.models.yolo import YoloDecoder, class_mask
from edged.pipeline.health import check_health
from edged.pipeline.scheduler import CameraLane, Result, Scheduler
from edged.publish.mqtt import MqttPublisher
from edged.publish.schema import Topics, camera_status_payload, detections_payload
from edged.service.http import HttpServer
from edged.service.metrics import make_registry
from edged.sources.camera import CameraWorker
from edged.sources.opencv import prepare_native_libraries
from edged.sources.slot import FrameSlot
from edged.telemetry.collector import Collector
from edged.telemetry.loop import TelemetryLoop
from edged.telemetry.memory import CpuLoad

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: Config, model: ModelInfo, engine: Engine, publisher: MqttPublisher) -> None:
        self.config = config
        self.model = model
        self.engine = engine
        self.publisher = publisher
        self.workers: dict[str, CameraWorker] = {}
        self.scheduler: Scheduler | None = None
        self.started_mono = time.monotonic()
        self.first_result_mono: float | None = None
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.telemetry: TelemetryLoop | None = None
        self.http: HttpServer | None = None

    def request_stop(self) -> None:
        self._stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s", sig.name)
        self.request_stop()

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
        labels = self.model.labels or ()
        age_ms = (now_mono - info.mono) * 1e3
        result.lane.age_ms.add(age_ms)
        timing = {"age": age_ms, **result.timing_ms}
        payload = detections_payload(
            self.config.device_id, result.lane.name, info.seq, time.time(), info.ts,
            (info.width, info.height), timing, result.detections, labels,
        )
        self.publisher.publish_detections(result.lane.name, payload)

    def _lanes(self) -> list[CameraLane]:
        labels = list(self.model.labels or ())
        lanes = []
        for name, camera in self.config.cameras.items():
            if not camera.enabled:
                continue
            detect = self.config.detect_for(name)
            try:
                mask = class_mask(labels, detect.labels)
            except ModelError as exc:
                raise ModelError(f"cameras.{name}.detect.labels: {exc}") from None
            pull = camera.kind == "file" and not camera.realtime
            lanes.append(CameraLane(name, FrameSlot(name, pull=pull), camera.fps, detect, mask,
                                    priority=camera.priority))
        return lanes

    async def run(self) -> int:
        loop = self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        # A library that forks us (multiprocessing, a telemetry ping) must not write
        # signals into this loop's wake-up socket from the child.
        os.register_at_fork(after_in_child=_forget_wakeup_fd)
        self.publisher.start()
        engine_ready = loop.run_in_executor(None, self.engine.start)
        try:
            await engine_ready
        except Exception:
            await self._shutdown([])
            raise
        self.model = self.model.with_output(self.engine.output_shape)
        lanes = self._lanes()
        if not lanes:
            raise ModelError("no enabled camera in the config")
        labels = self.model.labels or ()
        assert self.model.head is not None
        decoder = YoloDecoder(
            self.model.head, len(labels), max(self.engine.output_shape[1:]),
            iou=self.config.engine.iou, max_det=self.config.engine.max_detections,
        )
        self.scheduler = Scheduler(
            self.engine, decoder, lanes, self._publish, self.config.engine.batch_window_ms / 1000.0
        )
        for lane in lanes:
            worker = CameraWorker(lane.name, self.config.cameras[lane.name], lane.slot, self._status_from_thread)
            self.workers[lane.name] = worker
        scheduler_task = asyncio.create_task(self.scheduler.run(), name="scheduler")
        collector = Collector(self)
        self.telemetry = TelemetryLoop(self, collector, self.publisher.topics)
        self._tasks.append(asyncio.create_task(self.telemetry.run(), name="telemetry"))
        await self._start_http(collector)
        prepare_native_libraries([self.config.cameras[lane.name] for lane in lanes])
        for worker in self.workers.values():
            worker.start()
        log.info("running %d camera(s) on %s", len(lanes), describe_engine(self.engine.describe()))
        stop_task = asyncio.create_task(self._stop.wait())
        await asyncio.wait([scheduler_task, stop_task], return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        crashed = scheduler_task.done() and not self._stop.is_set()
        await self._shutdown([scheduler_task])
        failure = self.scheduler.failure
        if failure is not None:
            raise EngineError(f"inference failed: {failure}")
        if crashed:
            error = scheduler_task.exception()
            if error is not None:
                log.error("the scheduler failed", exc_info=error)
            raise EdgedError(f"the scheduler stopped unexpectedly: {error!r}")
        return 0

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

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        log.info("stopping")
        loop = asyncio.get_running_loop()
        for task in self._tasks:
            task.cancel()
        if self.http is not None:
            await self.http.stop()
        for worker in self.workers.values():
            worker.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=10.0)
            for task in pending:
                task.cancel()
        for worker in self.workers.values():
            if not await loop.run_in_executor(None, worker.join, 5.0):
                log.warning("camera %s did not stop within 5 s", worker.name)
        for name in self.config.cameras:
            self._camera_status(name, "offline", "edged stopped")
        await self.publisher.stop()
        await loop.run_in_executor(None, self.engine.close)
        log.info("stopped")


def _forget_wakeup_fd() -> None:
    with contextlib.suppress(ValueError):  # not the main thread of the child
        signal.set_wakeup_fd(-1)


def build_daemon(config: Config, cache_dir: Path) -> Daemon:
    """Resolve the model and create (not start) the engine and publisher."""
    model = load_model_info(config.engine, cache_dir)
    engine = create_engine(config.engine, model, cache_dir)
    topics = Topics(config.mqtt.topic_prefix, config.device_id)
    client_id = config.mqtt.client_id or f"edged-{config.device_id}"
    publisher = MqttPublisher(config.mqtt, topics, client_id)
    return Daemon(config, model, engine, publisher)


def describe_engine(info: dict[str, object]) -> str:
    """One readable line: 'openvino 2026.4.1 on CPU, f32, 2 streams, 2 requests, batch 1, yolov3-tiny.xml'."""
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
