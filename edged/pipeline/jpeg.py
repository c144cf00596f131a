"""JPEG encoding of snapshots and live pictures: one thread, bounded CPU, never on the hot path.

The result stage hands snapshot jobs over (``submit``); the web page asks for live
pictures (``live``). One worker thread draws the boxes and encodes, at most
``max_per_s`` encodes a second (a token bucket): snapshot jobs wait their turn
(the newest per camera and label replaces one still waiting), and a live picture
asked for while no encode is allowed is the last one encoded for that camera. A
burst of page requests therefore costs a few dictionary lookups each, never more
encoding. Encoded snapshots go to ``publish`` (the retained MQTT topic) and into the
store the page reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import cv2
import numpy as np

from edged.models.planes import to_bgr
from edged.pipeline.pictures import LiveFrame
from edged.pipeline.snapshots import Job

log = logging.getLogger(__name__)

KEEP_TRACKS = 64  # the page's recent events show snapshots of this many objects
_COLOURS = ((0, 200, 255), (80, 220, 60), (255, 140, 40), (200, 80, 255), (60, 60, 255), (255, 220, 0))


def draw(image: np.ndarray, boxes: np.ndarray, names: Sequence[str]) -> None:
    """Boxes (normalised xyxy) with their captions, drawn into ``image``."""
    h, w = image.shape[:2]
    thick = max(1, round(w / 480))
    scale = max(0.4, w / 1600)
    for index, (box, name) in enumerate(zip(boxes, names)):
        x1, y1, x2, y2 = (round(float(v)) for v in (box[0] * w, box[1] * h, box[2] * w, box[3] * h))
        colour = _COLOURS[index % len(_COLOURS)]
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thick)
        if name:
            (tw, th), base = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            top = max(y1, th + base + 2)
            cv2.rectangle(image, (x1, top - th - base - 2), (x1 + tw + 2, top), colour, cv2.FILLED)
            cv2.putText(image, name, (x1 + 1, top - base - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick,
                        cv2.LINE_AA)


def crop_around(box: np.ndarray, width: int, height: int, grow: float = 1.0) -> tuple[int, int, int, int]:
    """A crop (x, y, w, h) around a normalised box, grown by ``grow`` of its size, at least a quarter of the
    picture's width wide, inside the picture."""
    bw, bh = (box[2] - box[0]) * width, (box[3] - box[1]) * height
    side_w = min(width, max(bw * (1 + grow), width / 4))
    side_h = min(height, max(bh * (1 + grow), side_w * height / width))
    cx, cy = (box[0] + box[2]) / 2 * width, (box[1] + box[3]) / 2 * height
    x = int(min(max(cx - side_w / 2, 0), width - side_w))
    y = int(min(max(cy - side_h / 2, 0), height - side_h))
    return x, y, int(side_w), int(side_h)


@dataclass(frozen=True)
class Encoded:
    jpeg: bytes
    seq: int
    ts: float
    camera: str
    label: str = ""
    track: int = 0
    score: float = 0.0


