"""The daemon: builds the parts from one Config, runs them, and supervises.

Start-up: the spool opens and MQTT connects in the background; the pipeline warms
its engine and starts its cameras; telemetry and HTTP start. Then each second the
supervisor's rules (``pipeline.health.Supervisor``) decide READY=1 (once a camera is
online), WATCHDOG=1 (only while the pipeline turns) and the exit on a hung engine.

SIGTERM/SIGINT: the pipeline stops (in-flight batches are published, live objects
end, cameras go ``offline``), the spool drains, the device goes ``stopped``; each
step is bounded. SIGHUP: the config file is read again and, if valid, applied by
``Pipeline.apply``; if not, it is rejected and the running one stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edged.analytics.tallies import Tallies
from edged.artifacts.info import load_model_info
from edged.config.models import AnyEngineConfig, Config
from edged.engines.base import Engine
from edged.engines.registry import create_chain, create_engine, describe_engine
from edged.errors import EdgedError, EngineError
from edged.pipeline.cameras import ConfigDiff
from edged.pipeline.health import Supervisor, check_health, summary
from edged.pipeline.pipeline import Pipeline
from edged.pipeline.stats import Snapshot
from edged.publish.contract import Topics
from edged.publish.homeassistant import Discovery, configuration_url
from edged.publish.mqtt import MqttPublisher
from edged.publish.outbox import Outbox
from edged.publish.spool import Spool
from edged.service.controls import Controls
from edged.service.http import HttpServer, serve
from edged.service.metrics import make_registry
from edged.service.reload import Reloader
from edged.service.sdnotify import Notifier, supervise
from edged.service.web import History, WebPage
from edged.telemetry.collector import Collector
from edged.telemetry.loop import TelemetryLoop, tamper_firing

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, *, config: Config, pipeline: Pipeline, publisher: MqttPublisher,
                 reload_config: Callable[[], Config] | None = None, notifier: Notifier | None = None,
                 watchdog_s: float | None = None) -> None:
        self.config = config
        self.pipeline = pipeline
        self.publisher = publisher
        self.notifier = notifier or Notifier(None)
        self.watchdog_s = watchdog_s
        self.telemetry: TelemetryLoop | None = None
        self.http: HttpServer | None = None
        self.history = History()
        self.discovery: Discovery | None = None
        self.controls = Controls(publisher.topics.base, pipeline) if config.mqtt.controls else None
        self._stop = asyncio.Event()
        self._fatal: EdgedError | None = None
        self.reloader = Reloader(reload_config, lambda: self.config, self.pipeline.check, self._apply, self.notifier,
                                 self.summary)
        self._tasks: list[asyncio.Task[Any]] = []
        pipeline.on_alert = lambda camera, event: self.telemetry.event(camera, event) if self.telemetry else None

    def snapshot(self) -> Snapshot:
        return Snapshot(self.pipeline.stats(), self.publisher.stats())

    def request_stop(self) -> None:
        self._stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s", sig.name)
        if sig == signal.SIGHUP:
            task = self.reloader.asked()
            if task is not None:
                self._tasks.append(task)
        else:
            self.request_stop()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        # A library that forks us (multiprocessing, a telemetry ping) must not write
        # signals into this loop's wake-up socket from the child.
        os.register_at_fork(after_in_child=_forget_wakeup_fd)
        telemetry = self.telemetry = TelemetryLoop(
            config=self.config, collector=Collector(self.config.telemetry), topics=self.publisher.topics,
            snapshot=self.snapshot, publish=self.publisher.publish, cap_rate=self.pipeline.cap_rate,
            observers=[self.history.record])
        if self.controls is not None:
            for topic_filter in self.controls.filters():
                self.publisher.subscribe(topic_filter, self.controls.handle)
        await self.publisher.start()
        try:
            await self.pipeline.start()
            await self._start_http(telemetry)
        except BaseException:
            await self._shutdown()
            raise
        if self.config.homeassistant.enabled:
            self._start_discovery()
        self._tasks.append(asyncio.create_task(telemetry.run(), name="telemetry"))
        rules = Supervisor(hang_timeout_s=self.config.engine.hang_timeout_s, watchdog=bool(self.watchdog_s))
        watch = supervise(rules, self.pipeline.stats, self.notifier, self.summary, self._on_fatal, self.watchdog_s)
        self._tasks.append(asyncio.create_task(watch, name="supervisor"))
        log.info("running %d camera(s) on %s", len(self.pipeline.cameras),
                 describe_engine(self.pipeline.engine.describe()))
        stop_task = asyncio.create_task(self._stop.wait())
        finished = self.pipeline.finished
        await asyncio.wait([finished, stop_task], return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        crashed = finished.done() and not self._stop.is_set()
        await self._shutdown()
        if self._fatal is not None:
            raise self._fatal
        if self.pipeline.failure is not None:
            raise EngineError(f"inference failed: {self.pipeline.failure}")
        if crashed:
            error = finished.exception()
            if error is not None:
                log.error("the scheduler failed", exc_info=error)
            raise EdgedError(f"the scheduler stopped unexpectedly: {error!r}")
        return 0

    def summary(self) -> str:
        return summary(self.snapshot(), self.telemetry.last_engine_fps if self.telemetry is not None else None)

    def _on_fatal(self, reason: str) -> None:
        self._fatal = EngineError(reason)
        self.request_stop()

    async def _start_http(self, telemetry: TelemetryLoop) -> None:
        page = WebPage(device_id=self.config.device_id, source=self.pipeline, history=self.history,
                       alerts=lambda: telemetry.alerts.firing + tamper_firing(self.snapshot())) \
            if self.config.http.page else None
        self.http = await serve(self.config.http, lambda: check_health(self.snapshot()),
                                make_registry(telemetry.scraper(self.snapshot)), page)

    def _start_discovery(self) -> None:
        port = self.http.bound_port if self.http is not None else None
        self.discovery = Discovery(config=self.config, topics=self.publisher.topics, publisher=self.publisher,
                                   counted=self.pipeline.counted,
                                   engine=describe_engine(self.pipeline.engine.describe()),
                                   url=configuration_url(self.config, port))
        self.discovery.start()
        self._tasks.append(asyncio.create_task(self.discovery.run(), name="discovery"))

    async def _apply(self, new: Config) -> ConfigDiff:
        """A new config, checked and with the settings fixed at start kept: applied to every part."""
        change = await self.pipeline.apply(new)
        self.config = new
        logging.getLogger().setLevel(new.log.level.upper())
        if self.telemetry is not None:
            self.telemetry.reconfigure(new)
        if self.discovery is not None:
            self.discovery.config = new
            self.discovery.refresh()
        return change

    async def _shutdown(self) -> None:
        log.info("stopping")
        self.notifier.stopping()
        for task in self._tasks:
            task.cancel()
        if self.discovery is not None:
            self.discovery.stop()
        if self.http is not None:
            await self.http.stop()
        # In-flight batches get time to finish, unless the engine is known to be hung.
        await self.pipeline.stop(grace_s=1.0 if self._fatal else 10.0)
        await self.publisher.stop()
        self.notifier.close()
        log.info("stopped")


def _forget_wakeup_fd() -> None:
    with contextlib.suppress(ValueError):  # not the main thread of the child
        signal.set_wakeup_fd(-1)


def build_daemon(config: Config, cache_dir: Path, spool_path: Path,
                 reload_config: Callable[[], Config] | None = None, notifier: Notifier | None = None,
                 watchdog_s: float | None = None, engine: AnyEngineConfig | None = None,
                 engine_notes: dict[str, Any] | None = None, runtime: Engine | None = None,
                 fallbacks: list[AnyEngineConfig] | None = None) -> Daemon:
    """Resolve the model and create (not start) every part. ``engine``: ``config.engine`` as the precision
    policy settled it (``edged.tools.precision_gate.settle``), with ``engine_notes`` saying how. ``runtime``: an
    engine made elsewhere for that model (the bench's stand-in), instead of the configured backend."""
    engine_config = engine or config.engine
    chain = None
    if runtime is None and config.fallbacks:
        chain, model = create_chain([engine_config, *(config.fallbacks if fallbacks is None else fallbacks)],
                                    cache_dir)
        runtime = chain
    else:
        model = load_model_info(engine_config, cache_dir)
    if runtime is None:
        runtime = create_engine(engine_config, model, cache_dir)
    topics = Topics(config.mqtt.topic_prefix, config.device_id)
    spool_file = config.mqtt.spool or spool_path
    spool = Spool(spool_file, int(config.mqtt.spool_max_mb * 1024 * 1024))
    publisher = MqttPublisher(config.mqtt, topics, config.mqtt.client_id or f"edged-{config.device_id}", Outbox(spool))
    # Line totals and the count topics in use: beside the spool, in the state directory.
    tallies = Tallies(spool_file.with_name(f"tallies-{config.device_id}.json"))
    pipeline = Pipeline(config=config, model=model, engine=runtime, outlet=publisher, run_id=uuid.uuid4().hex[:8],
                        engine_notes=engine_notes, tallies=tallies, cache_dir=cache_dir)
    if chain is not None:
        chain.on_change = pipeline.engine_changed
    return Daemon(config=config, pipeline=pipeline, publisher=publisher, reload_config=reload_config,
                  notifier=notifier, watchdog_s=watchdog_s)
