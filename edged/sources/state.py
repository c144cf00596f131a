"""A camera's state and the parts a camera worker works with: what it reports (``CameraState``, ``WorkerStats``),
what it counts, the source it reads (``Source``) and the gate that decides which frames the detector sees
(``Gate``, ``Verdict``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np

from edged.sources.opencv import StreamInfo


class CameraState(str, Enum):
    """Where a camera is; the value is what its status topic says."""

    STARTING = "starting"
    ONLINE = "online"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"

    def __str__(self) -> str:
        return self.value


DOWN_STATES = frozenset({CameraState.STARTING, CameraState.RECONNECTING, CameraState.OFFLINE})

StatusListener = Callable[[str, CameraState, str], None]  # camera, state, reason


@dataclass(frozen=True)
class Verdict:
    """A frame the gate lets through to the detector: why, and where it moved (normalised xyxy)."""

    gate: str  # motion, refresh, off
    motion: tuple[float, float, float, float] | None


class Gate(Protocol):
    """Decides, on a small grey copy of a frame, whether the detector should see it (the motion gate)."""

    def grey_shape(self, width: int, height: int) -> tuple[int, int]: ...

    def without_look(self, now: float) -> Verdict | None: ...

    def decide(self, grey: np.ndarray, now: float) -> Verdict | None: ...

    def after(self, grey: np.ndarray, now: float) -> None: ...

    def reopened(self) -> None: ...


class Source(Protocol):
    """What a camera worker reads from: OpenCvSource or PyAvSource."""

    def open(self) -> StreamInfo: ...

    def grab(self) -> bool: ...

    def retrieve(self, out: np.ndarray | None = None) -> np.ndarray | None: ...

    def position_ms(self) -> float: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class WorkerStats:
    """A camera worker's typed snapshot (read by the pipeline's stats, never written)."""

    state: CameraState
    reason: str
    frames_read: int
    frames_decoded: int
    frames_skipped: int
    frames_dropped: int
    reconnects: int
    stalls: int
    flapping: bool
    heartbeat_age_s: float | None  # since the last frame arrived; None: none yet
    stale_after_s: float  # no frame for longer than this is a problem (read timeout + grace)
    stall_limit_s: float  # a running camera is flowing while its heartbeat is younger than this
    thread_alive: bool
    thread_idle_s: float  # since the worker thread last moved
    thread_limit_s: float  # beyond every timeout it has: the thread is wedged


GRACE_S = 2.0


@dataclass
class CameraCounters:
    frames_read: int = 0
    frames_decoded: int = 0
    frames_skipped: int = 0  # grabbed but not decoded: the scheduler would not have used them
    reconnects: int = 0
    stalls: int = 0
    last_grab_mono: float = 0.0  # last frame received at all: the camera's heartbeat
    last_alive_mono: float = 0.0  # the thread's own heartbeat, also while it waits to retry
