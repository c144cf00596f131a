"""Pipeline: cameras -> scheduler -> engine -> result stage, as one object.

``start()`` warms the engine and starts every enabled camera; ``stop()`` stops the
cameras, lets in-flight batches finish and be published, ends live objects and
marks cameras ``offline``; ``apply(config)`` is a reload (add, remove, restart
cameras; new detection settings at once); ``stats()`` is a typed snapshot;
``cap_rate()`` is the governor's one lever. The pipeline does not know MQTT: it
hands payloads to an outlet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from edged.analytics.camera import Counted
from edged.analytics.tallies import Tallies
from edged.analytics.tamper import Transition
from edged.artifacts.info import ModelInfo
from edged.config.models import Config
from edged.engines.base import Engine
from edged.engines.chain import Change
from edged.errors import InputError
from edged.logs import Every
from edged.looks import Looks, needs, wanted
from edged.pipeline.cameras import Camera, ConfigDiff, check_labels, detect_settings, diff, make_camera, stop_cameras
from edged.pipeline.jpeg import JpegEncoder
from edged.pipeline.pictures import CameraPictures
from edged.pipeline.results import ResultStage
from edged.pipeline.scheduler import Scheduler
from edged.pipeline.sinks import EventsSink, Outlet, standard_sinks
from edged.pipeline.stats import CameraStats, EngineStats, Percentiles, PipelineStats
from edged.publish.contract import camera_status_payload
from edged.sources.opencv import prepare_native_libraries
from edged.sources.state import CameraState

log = logging.getLogger(__name__)


class PipelineOutlet(Outlet, Protocol):
    def set_camera_status(self, camera: str, payload: bytes) -> None: ...

    def publish_control_state(self, camera: str, setting: str, on: bool) -> None:
        """Retained ``<prefix>/<camera>/<setting>/state``: ON or OFF."""


class Pipeline:
    def __init__(self, *, config: Config, model: ModelInfo, engine: Engine, outlet: PipelineOutlet,
                 run_id: str, engine_notes: dict[str, Any] | None = None, tallies: Tallies | None = None,
                 cache_dir: Path | None = None) -> None:
        self.config = config
        self.model = model
        self.engine = engine
        self.outlet = outlet
        self.run_id = run_id
        self.started_mono = time.monotonic()
        self.cameras: dict[str, Camera] = {}
        self._scheduler: Scheduler | None = None
        self._results: ResultStage | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._labels: tuple[str, ...] = ()
        self._settings: dict[str, Any] = {}
        self._notes = dict(engine_notes or {})  # how the engine's settings were chosen (precision policy)
        self.tallies = tallies or Tallies(None)
        self.encoder: JpegEncoder | None = None  # snapshots (and the page's live pictures)
        self._kept_controls: dict[str, dict[str, bool]] = {}  # a restarting camera's MQTT controls
        self._events: EventsSink | None = None  # keeps the latest events for the page
        # Alerts the pipeline sees happen (tamper, engine failover): typed, to telemetry's alerts (the daemon sets it).
        self.on_alert: Callable[[str, Transition | Change], None] | None = None
        self._control_log = Every(60.0)  # a change logged at most once a minute per camera and setting
        self._control_changes: dict[str, int] = {}  # changes since the last line, per camera and setting
        self.cache_dir = cache_dir or Path(".")  # the second looks' models compile into it
        self.looks: Looks | None = None  # classifiers, the verifier, colours: when a camera asks for them

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Compile and warm the engine (off the loop), then start every enabled camera."""
        loop = self._loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.engine.start)
        self.model = self.model.with_output(self.engine.output_shape)
        self._labels = tuple(self.model.labels or ())
        assert self.model.head is not None
        self._settings = {**self.engine.describe(), **self._notes}
        decoder = self.model.make_decoder(self.engine.output_shape, iou=self.config.engine.iou,
                                          max_det=self.config.engine.max_detections)
        await loop.run_in_executor(None, self.tallies.load)
        snaps = self.config.snapshots
        if snaps.enabled or self.config.http.page:
            self.encoder = JpegEncoder(quality=snaps.quality, max_per_s=snaps.max_per_s, crop=snaps.crop,
                                       boxes=snaps.boxes, publish=self._publish_snapshot if snaps.enabled else None)
            self.encoder.start()
        cpu: dict[str, float] = {}
        sinks, self._events = standard_sinks(self.outlet, self.config.device_id, self.run_id, self._labels,
                                             self.live, self.encoder if snaps.enabled else None, cpu)
        if wanted(self.config):
            self.looks = Looks(self.config, self._labels, self.cache_dir, self.live, cpu)
            await loop.run_in_executor(None, self.looks.start)
            sinks.insert(0, self.looks)
        self._results = ResultStage(started_mono=self.started_mono, sinks=sinks, cpu=cpu, looks=self.looks)
        self._scheduler = Scheduler(self.engine, decoder, [], self._results,
                                    self.config.engine.batch_window_ms / 1000.0, resize=self.model.resize)
        names = [name for name, camera in self.config.cameras.items() if camera.enabled]
        if not names:
            raise InputError("no enabled camera in the config")
        for name in names:
            self._add(self.config, name)
        self._task = asyncio.create_task(self._scheduler.run(), name="scheduler")
        self._start_workers(names)

    @property
    def finished(self) -> asyncio.Task[None]:
        """The scheduler's task: it ends only on stop() or an engine failure."""
        assert self._task is not None, "start() first"
        return self._task

    @property
    def failure(self) -> BaseException | None:
        return self._scheduler.failure if self._scheduler is not None else None

    @property
    def first_result_mono(self) -> float | None:
        return self._results.first_result_mono if self._results is not None else None

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop cameras, publish in-flight batches (within ``grace_s``), end objects, go offline."""
        stuck = await stop_cameras(list(self.cameras.values()))
        if stuck:
            log.warning("camera(s) %s did not stop within 5 s", ", ".join(stuck))
        if self._scheduler is not None:
            self._scheduler.stop()
        if self._task is not None:
            _, pending = await asyncio.wait([self._task], timeout=grace_s)
            for task in pending:
                task.cancel()
        running = list(self.cameras)
        for name in running:
            self._remove(name, "edged stopped")
        for name in self.config.cameras:  # disabled ones too: no stale "online" stays retained
            if name not in running:
                self._publish_status(name, CameraState.OFFLINE, "edged stopped")
        if self.encoder is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.encoder.stop)
        if self.looks is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.looks.stop)
        await asyncio.get_running_loop().run_in_executor(None, self.engine.close)

    # -- reload --------------------------------------------------------------------

    def check(self, config: Config) -> None:
        """Raise if ``config`` cannot be applied (labels the model lacks, second looks that need models not
        loaded); touches nothing."""
        check_labels(config, self._labels)
        if self._results is not None and needs(config) != needs(self.config):
            raise InputError("the classifiers, the verifier or the colours asked for changed: they are loaded at "
                             "start, restart edged to apply this config")

    async def apply(self, config: Config) -> ConfigDiff:
        """Apply a new config: untouched cameras run on, changed ones restart, detection settings at once."""
        self.check(config)
        change = diff(self.config, config)
        restart = change.removed + change.changed
        stuck = await stop_cameras([self.cameras[n] for n in restart])
        if stuck:
            log.warning("reload: camera(s) %s did not stop within 5 s", ", ".join(stuck))
        for name in change.removed:
            self._remove(name, "removed from the config", forget=True)
        for name in change.changed:
            self._remove(name, None)
        self.config = config
        for name in change.added + change.changed:
            self._add(config, name)
        self._start_workers(change.added + change.changed)
        for name in change.unchanged + change.retuned:
            self.cameras[name].lane.configure(*detect_settings(config, name, self._labels))
        for name in change.retuned:  # zones, lines and masks: in place, the camera runs on
            if self._results is not None:
                self._results.retune(name, config.cameras[name], config.detect_for(name).labels)
        return change

    def set_control(self, camera: str, setting: str, on: bool) -> bool:
        """``detect`` (infer this camera at all) or ``motion`` (gate it on motion), from MQTT; False: no such
        camera. The setting lasts until the camera restarts with a changed config or edged restarts."""
        found = self.cameras.get(camera)
        if found is None:
            return False
        found.controls[setting] = on
        if setting == "detect" and on and not found.lane.detecting:
            found.lane.slot.discard()  # committed while detection was off: seconds old by now
            if self._results is not None:
                self._results.restart_age(camera)
        self._apply_controls(found)
        self.outlet.publish_control_state(camera, setting, on)
        key = f"{camera}/{setting}"
        self._control_changes[key] = self._control_changes.get(key, 0) + 1
        if self._control_log.due(key):
            more = self._control_changes.pop(key) - 1
            log.info("camera %s: %s %s (over MQTT)%s", camera, setting, "on" if on else "off",
                     f"; {more} more change(s) of it in the last minute" if more else "")
        return True

    def control_state(self, camera: str) -> dict[str, bool]:
        found = self.cameras.get(camera)
        if found is None:
            return {}
        return {"detect": found.lane.detecting, "motion": found.gate.gating}

    def _apply_controls(self, camera: Camera) -> None:
        camera.lane.detecting = camera.controls.get("detect", True)
        camera.gate.set_gating(camera.controls.get("motion", self.config.cameras[camera.name].motion.enabled))

    def live(self, camera: str) -> CameraPictures | None:
        """The camera's pictures (its ring and live picture), for the page and the sinks; None: no such camera or
        no pictures."""
        found = self.cameras.get(camera)
        return found.pictures if found is not None else None

    def counted(self) -> dict[str, Counted]:
        """What each running camera counts (zones and ``all``, lines, their labels): for discovery."""
        return self._results.counted() if self._results is not None else {}

    def recent_events(self) -> list[bytes]:
        return list(self._events.recent) if self._events is not None else []

    def _publish_snapshot(self, camera: str, label: str, jpeg: bytes) -> None:
        """The encoder's thread: the retained snapshot topic (QoS 1, through the spool)."""
        pictures = self.live(camera)
        if pictures is not None:
            pictures.snapshot_labels.add(label)
        self.outlet.set_retained((camera, label, "snapshot"), jpeg)

    def engine_changed(self, change: Change) -> None:
        """The engine chain failed over or returned (an engine thread): the alert at once, new settings."""
        self._settings = {**self.engine.describe(), **self._notes}
        self._alert("", change)

    def _alert(self, camera: str, event: Transition | Change) -> None:
        """Hand an alert the pipeline saw to ``on_alert`` (telemetry's), on the event loop."""
        loop = self._loop
        if self.on_alert is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.on_alert, camera, event)

    def cap_rate(self, camera: str, fps: float | None) -> None:
        """The governor's lever: cap a camera's detection rate (None lifts the cap)."""
        found = self.cameras.get(camera)
        if found is not None:
            found.lane.cap_rate(fps)

    # -- stats ---------------------------------------------------------------------

    def stats(self) -> PipelineStats:
        now = time.monotonic()
        scheduler, results = self._scheduler, self._results
        cameras = {
            name: CameraStats(
                name=name, worker=camera.worker.stats(now), frames_processed=camera.lane.processed,
                target_fps=self.config.cameras[name].fps, governed_fps=camera.lane.governed_fps,
                age_ms=results.age_ms(name) if results is not None else Percentiles(),
                motion=camera.gate.stats(),
            )
            for name, camera in self.cameras.items()
        }
        engine = scheduler.stats(now, self._settings) if scheduler is not None else EngineStats(self._settings)
        return PipelineStats(cameras=cameras, engine=engine, uptime_s=now - self.started_mono,
                             started=scheduler is not None,
                             timed_cpu_s=_timed_cpu(scheduler, results), encodes=self._encodes(),
                             looks=self.looks.counters() if self.looks is not None else {})

    def _encodes(self) -> dict[str, int]:
        stats = self.encoder.stats if self.encoder is not None else None
        if stats is None:
            return {}
        return {"snapshot": stats.snapshots, "live": stats.live, "live_reused": stats.live_reused,
                "replaced": stats.replaced}

    # -- cameras -------------------------------------------------------------------

    def _add(self, config: Config, name: str) -> None:
        assert self._scheduler is not None and self._results is not None
        camera = make_camera(config, name, self._labels, self.tallies, self._status_from_thread,
                             self._scheduler.notify, self._tamper_from_thread,
                             self.engine.num_slots + 1 if self.encoder is not None or self.looks is not None else 0,
                             (self.engine.input_spec.width, self.engine.input_spec.height, self.model.resize))
        if self.looks is not None:
            self.looks.add_camera(name, config)
        camera.controls = self._kept_controls.pop(name, {})
        self.cameras[name] = camera
        self._apply_controls(camera)
        self._scheduler.add_lane(camera.lane)
        self._results.add_camera(camera)
        if self.config.mqtt.controls:
            for setting, on in self.control_state(name).items():
                self.outlet.publish_control_state(name, setting, on)

    def _start_workers(self, names: list[str]) -> None:
        prepare_native_libraries([self.config.cameras[name] for name in names])
        for name in names:
            self.cameras[name].worker.start()

    def _remove(self, name: str, offline_reason: str | None, forget: bool = False) -> None:
        """Forget a stopped camera: its objects end; ``offline_reason``: publish it as offline;
        ``forget``: it left the config (its count topics are cleared)."""
        camera = self.cameras.pop(name)
        if self.looks is not None:
            self.looks.remove_camera(name)
        if self._scheduler is not None:
            self._scheduler.remove_lane(camera.lane)
        if self._results is not None:
            self._results.remove_camera(name, forget=forget)
        if forget:
            if self.encoder is not None:
                self.encoder.forget(name)
            for label in sorted(camera.pictures.snapshot_labels if camera.pictures is not None else ()):
                self.outlet.set_retained((name, label, "snapshot"), b"")
        elif camera.controls:
            self._kept_controls[name] = camera.controls  # a restart with a changed config keeps them
        if offline_reason is not None:
            self._publish_status(name, CameraState.OFFLINE, offline_reason)

    def _publish_status(self, camera: str, state: CameraState, reason: str) -> None:
        self.outlet.set_camera_status(camera, camera_status_payload(state.value, reason, time.time()))

    def _tamper_from_thread(self, camera: str, transition: Transition) -> None:
        """A tamper condition fired or resolved (on the camera's thread): an alert at once."""
        level = logging.WARNING if transition.firing else logging.INFO
        log.log(level, "alert camera_%s (%s) %s: %s", transition.kind, camera,
                "firing" if transition.firing else "resolved", transition.reason)
        self._alert(camera, transition)

    def _status_from_thread(self, camera: str, state: CameraState, reason: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._publish_status, camera, state, reason)


def _timed_cpu(scheduler: Scheduler | None, results: ResultStage | None) -> dict[str, dict[str, float]]:
    """The steps the scheduler's thread clocks: its own, and the result stage's (which runs there)."""
    steps = {**(scheduler.cpu_s if scheduler is not None else {}), **(results.cpu_s if results is not None else {})}
    return {"scheduling": steps}
