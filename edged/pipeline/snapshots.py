"""Each followed object's best frame, and when its snapshot is due (on the scheduler's thread).

An object's best frame is the picture of the frame where its detection scored
highest (``BestFrames.step``): copied out of the picture ring into a buffer of the
camera's own pool when the score beats the best so far by ``MARGIN``, at most every
``COPY_S`` per object. A snapshot is due when the object is confirmed (``new``),
when it enters or leaves a zone or crosses a line and its best frame got better
since the last snapshot, and at its ``end`` if it got better and it is still the
latest object of its label on that camera (the retained topic shows the latest
object). A due snapshot hands its buffer to the encoder (``Job``); the buffer comes
back to the pool when encoded. Buffers are bounded: past ``MAX_BUFFERS`` a better
frame is skipped and counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edged.analytics.tracker import Track, TrackUpdate
from edged.pipeline.pictures import Picture

MARGIN = 0.02  # a better frame must score at least this much higher
COPY_S = 0.5  # at most one copy per object in this time
MAX_BUFFERS = 24  # per camera: objects followed plus snapshots waiting to be encoded


@dataclass
class Job:
    """One snapshot to encode: the object's best frame (a pool buffer, given back when done)."""

    camera: str
    label: str
    track: int
    score: float
    box: np.ndarray  # normalised xyxy
    image: np.ndarray
    seq: int
    ts: float
    pool: BufferPool
    sub_label: str | None = None  # what a second look made of it, for the caption

    def done(self) -> None:
        self.pool.give_back(self.image)


class BufferPool:
    """A camera's picture-sized buffers; taken on the scheduler's thread, given back by the encoder's."""

    def __init__(self, limit: int = MAX_BUFFERS) -> None:
        self.limit = limit
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()
        self.allocated = 0

    def take(self, shape: tuple[int, ...]) -> np.ndarray | None:
        with self._lock:
            while self._free:
                buffer = self._free.pop()
                if buffer.shape == shape:
                    return buffer
                self.allocated -= 1  # another size (the stream changed): let it go
            if self.allocated >= self.limit:
                return None
            self.allocated += 1
        return np.empty(shape, np.uint8)

    def give_back(self, buffer: np.ndarray) -> None:
        with self._lock:
            self._free.append(buffer)


@dataclass
class _Best:
    score: float = 0.0
    box: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    image: np.ndarray | None = None
    seq: int = 0
    ts: float = 0.0
    copied_mono: float = -1e9
    published: float = -1.0  # the score of the last snapshot sent


class BestFrames:
    """One camera's objects' best frames."""

    def __init__(self, camera: str, labels: Sequence[str], pool: BufferPool | None = None) -> None:
        self.camera = camera
        self.labels = labels
        self.pool = pool or BufferPool()
        self._best: dict[int, _Best] = {}
        self._latest: dict[int, int] = {}  # class -> the id of the latest object confirmed

    @property
    def following(self) -> bool:
        """Objects are followed: pictures are wanted (their best frame may still come)."""
        return bool(self._best)

    def step(self, picture: Picture | None, live: Sequence[Track], update: TrackUpdate,
             moved: Iterable[Track] = ()) -> list[Job]:
        """After the tracker and the zone step of one frame: keep better frames, return the snapshots due."""
        now = time.monotonic()
        jobs: list[Job] = []
        if picture is not None:
            for track in live:
                if track.last_ts == picture.ts and self._offer(track, picture, now) and track.public \
                        and self._best[track.id].published < 0:
                    self._due(track, jobs, always=True)  # confirmed before a picture of it was kept
        for track in update.started:
            self._latest[track.cls] = track.id
            self._due(track, jobs, always=True)
        for track in moved:
            self._due(track, jobs)
        for track in update.ended:
            if self._latest.get(track.cls) == track.id:
                self._due(track, jobs)
        if self._best:
            alive = {track.id for track in live}
            for gone in [key for key in self._best if key not in alive]:
                image = self._best.pop(gone).image
                if image is not None:
                    self.pool.give_back(image)
        return jobs

    def clear(self) -> None:
        for best in self._best.values():
            if best.image is not None:
                self.pool.give_back(best.image)
        self._best.clear()

    def _offer(self, track: Track, picture: Picture, now: float) -> bool:
        """Keep this frame if it is the object's best; True when kept."""
        best = self._best.get(track.id)
        if best is None:
            best = self._best[track.id] = _Best()
        elif track.score < best.score + MARGIN or now - best.copied_mono < COPY_S:
            return False
        image = best.image
        if image is None or image.shape != picture.image.shape:
            if image is not None:
                self.pool.give_back(image)
            image = best.image = self.pool.take(picture.image.shape)
            if image is None:  # the pool is spent: the best frame kept so far stays
                return False
        np.copyto(image, picture.image)
        best.score, best.seq, best.ts, best.copied_mono = track.score, picture.seq, picture.ts, now
        best.box[:] = track.box
        return True

    def _due(self, track: Track, jobs: list[Job], always: bool = False) -> None:
        best = self._best.get(track.id)
        if best is None or best.image is None or not track.public:
            return
        if not always and best.score <= best.published:
            return
        best.published = best.score
        jobs.append(Job(self.camera, self.labels[track.cls], track.id, best.score, best.box.copy(), best.image,
                        best.seq, best.ts, self.pool, track.look.sub_label if track.look is not None else None))
        best.image = None  # the encoder has it now; a better frame later takes a new buffer
