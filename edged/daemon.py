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
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edged.artifacts.info import ModelInfo, load_model_info
from edged.config.models import AnyEngineConfig, Config
from edged.engines.base import Engine
from edged.engines.chain import EngineChain
from edged.engines.registry import Unavailable, create_engine, describe_engine, engine_names
from edged.errors import EdgedError, EngineError
from edged.pipeline.health import Supervisor, check_health, summary
from edged.pipeline.pipeline import Pipeline
from edged.pipeline.stats import Snapshot
from edged.pipeline.tallies import Tallies
from edged.publish.contract import Topics
from edged.publish.homeassistant import Discovery, configuration_url
from edged.publish.mqtt import MqttPublisher
from edged.publish.outbox import Outbox
from edged.publish.spool import Spool
from edged.service.controls import Controls
from edged.service.http import HttpServer, serve
from edged.service.metrics import make_registry
from edged.service.sdnotify import Notifier
from edged.service.web import History, WebPage
from edged.telemetry.collector import Collector
from edged.telemetry.loop import TelemetryLoop, tamper_firing
from edged.telemetry.memory import CpuLoad

log = logging.getLogger(__name__)

FIXED_ON_RELOAD = ("device_id", "mqtt", "engine", "http", "homeassistant", "snapshots")
DISCOVERY_S = 5.0  # how often Home Assistant discovery looks for entities that came or went


class Daemon:
    def __init__(self, *, config: Config, pipeline: Pipeline, publisher: MqttPublisher,
                 reload_config: Callable[[], Config] | None = None, notifier: Notifier | None = None,
                 watchdog_s: float | None = None) -> None:
        self.config = config
        self.pipeline = pipeline
        self.publisher = publisher
        self.reload_config = reload_config
        self.notifier = notifier or Notifier(None)
        self.watchdog_s = watchdog_s
        self.supervisor = Supervisor(hang_timeout_s=config.engine.hang_timeout_s, watchdog=bool(watchdog_s))
        self.telemetry: TelemetryLoop | None = None
        self.http: HttpServer | None = None
        self.history = History()
        self.discovery: Discovery | None = None
        self.controls = Controls(publisher.topics.base, pipeline) if config.mqtt.controls else None
        self._stop = asyncio.Event()
        self._reloader: asyncio.Task[None] | None = None
        self._reload_again = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._fatal: EdgedError | None = None

    def snapshot(self) -> Snapshot:
        return Snapshot(self.pipeline.stats(), self.publisher.stats())

    def request_stop(self) -> None:
        self._stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s", sig.name)
        if sig == signal.SIGHUP:
            # One reload at a time; a burst of SIGHUPs during one becomes a single reload after it,
            # which reads the file as it is then: the last file written wins.
            if self._reloader is None or self._reloader.done():
                self._reloader = asyncio.create_task(self._reload_while_asked(), name="reload")
                self._tasks.append(self._reloader)
            else:
                self._reload_again = True
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
        self._tasks.append(asyncio.create_task(self._supervise(), name="supervisor"))
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

    async def _supervise(self) -> None:
        """Apply the supervisor's verdict every second: READY, WATCHDOG, STATUS, the hang exit."""
        period = min(1.0, self.watchdog_s) if self.watchdog_s else 1.0
        last_status = 0.0
        while True:
            await asyncio.sleep(period)
            verdict = self.supervisor.step(self.pipeline.stats())
            if verdict.fatal:
                self._fatal = EngineError(verdict.fatal)
                log.error("%s", verdict.fatal)
                self.request_stop()
                return
            if verdict.ready:
                self.notifier.ready(self.summary())
                log.info("ready: %s", self.summary())
            if verdict.watchdog:
                self.notifier.watchdog()
            elif verdict.withheld:
                log.warning("watchdog withheld: %s", verdict.withheld)
            now = time.monotonic()
            if now - last_status >= 10.0:
                last_status = now
                self.notifier.status(self.summary())

    async def _start_http(self, telemetry: TelemetryLoop) -> None:
        cpu = CpuLoad(self.config.telemetry.root)

        def scrape() -> tuple[dict[str, Any], Snapshot, int]:
            return telemetry.collector.system(cpu), self.snapshot(), telemetry.governor.level

        page = None
        if self.config.http.page:
            page = WebPage(device_id=self.config.device_id, source=self.pipeline, history=self.history,
                           alerts=lambda: telemetry.alerts.firing + tamper_firing(self.snapshot()))
        self.http = await serve(self.config.http, lambda: check_health(self.snapshot()), make_registry(scrape), page)

    def _start_discovery(self) -> None:
        port = self.http.bound_port if self.http is not None else None
        self.discovery = Discovery(config=self.config, topics=self.publisher.topics, publisher=self.publisher,
                                   counted=self.pipeline.counted,
                                   engine=describe_engine(self.pipeline.engine.describe()),
                                   url=configuration_url(self.config, port))
        self.discovery.start()
        self._tasks.append(asyncio.create_task(self._discover(), name="discovery"))

    async def _discover(self) -> None:
        """New labels counted, cameras added or removed: their entities follow within DISCOVERY_S."""
        assert self.discovery is not None
        while True:
            await asyncio.sleep(DISCOVERY_S)
            self.discovery.refresh()

    async def _reload_while_asked(self) -> None:
        self._reload_again = True
        while self._reload_again:
            self._reload_again = False
            await self.reload()

    async def reload(self) -> None:
        """SIGHUP: apply a new config file, or reject it and keep the running one."""
        if self.reload_config is None:
            log.warning("SIGHUP: nothing to reload")
            return
        self.notifier.reloading()
        try:
            new = await asyncio.get_running_loop().run_in_executor(None, self.reload_config)
            self.pipeline.check(new)
        except EdgedError as exc:
            log.error("SIGHUP: the new config was rejected; the running one stays: %s", " | ".join(exc.lines()))
            self.notifier.ready(self.summary())
            return
        for key in FIXED_ON_RELOAD:
            if getattr(self.config, key) != getattr(new, key):
                log.warning("SIGHUP: '%s' changed; restart edged to apply it (the running value stays)", key)
        merged = new.model_copy(update={key: getattr(self.config, key) for key in FIXED_ON_RELOAD})
        change = await self.pipeline.apply(merged)
        self.config = merged
        logging.getLogger().setLevel(merged.log.level.upper())
        if self.telemetry is not None:
            self.telemetry.reconfigure(merged)
        if self.discovery is not None:
            self.discovery.config = merged
            self.discovery.refresh()
        log.info("SIGHUP: reloaded; %s", change.describe())
        self.notifier.ready(self.summary())

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


