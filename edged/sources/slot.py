"""FrameSlot: a camera's double buffer. Latest frame wins; nothing is queued.

The source thread writes into one buffer while the scheduler may hold a lease on
the other. A committed frame that is overwritten or superseded before anyone
leased it is counted as dropped. Buffers are allocated once per frame size and
reused for every frame.

In ``pull`` mode (a file played as fast as the pipeline can go) the source waits
until the last frame was leased instead of dropping it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from edged.models.planes import planar_shape


@dataclass
class FrameInfo:
    seq: int
    ts: float  # wall-clock capture time, seconds since the epoch
    mono: float  # monotonic capture time
    width: int
    height: int
    gate: str = "off"  # why the frame goes to the detector: motion, refresh, or off (no gating)
    motion: tuple[float, float, float, float] | None = None  # where it moved (normalised xyxy), for regions
    scale: int = 1  # the image held is the frame (width x height) shrunk by this whole factor


class Lease:
    """A frame the scheduler holds; the source will not touch it until released."""

    __slots__ = ("_index", "_slot", "image", "info", "leased_mono")  # leased_mono: into timing_ms["leased"]

    def __init__(self, slot: FrameSlot, index: int, image: np.ndarray, info: FrameInfo) -> None:
        self._slot = slot
        self._index = index
        self.image = image
        self.info = info
        self.leased_mono = time.monotonic()

    def release(self) -> None:
        self._slot._release(self._index)


class FrameSlot:
    def __init__(self, name: str, pull: bool = False) -> None:
        self.name = name
        self.pull = pull
        self._lock = threading.Condition()
        self._buffers: list[np.ndarray | None] = [None, None]
        self._info: list[FrameInfo | None] = [None, None]
        self._ready: int | None = None
        self._leased: int | None = None
        self._writing: int | None = None
        self._on_frame: Callable[[], None] | None = None
        self.committed = 0
        self.leased = 0
        self.dropped = 0

    def set_listener(self, on_frame: Callable[[], None] | None) -> None:
        self._on_frame = on_frame

    @property
    def has_fresh(self) -> bool:
        return self._ready is not None

    # -- source side -------------------------------------------------------------

    def begin_write(self, height: int, width: int, planar: bool = False) -> np.ndarray:
        """The buffer to decode the next frame into (allocated only on a size change): BGR ``[h, w, 3]``, or for
        ``planar`` 4:2:0 planes ``[h * 3 / 2, w]`` (``models.planes``; ``height`` x ``width`` may be the frame
        shrunk, see ``sources.camera``)."""
        with self._lock:
            free = [i for i in (0, 1) if i != self._leased]
            if len(free) == 2 and self._ready is not None:
                free.remove(self._ready)
            index = free[0]
            if index == self._ready:
                # The other buffer is leased: overwrite the frame nobody took.
                self._ready = None
                self.dropped += 1
            self._writing = index
            buf = self._buffers[index]
            shape = planar_shape(height, width) if planar else (height, width, 3)
            if buf is None or buf.shape != shape:
                buf = np.empty(shape, dtype=np.uint8)
                self._buffers[index] = buf
            return buf

    def adopt(self, image: np.ndarray) -> None:
        """Take over ``image`` as the buffer being written (the decoder changed size)."""
        with self._lock:
            if self._writing is not None:
                self._buffers[self._writing] = image

    def commit(self, info: FrameInfo) -> None:
        with self._lock:
            if self._writing is None:
                return
            if self._ready is not None:
                self.dropped += 1
            self._ready, self._writing = self._writing, None
            self._info[self._ready] = info
            self.committed += 1
        listener = self._on_frame
        if listener is not None:
            listener()

    def abort_write(self) -> None:
        with self._lock:
            self._writing = None

    def discard(self) -> None:
        """Forget the frame waiting to be leased (it waited while nobody took frames): counted as dropped."""
        with self._lock:
            if self._ready is not None:
                self._ready = None
                self.dropped += 1
                self._lock.notify_all()

    def wait_consumed(self, timeout: float) -> bool:
        """Pull mode: wait until the last committed frame was leased."""
        with self._lock:
            return self._lock.wait_for(lambda: self._ready is None, timeout)

    # -- scheduler side ----------------------------------------------------------

    def lease(self) -> Lease | None:
        with self._lock:
            index = self._ready
            if index is None:
                return None
            buf, info = self._buffers[index], self._info[index]
            assert buf is not None and info is not None
            self._ready, self._leased = None, index
            self.leased += 1
            self._lock.notify_all()
            return Lease(self, index, buf, info)

    def _release(self, index: int) -> None:
        with self._lock:
            if self._leased == index:
                self._leased = None
                self._lock.notify_all()

    @contextmanager
    def leased_frame(self) -> Iterator[Lease | None]:
        lease = self.lease()
        try:
            yield lease
        finally:
            if lease is not None:
                lease.release()
