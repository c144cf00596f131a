"""A second look at each object, as one object the pipeline holds: classifiers on tracked crops, the verifier, named
colours (see ``plan``, ``station``, ``classifier``, ``verifier``, ``colours``).

On the scheduler's thread, per frame of a camera that looks: ``before`` applies the answers that came back (votes,
verdicts) to the camera's tracks, before its analytics step publishes them; the sink (``__call__``, after the
analytics) crops the objects that are due from the frame's picture straight into the stations' trays and hands
full or waiting trays to the looks thread. The models run only there, batched across cameras.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edged.analytics.camera import FrameOutcome
from edged.config.looks import ClassifyConfig, VerifyConfig
from edged.config.models import CameraConfig, Config
from edged.looks.classifier import Classifier
from edged.looks.colours import SIZE, name_colours, part_of
from edged.looks.crops import crop_of, even_for, picture_size, rect, resize_into
from edged.looks.plan import CameraLooks, Due
from edged.looks.station import Answer, Ask, LooksThread, Station, Tray
from edged.looks.verifier import Verifier
from edged.sources.demand import ALWAYS, NEVER, Demand
from edged.sources.slot import FrameInfo

log = logging.getLogger(__name__)

class Picture(Protocol):
    @property
    def image(self) -> np.ndarray: ...


class Framed(Protocol):
    """What the sink reads of a frame's result (``pipeline.decoding.Result``)."""

    @property
    def info(self) -> FrameInfo: ...

    @property
    def picture(self) -> Picture | None: ...


class Pictures(Protocol):
    @property
    def demand(self) -> Demand: ...


VERIFY_TRAY = 4  # crops waiting for the verifier at a time (it runs them one by one)
COLOUR_TRAY = 32


def wanted(config: Config) -> bool:
    """Any enabled camera asks for a second look."""
    return any(c.enabled and (c.classify or c.verify or c.colors) for c in config.cameras.values())


def needs(config: Config) -> tuple[object, ...]:
    """What ``Looks`` loads at start for ``config`` (a reload that changes it needs a restart)."""
    enabled = [c for c in config.cameras.values() if c.enabled]
    used = sorted({look.classifier for c in enabled for look in c.classify})
    return (tuple((name, config.classifiers[name]) for name in used),
            config.verifier if any(c.verify for c in enabled) else None, any(c.colors for c in enabled))