def _chain(configs: list[AnyEngineConfig], cache_dir: Path) -> tuple[EngineChain, ModelInfo]:
    """The engine chain: each engine made here (one that cannot be, a runtime or model missing, is a link that
    fails to load and is tried again later); the model info of the first that can be made."""
    links: list[tuple[str, Engine]] = []
    model: ModelInfo | None = None
    for name, engine_config in zip(engine_names(configs), configs):
        try:
            info = load_model_info(engine_config, cache_dir)
            links.append((name, create_engine(engine_config, info, cache_dir)))
            model = model or info
        except EdgedError as exc:
            log.warning("engine %s cannot be made here: %s", name, exc)
            links.append((name, Unavailable(str(exc))))
    if model is None:
        raise EngineError("no engine of the chain can be made here: " + "; ".join(
            f"{name}: {engine.reason}" for name, engine in links if isinstance(engine, Unavailable)))
    return EngineChain(links, timeout_s=min(c.timeout_s for c in configs)), model


def _forget_wakeup_fd() -> None:
    with contextlib.suppress(ValueError):  # not the main thread of the child
        signal.set_wakeup_fd(-1)


def build_daemon(config: Config, cache_dir: Path, spool_path: Path,
                 reload_config: Callable[[], Config] | None = None, notifier: Notifier | None = None,
                 watchdog_s: float | None = None, engine: AnyEngineConfig | None = None,
                 engine_notes: dict[str, Any] | None = None, runtime: Engine | None = None,
                 fallbacks: list[AnyEngineConfig] | None = None) -> Daemon:
    """Resolve the model and create (not start) every part. ``engine``: ``config.engine`` as the precision
    policy settled it (``edged.tools.gate.settle``), with ``engine_notes`` saying how. ``runtime``: an
    engine made elsewhere for that model (the bench's stand-in), instead of the configured backend."""
    engine_config = engine or config.engine
    chain = None
    if runtime is None and config.fallbacks:
        chain, model = _chain([engine_config, *(fallbacks if fallbacks is not None else config.fallbacks)],
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
                        engine_notes=engine_notes, tallies=tallies)
    if chain is not None:
        chain.on_change = pipeline.engine_changed
    return Daemon(config=config, pipeline=pipeline, publisher=publisher, reload_config=reload_config,
                  notifier=notifier, watchdog_s=watchdog_s)
