"""Real parts for integration tests: mosquitto, an RTSP server, the daemon as a process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edged.artifacts.zoo import copy_base
from edged.testing.broker import Mosquitto
from edged.testing.daemon_process import DaemonProcess
from edged.testing.media import long_clip
from edged.testing.rtsp import RtspServer
from edged.testing.subscriber import Subscriber


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def long_clips(media: dict[str, Path], cache_dir: Path) -> dict[str, Path]:
    """Clips long enough for any test: the RTSP server stops a stream at end of file."""
    return {name: long_clip(media[name]) for name in ("zidane.mp4", "bus.mp4", "street.mp4")}


@pytest.fixture
def rtsp(long_clips: dict[str, Path]) -> Iterator[RtspServer]:
    server = RtspServer({"zidane": long_clips["zidane.mp4"], "bus": long_clips["bus.mp4"],
                         "street": long_clips["street.mp4"]}).start()
    yield server
    server.stop()


@pytest.fixture
def private_cache(tmp_path: Path, built_model: Any) -> Path:
    """A cache of our own holding the built model without any INT8 variant, so tests
    that quantize, install or corrupt models never touch the shared cache."""
    cache = tmp_path / "cache"
    copy_base(built_model, cache)
    return cache


@pytest.fixture
def subscribe() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(port: int, topic: str = "#", **kwargs: Any) -> Subscriber:
        sub = Subscriber(port, topic, **kwargs)
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.close()


def every_frame(config: dict[str, Any]) -> None:
    """Cameras that do not configure ``motion`` see every due frame (``motion.enabled: false``).

    Most integration tests count detections of still scenes to test faults, reloads and the
    contract; the motion gate would hold those frames back. The gate's own tests
    (test_analytics) configure ``motion`` on every camera, and get it.
    """
    for camera in config.get("cameras", {}).values():
        camera.setdefault("motion", {"enabled": False})


@pytest.fixture
def daemon(tmp_path: Path, cache_dir: Path, built_model: Any) -> Iterator[Callable[..., DaemonProcess]]:
    made: list[DaemonProcess] = []

    def make(config: dict[str, Any], name: str = "edged", env: dict[str, str] | None = None,
             cache: Path | None = None) -> DaemonProcess:
        every_frame(config)
        proc = DaemonProcess(config, tmp_path / name, cache or cache_dir, env=env).start()
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.stop()
        # Shown by pytest only when the test failed.
        print(f"---- {proc.log_path} (exit {proc.process.returncode if proc.process else None}) ----")
        print(proc.log()[-6000:])