class Looks:
    name = "looks"

    def __init__(self, config: Config, labels: Sequence[str], cache_dir: Path,
                 pictures_of: Callable[[str], Pictures | None], cpu: dict[str, float]) -> None:
        self.labels = tuple(labels)
        self.pictures_of = pictures_of
        self.cpu = cpu  # the scheduler thread's CPU seconds: "crops" (cropping, applying answers)
        cpu.setdefault("crops", 0.0)
        used = {look.classifier for c in config.cameras.values() if c.enabled for look in c.classify}
        self.classifiers = {name: Classifier(name, config.classifiers[name], cache_dir) for name in sorted(used)}
        verifying = any(c.enabled and c.verify for c in config.cameras.values())
        self.verifier = Verifier(config.verifier, config.engine.model, cache_dir) if verifying else None
        self.colouring = any(c.enabled and c.colors for c in config.cameras.values())
        self.cameras: dict[str, CameraLooks] = {}
        self.thread: LooksThread | None = None
        self._answers: dict[str, list[Answer]] = {}
        self._waiting = False  # crops wait in a tray whose station was busy
        self.clock: Callable[[], float] = time.monotonic  # every_s and the verifier's pauses (a replay: clip time)

    # -- lifecycle (blocking: run off the event loop) -----------------------------------

    def start(self) -> None:
        stations = []
        for name, classifier in self.classifiers.items():
            classifier.start()
            stations.append(Station(f"classify:{name}", self._classify(classifier), Tray(classifier.buffers()),
                                    Tray(classifier.buffers())))
        if self.verifier is not None:
            self.verifier.start()
            if self.verifier.labels[:len(self.labels)] != self.labels[:len(self.verifier.labels)]:
                log.warning("the verifier's model has other labels than the detector's: verdicts compare class ids")
            width, height = self.verifier.size
            stations.append(Station("verify", self._verify, Tray(np.zeros((VERIFY_TRAY, height, width, 3), np.uint8)),
                                    Tray(np.zeros((VERIFY_TRAY, height, width, 3), np.uint8))))
        if self.colouring:
            shape = (COLOUR_TRAY, SIZE[1], SIZE[0], 3)
            stations.append(Station("colors", self._colours, Tray(np.zeros(shape, np.uint8)),
                                    Tray(np.zeros(shape, np.uint8))))
        self.thread = LooksThread(stations)
        self.thread.start()

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()
        if self.verifier is not None:
            self.verifier.close()

    def add_camera(self, name: str, config: Config) -> None:
        camera = config.cameras[name]
        if camera.classify or camera.verify or camera.colors:
            self.cameras[name] = CameraLooks(name, camera, self.labels)

    def remove_camera(self, name: str) -> None:
        self.cameras.pop(name, None)
        self._answers.pop(name, None)

    # -- the scheduler's thread ------------------------------------------------------------

    def before(self, camera: str, live: Sequence[Any]) -> None:
        """Apply what came back for ``camera`` to its tracks (before its analytics step)."""
        plan = self.cameras.get(camera)
        if plan is None or self.thread is None:
            return
        for answer in self.thread.answers():
            if answer.ask.camera in self.cameras:  # a camera removed meanwhile: its answers are dropped
                self._answers.setdefault(answer.ask.camera, []).append(answer)
        mine = self._answers.pop(camera, None)
        if mine:
            started = time.thread_time()
            plan.apply(mine, self.clock())
            self.cpu["crops"] += time.thread_time() - started

    def __call__(self, result: Framed | None, outcome: FrameOutcome) -> None:
        """The sink: crop what is due on this frame into the trays; hand trays over."""
        plan = self.cameras.get(outcome.camera)
        if plan is None or self.thread is None:
            return
        if result is None:
            if outcome.stopped:
                plan.forget()
            return
        pictures = self.pictures_of(outcome.camera)
        interesting = any(track.cls in plan.classes for track in outcome.tracks)
        if pictures is not None:
            pictures.demand.want_until("looks", ALWAYS if interesting else NEVER)
        picture = result.picture
        added = False
        if interesting and picture is not None:
            started = time.thread_time()
            info = result.info
            for due in plan.due(outcome.tracks, info.ts, info.width, info.height, self.clock()):
                if self._crop(plan, due, picture.image):
                    added = True
                else:
                    plan.not_taken(due)
            self.cpu["crops"] += time.thread_time() - started
        if added or self._waiting:
            self._waiting = not self.thread.hand_over()

    def _crop(self, plan: CameraLooks, due: Due, image: np.ndarray) -> bool:
        assert self.thread is not None
        key = f"classify:{plan.classifier_of(due.track.cls)}" if due.kind == "classify" else due.kind
        station = self.thread.stations[key]
        into = station.open.next_image()
        if into is None:
            station.stats.skipped += 1
            return False
        width, height = picture_size(image)
        track, settings = due.track, due.settings
        ask = Ask(plan.name, track, due.kind)
        if isinstance(settings, VerifyConfig):
            assert self.verifier is not None
            where = rect(track.box, width, height, settings.scale)
            if where is None:
                return False
            where = even_for(image, where)
            ask.fit = self.verifier.fit(where, width, height)
            ask.fit.apply(crop_of(image, where), into)
            ask.box = track.box.copy()
            ask.limits = (settings.min_score, settings.min_cover)
        elif isinstance(settings, ClassifyConfig):
            where = rect(track.box, width, height, settings.scale, square=True)
            if where is None:
                return False
            resize_into(image, where, into)
        else:
            where = rect(track.box, width, height, part=part_of(self.labels[track.cls]))
            if where is None:
                return False
            resize_into(image, where, into)
        station.open.asks.append(ask)
        return True

    # -- the looks thread --------------------------------------------------------------------

    def _classify(self, classifier: Classifier) -> Callable[[Tray], list[Answer]]:
        def run(tray: Tray) -> list[Answer]:
            scores = classifier.infer(tray.images[:len(tray.asks)])
            best = scores.argmax(axis=1)
            return [Answer(ask, classifier.labels[int(i)], float(scores[n, i]))
                    for n, (ask, i) in enumerate(zip(tray.asks, best))]
        return run

    def _verify(self, tray: Tray) -> list[Answer]:
        assert self.verifier is not None
        out = []
        for image, ask in zip(tray.images, tray.asks):
            assert ask.fit is not None and ask.box is not None
            verdict = self.verifier.check(image, ask.fit, ask.track.cls, ask.box, *ask.limits)
            out.append(Answer(ask, score=verdict.score, confirmed=verdict.confirmed))
        return out

    def _colours(self, tray: Tray) -> list[Answer]:
        return [Answer(ask, names=name_colours(image)) for image, ask in zip(tray.images, tray.asks)]

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every crop taken so far has been answered (the bench's replays: answers come back before the
        next frame, so a replay gives the same figures on a fast and a slow machine)."""
        assert self.thread is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._waiting = not self.thread.hand_over()
            if all(s.working is None and not s.open.asks for s in self.thread.stations.values()):
                return
            time.sleep(0.0005)
        raise TimeoutError(f"second looks not answered within {timeout:g} s")

    # -- figures -----------------------------------------------------------------------------

    def counters(self) -> dict[str, dict[str, float]]:
        """For /metrics: per station, crops, batches, skipped and seconds in the model; per camera, verdicts."""
        out: dict[str, dict[str, float]] = {}
        if self.thread is not None:
            for name, station in self.thread.stations.items():
                s = station.stats
                out[name] = {"crops": s.crops, "batches": s.batches, "skipped": s.skipped, "seconds": s.run_s}
        for name, plan in self.cameras.items():
            out[f"camera:{name}"] = {"confirmed": plan.verified, "rejected": plan.rejected, "late": plan.late,
                                     "sub_labels": plan.sub_labels}
        return out

    def stats(self) -> dict[str, Any]:
        """Per station: crops, batches, the largest batch, ms per batch and per crop, the looks thread's CPU ms per
        crop, crops skipped (tray full); per camera: verdicts and sub-labels."""
        out: dict[str, Any] = {"stations": {}, "cameras": {}}
        if self.thread is None:
            return out
        for name, station in self.thread.stations.items():
            s = station.stats
            out["stations"][name] = {
                "crops": s.crops, "batches": s.batches, "largest_batch": s.largest, "skipped": s.skipped,
                "ms_per_batch": round(s.run_s * 1e3 / s.batches, 3) if s.batches else None,
                "ms_per_crop": round(s.run_s * 1e3 / s.crops, 3) if s.crops else None,
                "cpu_ms_per_crop": round(s.cpu_s * 1e3 / s.crops, 3) if s.crops else None,
            }
        for name, plan in self.cameras.items():
            out["cameras"][name] = {"verified": plan.verified, "rejected": plan.rejected, "late": plan.late,
                                    "sub_labels": plan.sub_labels}
        out["failures"] = self.thread.failures
        return out


def check_looks(config: Config, cache_dir: Path) -> list[str]:
    """``edged check``: each classifier a camera uses, read and checked against its labels (one line each)."""
    from edged.errors import InputError

    problems = []
    used = sorted({look.classifier for c in config.cameras.values() for look in c.classify})
    for name in used:
        try:
            classifier = Classifier(name, config.classifiers[name], cache_dir)
            classifier.inspect()
        except InputError as exc:
            problems.append(str(exc))
    return problems


def describe(camera: CameraConfig) -> str:
    """The camera's second looks in one phrase, for ``edged check``; '' where it has none."""
    parts = [f"classify {', '.join(look.labels) or 'every label'} with {look.classifier} (every {look.every_s:g} s, "
             f"{look.attempts} agreeing {100 * look.agree:.0f} %)" for look in camera.classify]
    parts += [f"verify {label} (crop x{v.scale:g}, {v.attempts} looks)" for label, v in camera.verify.items()]
    if camera.colors is not None:
        parts.append(f"colours of {', '.join(camera.colors.labels)}")
    return "; ".join(parts)
