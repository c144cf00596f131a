"""Types of the integration fixtures, so test signatures say what each part is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edged.testing.broker import Mosquitto
from edged.testing.daemon_process import DaemonProcess
from edged.testing.subscriber import Subscriber

Subscribe = Callable[..., Subscriber]
MakeDaemon = Callable[..., DaemonProcess]
TlsBroker = tuple[Mosquitto, dict[str, Path]]
Media = dict[str, Path]


def read_image(path: Path) -> np.ndarray:
    """cv2.imread that fails loudly instead of returning None."""
    image = cv2.imread(str(path))
    assert image is not None, f"cannot read {path}"
    return image
