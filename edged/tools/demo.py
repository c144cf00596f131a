"""``edged demo``: everything needed to watch edged work, with nothing to configure.

Builds the detector, prepares the sample clips, starts a private mosquitto on
127.0.0.1, prints the ``mosquitto_sub`` line to watch from a second terminal, and
runs the daemon on the embedded ``edged/data/demo.yaml`` until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

from edged.config import load_config
from edged.daemon import build_daemon
from edged.errors import EdgedError
from edged.logs import setup_logging
from edged.paths import default_spool_path
from edged.testing.broker import Mosquitto, free_port, port_is_free
from edged.testing.media import prepare_media
from edged.tools.precision_gate import settle

log = logging.getLogger(__name__)


def demo_config_text() -> str:
    return resources.files("edged").joinpath("data/demo.yaml").read_text()


def _one_off(*command: str) -> None:
    """Run a one-off step in a child process, so the model build's and the media tools' memory leaves
    with it (the demo sat at 558 MB RSS where the daemon alone needs about 330)."""
    done = subprocess.run([sys.executable, "-m", "edged", *command], check=False)
    if done.returncode != 0:
        raise EdgedError(f"'edged {' '.join(command)}' failed (exit {done.returncode}); see above")


def run_demo(cache: Path, port: int | None = None, duration_s: float | None = None) -> int:
    setup_logging("info")
    _one_off("model", "build", "yolov3-tiny", "--cache-dir", str(cache))
    _one_off("media", "fetch", "--cache-dir", str(cache))
    media = prepare_media(cache / "media")  # made above: this only checks and names them
    if port is None:
        port = 1883 if port_is_free(1883) else free_port()
    env = {"EDGED_DEMO_MEDIA": str(media["street.mp4"].parent), "EDGED_DEMO_PORT": str(port)}
    config = load_config(Path("edged/data/demo.yaml"), env, text=demo_config_text())
    with tempfile.TemporaryDirectory(prefix="edged-demo-") as tmp:
        broker = Mosquitto(Path(tmp), port=port).start()
        try:
            print(
                "\n"
                f"  edged demo: {len(config.cameras)} cameras -> YOLOv3-tiny on OpenVINO -> MQTT on 127.0.0.1:{port}\n"
                "  Watch it from a second terminal (the JPEG snapshots left out):\n\n"
                f"    {watch_command(port)}\n\n"
                "  Save the latest snapshot of a car on the street camera:\n\n"
                f"    {save_snapshot_command(port, config.device_id, 'street', 'car', 'car.jpg')}\n\n"
                "  Press Ctrl-C to stop.\n",
                flush=True,
            )
            return asyncio.run(_run(config, cache, duration_s))
        finally:
            broker.stop()


def watch_command(port: int) -> str:
    """Everything edged publishes, less the retained JPEG snapshots (``-T``), which would fill a terminal with
    binary bytes."""
    return f"mosquitto_sub -h 127.0.0.1 -p {port} -t 'edged/#' -T 'edged/+/+/+/snapshot' -v"


def save_snapshot_command(port: int, device: str, camera: str, label: str, path: str) -> str:
    """One retained snapshot into a file: one message (``-C 1``), no newline added after it (``-N``)."""
    return f"mosquitto_sub -h 127.0.0.1 -p {port} -t 'edged/{device}/{camera}/{label}/snapshot' -C 1 -N > {path}"


async def _run(config, cache: Path, duration_s: float | None) -> int:  # type: ignore[no-untyped-def]
    engine, notes = settle(config, cache)
    daemon = build_daemon(config, cache, default_spool_path(dict(os.environ), config.device_id), engine=engine,
                          engine_notes=notes)
    if duration_s is not None:
        asyncio.get_running_loop().call_later(duration_s, daemon.request_stop)
    return await daemon.run()
