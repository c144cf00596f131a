"""The Engine protocol every inference backend implements.

An engine owns ``num_slots`` preallocated input buffers, each ``[batch, H, W, 3]``
uint8 BGR: exactly what the letterbox writes. Colour order, scaling and layout
conversion happen inside the engine (in the compiled graph where the runtime
allows), never as an extra per-frame pass in Python.

``submit(slot, done)`` starts inference on one buffer and returns at once;
``done`` is called from an engine thread with the output ``[batch, a, b]`` (valid
until the slot is submitted again) or with the exception that stopped it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

Done = Callable[[np.ndarray | BaseException], None]


@dataclass(frozen=True)
class InputSpec:
    batch: int
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.height, self.width, 3)


class Engine(Protocol):
    input_spec: InputSpec
    num_slots: int
    output_shape: tuple[int, ...]

    def start(self) -> None:
        """Load or compile the model, allocate buffers, warm up. Blocking."""

    def input_buffer(self, slot: int) -> np.ndarray:
        """The preallocated uint8 BGR ``[batch, H, W, 3]`` buffer of ``slot``."""

    def submit(self, slot: int, done: Done) -> None:
        """Start inference on ``slot``'s buffer; never blocks on the inference."""

    def describe(self) -> dict[str, Any]:
        """Backend, device, precision, streams: for logs, telemetry and the bench."""

    def close(self) -> None:
        """Release the runtime's resources."""
