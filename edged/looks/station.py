"""The looks thread and its stations: each model (a classifier, the verifier, the colour namer) has two trays of
preallocated crops. The scheduler's thread fills the open tray while the looks thread works the other; after a
frame whose sink added crops, a tray that has some is handed over if its station is idle (one notify, only then).
A full tray takes no more crops: those objects are looked at on a later frame. Answers wait in an outbox that the
scheduler's thread empties before the next frame's analytics step. Nothing here blocks the scheduler's thread for
longer than a lock held around a swap."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edged.analytics.tracker import Track
from edged.logs import Every
from edged.models.yolo import Letterbox

log = logging.getLogger(__name__)


@dataclass
class Ask:
    """One crop and what it is for."""

    camera: str
    track: Track
    kind: str  # "verify", "colors", or "classify"
    fit: Letterbox | None = None  # verify: how the crop went into the detector's input
    box: np.ndarray | None = None  # verify: the object's box (normalised), to find it again
    limits: tuple[float, float] = (0.0, 0.0)  # verify: min_score, min_cover


@dataclass
class Answer:
    ask: Ask
    name: str = ""  # classify: the best class
    score: float = 0.0  # classify: its probability; verify: the label's best score where the box was
    names: tuple[str, ...] = ()  # colors: the names, most of the crop first
    confirmed: bool = False  # verify


class Tray:
    def __init__(self, images: np.ndarray) -> None:
        self.images = images  # [capacity, H, W, 3] uint8 BGR
        self.asks: list[Ask] = []

    def next_image(self) -> np.ndarray | None:
        """The next free crop buffer (the caller appends its Ask once it is filled); None: the tray is full."""
        return self.images[len(self.asks)] if len(self.asks) < len(self.images) else None


@dataclass
class StationStats:
    crops: int = 0
    batches: int = 0
    largest: int = 0
    run_s: float = 0.0  # wall seconds in the model (inference and answers)
    cpu_s: float = 0.0  # the looks thread's CPU seconds on this station
    skipped: int = 0  # crops not taken: the open tray was full


@dataclass
class Station:
    name: str
    run: Callable[[Tray], list[Answer]]
    open: Tray
    spare: Tray
    working: Tray | None = None
    stats: StationStats = field(default_factory=StationStats)


class LooksThread:
    def __init__(self, stations: list[Station]) -> None:
        self.stations = {station.name: station for station in stations}
        self._lock = threading.Condition()
        self._outbox: list[Answer] = []
        self._stop = False
        self._thread: threading.Thread | None = None
        self._failed = Every(60.0)
        self.failures = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="looks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def hand_over(self) -> bool:
        """Scheduler's thread, after a frame that added crops: idle stations get their open tray. False: crops still
        wait in a tray whose station was busy (call again after the next frame)."""
        handed, waiting = False, False
        with self._lock:
            for station in self.stations.values():
                if station.open.asks and station.working is None:
                    station.working, station.open, station.spare = station.open, station.spare, station.open
                    handed = True
                elif station.open.asks:
                    waiting = True
            if handed:
                self._lock.notify()
        return not waiting

    def answers(self) -> list[Answer]:
        """Scheduler's thread: what came back since the last call."""
        if not self._outbox:  # a racy read is fine: what it misses is taken next frame
            return []
        with self._lock:
            out, self._outbox = self._outbox, []
        return out

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stop and not any(s.working for s in self.stations.values()):
                    self._lock.wait()
                if self._stop:
                    return
                work = [s for s in self.stations.values() if s.working is not None]
            for station in work:
                tray = station.working
                assert tray is not None
                started, cpu = time.perf_counter(), time.thread_time()
                try:
                    answers = station.run(tray)
                except Exception:
                    answers = []
                    self.failures += 1
                    if self._failed.due(station.name):
                        log.exception("second look %s failed on %d crop(s) (logged once a minute)", station.name,
                                      len(tray.asks))
                stats = station.stats
                stats.crops += len(tray.asks)
                stats.batches += 1
                stats.largest = max(stats.largest, len(tray.asks))
                stats.run_s += time.perf_counter() - started
                stats.cpu_s += time.thread_time() - cpu
                tray.asks.clear()
                with self._lock:
                    self._outbox.extend(answers)
                    station.working = None