class SnapshotStore:
    """The latest snapshot per camera and label, and those of the last ``KEEP_TRACKS`` objects (any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, str], Encoded] = {}
        self._tracks: OrderedDict[tuple[str, int], Encoded] = OrderedDict()

    def put(self, snap: Encoded) -> None:
        with self._lock:
            self._latest[snap.camera, snap.label] = snap
            self._tracks[snap.camera, snap.track] = snap
            self._tracks.move_to_end((snap.camera, snap.track))
            while len(self._tracks) > KEEP_TRACKS:
                self._tracks.popitem(last=False)

    def latest(self, camera: str, label: str) -> Encoded | None:
        with self._lock:
            return self._latest.get((camera, label))

    def of_track(self, camera: str, track: int) -> Encoded | None:
        with self._lock:
            return self._tracks.get((camera, track))

    def forget(self, camera: str) -> None:
        with self._lock:
            for key in [k for k in self._latest if k[0] == camera]:
                del self._latest[key]
            for tkey in [k for k in self._tracks if k[0] == camera]:
                del self._tracks[tkey]


@dataclass
class EncoderStats:
    snapshots: int = 0
    live: int = 0
    live_reused: int = 0  # live pictures served from the last encode (same frame, or no encode allowed)
    replaced: int = 0  # snapshot jobs replaced by a newer one of the same camera and label before their turn


class JpegEncoder:
    def __init__(self, *, quality: int, max_per_s: float, crop: bool, boxes: bool,
                 publish: Callable[[str, str, bytes], None] | None) -> None:
        self.quality = quality
        self.max_per_s = max_per_s
        self.crop = crop
        self.boxes = boxes
        self.publish = publish  # (camera, label, jpeg): the retained snapshot topic
        self.store = SnapshotStore()
        self.stats = EncoderStats()
        self._wake = threading.Condition()
        self._jobs: dict[tuple[str, str], Job] = {}
        self._live: dict[str, tuple[LiveFrame, list[Future[Encoded | None]]]] = {}
        self._last_live: dict[str, Encoded] = {}
        self._tokens = max(1.0, max_per_s)
        self._refilled = time.monotonic()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        self._scratch: np.ndarray | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="jpeg", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        for job in self._jobs.values():
            job.done()
        self._jobs.clear()

    def submit(self, job: Job) -> None:
        """A snapshot to encode (scheduler thread); a newer one of the same camera and label replaces it."""
        with self._wake:
            older = self._jobs.pop((job.camera, job.label), None)
            if older is not None:
                older.done()
                self.stats.replaced += 1
            self._jobs[job.camera, job.label] = job
            self._wake.notify()

    def live(self, camera: str, frame: LiveFrame) -> Future[Encoded | None]:
        """The camera's live picture as JPEG (any thread): the last one when it shows the newest frame or no
        encode is allowed now, else a new one as soon as the worker gets to it."""
        future: Future[Encoded | None] = Future()
        shown = frame.shown
        last = self._last_live.get(camera)
        with self._wake:
            if shown is None or (last is not None and (last.seq == shown.seq or not self._has_token())):
                self.stats.live_reused += last is not None
                future.set_result(last)
                return future
            waiting = self._live.setdefault(camera, (frame, []))[1]
            waiting.append(future)
            self._wake.notify()
        return future

    def forget(self, camera: str) -> None:
        self.store.forget(camera)
        self._last_live.pop(camera, None)

    # -- the worker --------------------------------------------------------------------

    def _has_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(max(1.0, self.max_per_s), self._tokens + (now - self._refilled) * self.max_per_s)
        self._refilled = now
        return self._tokens >= 1.0

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not ((self._jobs or self._live) and self._has_token()):
                    wait = None if not (self._jobs or self._live) else (1.0 - self._tokens) / self.max_per_s
                    self._wake.wait(wait)
                if self._stopping:
                    for _, waiting in self._live.values():
                        for future in waiting:
                            future.set_result(None)
                    return
                self._tokens -= 1.0
                live = self._live.popitem() if self._live else None
                job = None if live is not None else self._jobs.pop(next(iter(self._jobs)))
            try:  # this thread's CPU is its own stage, "jpeg" (pipeline/cpu.py)
                if live is not None:
                    self._encode_live(*live)
                elif job is not None:
                    self._encode_job(job)
            except Exception:  # a bug here must not end snapshots for good
                log.exception("encoding a picture failed")

    def _encode_live(self, camera: str, pending: tuple[LiveFrame, list[Future[Encoded | None]]]) -> None:
        frame, waiting = pending
        encoded: Encoded | None = None
        try:
            got = frame.read(self._scratch)
            if got is not None:
                image, shown = got
                self._scratch = image
                if self.boxes:
                    draw(image, shown.boxes, [f"{n} {s:.2f}" for n, s in zip(shown.labels, shown.scores)])
                ok, data = cv2.imencode(".jpg", image, self._params)
                if ok:
                    encoded = Encoded(data.tobytes(), shown.seq, shown.ts, camera)
                    self._last_live[camera] = encoded
                    self.stats.live += 1
        finally:
            for future in waiting:
                future.set_result(encoded or self._last_live.get(camera))

    def _encode_job(self, job: Job) -> None:
        try:
            image = to_bgr(job.image, self._scratch)  # planes: converted into the thread's scratch picture
            if image is not job.image:
                self._scratch = image
            if self.boxes:
                named = f"{job.label} ({job.sub_label})" if job.sub_label else job.label
                draw(image, job.box[None, :], [f"{named} {job.score:.2f}"])
            if self.crop:
                x, y, w, h = crop_around(job.box, image.shape[1], image.shape[0])
                image = image[y:y + h, x:x + w]
            ok, data = cv2.imencode(".jpg", image, self._params)
        finally:
            job.done()
        if not ok:
            return
        encoded = Encoded(data.tobytes(), job.seq, job.ts, job.camera, job.label, job.track, job.score)
        self.store.put(encoded)
        self.stats.snapshots += 1
        if self.publish is not None:
            self.publish(job.camera, job.label, encoded.jpeg)
